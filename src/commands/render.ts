// `shoal render`: print one node's rendered files, for template work.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import {valueFlags} from '../cli/value-flags.js'

export default class Render extends BaseCommand {
  static override summary = "Print one node's rendered config files"
  static override description = `Plans SPEC like \`shoal plan\` (against the inventory and the registry) and prints the files of NODE as they would be installed; only NODE's templates are rendered. Secret values are redacted, and a file whose template reads a secret is not shown at all, unless --show-secrets.
Control characters in the content are shown quoted (\\x1b); --json gives the exact content.`

  static override examples = ['<%= config.bin %> render specs/zookeeper.yaml --hosts hosts.yaml --node zk-main-zk-1']

  static override args = {
    spec: Args.string({description: 'Cluster spec file', required: true}),
  }

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts)', required: true}),
    node: Flags.string({description: 'Node id, e.g. zk-main-zk-1', required: true}),
    'show-secrets': Flags.boolean({description: 'Show secret env values and the files whose template reads a secret', default: false}),
    ...valueFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Render)
    const [{readClusterInput, readInventory}, {compile}, {redactPlan}, {quoteControl}, {readGivenValues}] = await Promise.all([
      import('../workspace/inputs.js'), import('../lifecycle/compile.js'), import('../plan/show.js'), import('../util/text.js'), import('../workspace/values.js'),
    ])
    const input = readClusterInput(args.spec)
    const inventory = readInventory(flags.hosts)
    const given = readGivenValues(flags)
    const store = await openStoreFromFlags(flags, {readOnly: true})
    let compiled
    try {
      compiled = await compile(store, {spec: input.spec, templates: input.templates, cluster: input.spec.name, inventory, operation: {kind: 'create'}, renderOnly: flags.node, given})
    } finally {
      await store.close()
    }
    const plan = flags['show-secrets'] ? compiled.plan : redactPlan(compiled.plan)
    const node = plan.nodes.find((n) => n.node_id === flags.node)
    if (!node) {
      const known = plan.nodes.map((n) => n.node_id).join(', ') || 'none'
      throw new ShoalError(`no node ${flags.node} in cluster ${plan.cluster}; nodes: ${known}`, 'unknown-node', EXIT.usage)
    }
    if (this.jsonEnabled()) {
      return {node: node.node_id, files: node.files.map(({dest, path, mode, owner, content, sensitive}) => ({dest, path, mode, owner, content, ...(sensitive ? {sensitive} : {})}))}
    }
    const out: string[] = []
    for (const file of node.files) {
      const hidden = file.sensitive && !flags['show-secrets']
      out.push(`# ${file.path} (mode ${file.mode}${file.owner ? `, owner ${file.owner}` : ''}${hidden ? '; content hidden: the template reads a secret, --show-secrets shows it' : ''})\n`)
      if (!hidden) out.push(file.content.endsWith('\n') ? file.content : `${file.content}\n`)
      out.push('\n')
    }
    process.stdout.write(quoteControl(out.join('')))
    return undefined
  }
}
