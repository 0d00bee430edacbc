// `shoal agent`: keep this node's config files current from metad — watch, render, check, replace, reload.
import {readFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {parseDuration} from '../util/units.js'

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
    'command-timeout': Flags.string({description: 'Deadline of each check and reload command', default: '60s'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(AgentCommand)
    const commandTimeoutMs = parseDuration(flags['command-timeout'])
    if (commandTimeoutMs === undefined) throw new ShoalError(`--command-timeout ${flags['command-timeout']}: expected a duration such as 30s`, 'invalid-flag', EXIT.usage)
    try {
      new URL(flags.metad)
    } catch {
      throw new ShoalError(`--metad ${flags.metad}: expected a URL such as http://10.0.0.5:9611`, 'invalid-flag', EXIT.usage)
    }
    const token = flags['token-file'] !== undefined ? readToken(flags['token-file']) : undefined
    const {Agent} = await import('../agent/agent.js')
    const json = this.jsonEnabled()
    const log = (event: import('../agent/agent.js').AgentEvent): void => {
      process.stderr.write(`${json ? JSON.stringify({at: new Date().toISOString(), ...event}) : describe(event)}\n`)
    }
    const agent = new Agent({metad: flags.metad, ...(flags.bind !== undefined ? {bind: flags.bind} : {}), ...(flags.node !== undefined ? {node: flags.node} : {}), ...(token !== undefined ? {token} : {}), commandTimeoutMs, log})
    if (flags.once) {
      const result = await agent.once().finally(() => agent.stop())
      if (result.errors.length) throw new ShoalError(`not in sync at revision ${result.revision}: ${result.errors.join('; ')}`, 'agent-not-in-sync', EXIT.failure)
      return json ? {revision: result.revision, in_sync: true} : undefined
    }
    const stop = (): void => void agent.stop()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    await agent.run()
    return undefined
  }
}

function readToken(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch (error) {
    throw new ShoalError(`--token-file ${file}: ${(error as Error).message}`, 'invalid-flag', EXIT.usage)
  }
}

function describe(event: import('../agent/agent.js').AgentEvent): string {
  const at = new Date().toISOString()
  switch (event.event) {
    case 'applied': {
      const reloads = event.reloads.map((r) => `${r.command} ${r.ok ? 'ok' : 'FAILED'}`).join(', ')
      return `${at} revision ${event.revision}: ${event.changed.length ? `changed ${event.changed.join(', ')}` : 'nothing changed'}${reloads ? `; reloaded: ${reloads}` : ''}${event.errors.length ? `; errors: ${event.errors.join('; ')}` : ''} (${event.ms} ms)`
    }
    case 'unchanged': return `${at} revision ${event.revision}: files in sync (${event.ms} ms)`
    case 'refused': return `${at} revision ${event.revision}: files left as they are: ${event.reason}`
    case 'unreachable': return `${at} ${event.reason}; retrying in ${event.retryInMs} ms`
    case 'reconnected': return `${at} metad answers again`
  }
}
