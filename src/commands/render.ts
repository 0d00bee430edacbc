// `shoal render`: print one node's rendered files, for template work.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Render extends BaseCommand {
  static override summary = "Print one node's rendered config files"
  static override description = 'Plans SPEC like `shoal plan` (against the inventory and the registry) and prints the files of NODE as they would be installed. Secret values are redacted unless --show-secrets.'

  static override examples = ['<%= config.bin %> render specs/zookeeper.yaml --hosts hosts.yaml --node zk-main-zk-1']

  static override args = {
    spec: Args.string({description: 'Cluster spec file', required: true}),
  }

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts)', required: true}),
    node: Flags.string({description: 'Node id, e.g. zk-main-zk-1', required: true}),
    'show-secrets': Flags.boolean({description: 'Do not redact secret env values', default: false}),
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Render)
    const [{readClusterInput, readInventory}, {compile}, {redactPlan}] = await Promise.all([
      import('../workspace/inputs.js'), import('../lifecycle/compile.js'), import('../plan/show.js'),
    ])
    const input = readClusterInput(args.spec)
    const inventory = readInventory(flags.hosts)
    const store = await openStoreFromFlags(flags)
    let compiled
    try {
      compiled = await compile(store, {spec: input.spec, templates: input.templates, cluster: input.spec.name, inventory, operation: {kind: 'create'}})
    } finally {
      await store.close()
    }
    const plan = flags['show-secrets'] ? compiled.plan : redactPlan(compiled.plan)
    const node = plan.nodes.find((n) => n.node_id === flags.node)
    if (!node) {
      const known = plan.nodes.map((n) => n.node_id).join(', ') || 'none'
      throw new ShoalError(`no node ${flags.node} in cluster ${plan.cluster}; nodes: ${known}`, 'unknown-node', EXIT.usage)
    }
    if (this.jsonEnabled()) return {node: node.node_id, files: node.files.map(({dest, path, mode, owner, content}) => ({dest, path, mode, owner, content}))}
    for (const file of node.files) {
      this.log(`# ${file.path} (mode ${file.mode}${file.owner ? `, owner ${file.owner}` : ''})`)
      process.stdout.write(file.content.endsWith('\n') ? file.content : `${file.content}\n`)
      this.log('')
    }
    return undefined
  }
}
