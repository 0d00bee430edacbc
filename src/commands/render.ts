// `shoal render`: print one node's rendered files, for template work.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import {valueFlags} from '../cli/value-flags.js'

export default class Render extends BaseCommand {
  static override summary = "Print one node's rendered config files"
  static override description = `Plans SPEC like \`shoal plan\` (against the inventory and the registry) and prints the files of NODE as they would be installed; only NODE's templates are rendered. Secret values are redacted, and a file whose template reads a secret is not shown at all, unless --show-secrets.
With --step, the files as they are on NODE once that step of the plan has run (a step id or its number, as \`shoal plan\` lists them): while an operation runs a node may see other files than at its end, e.g. a template reading adding_hosts.
Control characters in the content are shown quoted (\\x1b); --json gives the exact content.`

  static override examples = ['<%= config.bin %> render specs/zookeeper.yaml --hosts hosts.yaml --node zk-main-zk-1', '<%= config.bin %> render specs/zookeeper.yaml --hosts hosts.yaml --node zk-main-zk-1 --step 2']

  static override args = {
    spec: Args.string({description: 'Cluster spec file', required: true}),
  }

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts)', required: true}),
    node: Flags.string({description: 'Node id, e.g. zk-main-zk-1', required: true}),
    step: Flags.string({description: 'Show the files as they are on the node once this step ran (step id or number)'}),
    'show-secrets': Flags.boolean({description: 'Show secret env values and the files whose template reads a secret', default: false}),
    ...valueFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Render)
    const [{readClusterInput, readInventory}, {compile}, {redactPlan, redactText, filesAtStep, REDACTED}, {quoteControl}, {readGivenValues}] = await Promise.all([
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
    if (flags.step !== undefined) {
      const index = /^\d+$/.test(flags.step) ? Number(flags.step) - 1 : plan.steps.findIndex((s) => s.id === flags.step)
      if (index < 0 || index >= plan.steps.length) {
        throw new ShoalError(`no step ${flags.step} in the plan; steps: ${plan.steps.map((s) => s.id).join(', ') || 'none'}`, 'unknown-step', EXIT.usage)
      }
      const step = plan.steps[index]!
      const registered = compiled.current?.files[node.node_id]
      const shown = registered && !flags['show-secrets'] ? Object.fromEntries(Object.entries(registered).map(([dest, content]) => [dest, redactText(content, compiled.plan.secrets)])) : registered
      const at = filesAtStep(plan, node.node_id, index, shown)
      // A registered copy was rendered by templates this plan may not read any more: hidden whenever the cluster has secrets.
      const files = at.files?.map((file) => (!flags['show-secrets'] && (file.sensitive ?? (!at.placedBy && compiled.plan.secrets.length > 0)) ? {...file, content: REDACTED, sensitive: true} : file))
      if (this.jsonEnabled()) return {node: node.node_id, step: step.id, placedBy: at.placedBy ?? null, files: files ?? null}
      const out = [`# ${node.node_id} once step ${step.id} (${step.title}) ran: ${files ? (at.placedBy ? `files placed by step ${at.placedBy}` : 'the registered files (none placed by this plan yet)') : 'no files on the node'}\n`]
      for (const file of files ?? []) {
        const hidden = file.sensitive && !flags['show-secrets']
        out.push(`# ${file.dest}${hidden ? ' (content hidden: the template reads a secret, --show-secrets shows it)' : ''}\n`)
        if (!hidden) out.push(file.content.endsWith('\n') ? file.content : `${file.content}\n`)
        out.push('\n')
      }
      process.stdout.write(quoteControl(out.join('')))
      return undefined
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
