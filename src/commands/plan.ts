// `shoal plan`: compile a spec against the inventory and the registry; print node changes, file diffs and steps.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import {valueFlags} from '../cli/value-flags.js'

export default class Plan extends BaseCommand {
  static override summary = 'Show what applying a spec would change, without changing anything'
  static override description = `Compiles SPEC against the host inventory and what the registry holds for the cluster: every node (create / keep / remove, with the reason), unified diffs of each node's rendered files against the registered ones, and the ordered steps. Writes nothing except --out.
Exit codes: 0 success, 1 error; with --detailed-exitcode 0 no changes, 2 changes present, 1 error.`

  static override examples = [
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml',
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml --out zk.plan --detailed-exitcode',
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml --destroy',
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml --set tick_time=3000',
  ]

  static override args = {
    spec: Args.string({description: 'Cluster spec file', required: true}),
  }

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts)', required: true}),
    out: Flags.string({description: 'Save the plan to this file (mode 0600: it holds secret values) for `shoal apply`'}),
    destroy: Flags.boolean({description: 'Plan the removal of the whole cluster instead', default: false}),
    'detailed-exitcode': Flags.boolean({description: 'Exit 0 when nothing changes, 2 when something does', default: false}),
    ...valueFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Plan)
    const [{readClusterInput, readInventory}, {compile}, {writePlanFile, PLAN_FORMAT}, {renderPlan, redactPlan, hasChanges}, {readGivenValues}] = await Promise.all([
      import('../workspace/inputs.js'), import('../lifecycle/compile.js'), import('../lifecycle/plan-file.js'), import('../plan/show.js'), import('../workspace/values.js'),
    ])
    const input = readClusterInput(args.spec)
    const inventory = readInventory(flags.hosts)
    const given = readGivenValues(flags)
    const store = await openStoreFromFlags(flags, {readOnly: true})
    try {
      const {plan, expectedModRevision} = await compile(store, {
        spec: input.spec, templates: input.templates, cluster: input.spec.name, inventory, operation: flags.destroy ? {kind: 'destroy'} : {kind: 'apply'}, given,
      })
      if (flags.out) writePlanFile(flags.out, {format: PLAN_FORMAT, registry: store.description, expectedModRevision, plan})
      const changed = hasChanges(plan)
      if (flags['detailed-exitcode'] && changed) process.exitCode = EXIT.changes
      if (this.jsonEnabled()) return {changes: changed, expectedModRevision, plan: redactPlan(plan)}
      process.stdout.write(renderPlan(plan))
      if (flags.out) this.log(`\nSaved the plan to ${flags.out}; apply it with: shoal apply ${flags.out}`)
      return undefined
    } finally {
      await store.close()
    }
  }
}
