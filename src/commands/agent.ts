// `shoal agent`: keep this node's config files current from metad — watch, render, check, replace, reload.
import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'

export default class AgentCommand extends BaseCommand {
  static override summary = "Keep this node's config files current: long-poll metad, render, check, replace, reload"
  static override description = `Asks metad (GET /agent) for this node's view and its role's templates, renders them with the same code as \`shoal plan\` and \`shoal render\`, and installs each file that changed: staged beside the destination, checked (the file's \`check\`), atomically renamed; then each \`reload\` command of the changed files runs once. A refused check keeps the old file; a failed reload puts the previous file back and reloads that. An answer that is behind what the files already reflect, incomplete, or for another node changes nothing.
Then it long-polls metad and applies every change as it comes. When metad cannot be reached, the files stay as they are and it retries (backoff with jitter, at most 5 s apart).
metad knows the node by the address the agent connects from (--bind, default the machine's route to metad); where one address holds several nodes, --node and --token-file (the node's .shoal/token) name it.
Logs one line per change to stderr (--json: JSON lines). --once: render and install once, exit 0 when the files are in sync, 1 when not.`

  static override examples = [
    '<%= config.bin %> agent --metad http://10.0.0.5:9611',
    '<%= config.bin %> agent --metad http://127.0.0.1:9611 --bind 127.0.1.3 --once',
  ]

  static override flags = {
    metad: Flags.string({description: 'metad URL as this node reaches it', required: true}),
    bind: Flags.string({description: 'Local address to connect from (metad knows the node by it)'}),
    node: Flags.string({description: 'Node id, where one address holds several nodes (needs --token-file)', dependsOn: ['token-file']}),
    'token-file': Flags.string({description: "The node's token file (its home's .shoal/token)", dependsOn: ['node']}),
    once: Flags.boolean({description: 'Render and install once, then exit (0 in sync, 1 not)', default: false}),
    'at-least': Flags.integer({description: 'With --once: wait until metad serves at least this registry revision', dependsOn: ['once'], min: 0}),
    wait: Flags.string({description: 'With --once and --at-least: how long to wait for that revision (or for metad to know the node)', default: '0s'}),
    'command-timeout': Flags.string({description: 'Deadline of each check and reload command', default: '60s'}),
    'ready-file': Flags.string({description: "Following metad: after each pass write its outcome to this file, one line: `applied REV`, `failed REV MESSAGE` or `unreachable MESSAGE` (how shoal learns that an agent it started applied its commit)", exclusive: ['once']}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(AgentCommand)
    const {runAgent} = await import('../agent/run.js')
    const result = await runAgent({...flags, json: this.jsonEnabled()})
    return this.jsonEnabled() ? result : undefined
  }
}
