// `shoal scale`: grow or shrink one role of a registered cluster.
import {Args, Flags} from '@oclif/core'
import {BaseCommand, EXIT, ShoalError} from '../cli/base.js'
import {lockWaitMs, operationFlags, requireRegistryOnly} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Scale extends BaseCommand {
  static override summary = 'Scale one role of a registered cluster out or in'
  static override description = `Exactly one of --count, --add or --remove. Scaling in without --remove takes the highest sids first. The role's scale bounds from the spec are enforced. New nodes take the lowest never-used sids.
Plans and commits under the cluster lock; concurrent scales of one cluster never both proceed (use --lock-wait to queue behind another operation).`

  static override examples = [
    '<%= config.bin %> scale zk-main --role zk --add 2 --hosts hosts.yaml --registry-only',
    '<%= config.bin %> scale zk-main --role zk --count 3 --hosts hosts.yaml --registry-only',
    '<%= config.bin %> scale zk-main --role zk --remove zk-main-zk-5 --registry-only --dry-run',
  ]

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    role: Flags.string({description: 'Role to scale', required: true}),
    count: Flags.integer({description: 'Target number of nodes', min: 0, exactlyOne: ['count', 'add', 'remove']}),
    add: Flags.integer({description: 'Number of nodes to add', min: 1}),
    remove: Flags.string({description: 'Node id to remove (repeatable)', multiple: true}),
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); needed to place new nodes'}),
    'dry-run': Flags.boolean({description: 'Print the plan only', default: false}),
    ...operationFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Scale)
    if (!flags['dry-run']) requireRegistryOnly(flags['registry-only'])
    const wait = lockWaitMs(flags['lock-wait'])
    const [{planAndRegister}, {renderPlan, redactPlan}, {readInventory}] = await Promise.all([
      import('../lifecycle/apply.js'), import('../plan/show.js'), import('../workspace/inputs.js'),
    ])
    const growing = flags.add !== undefined || flags.count !== undefined
    if (growing && !flags.hosts) throw new ShoalError('scaling with --add or --count needs --hosts FILE to place new nodes', 'usage', EXIT.usage)
    const inventory = flags.hosts ? readInventory(flags.hosts) : {hosts: []}
    const operation = {
      kind: 'scale' as const,
      role: flags.role,
      ...(flags.count !== undefined ? {count: flags.count} : {}),
      ...(flags.add !== undefined ? {add: flags.add} : {}),
      ...(flags.remove !== undefined ? {remove: flags.remove} : {}),
    }
    const store = await openStoreFromFlags(flags)
    try {
      const {plan, changed, result} = await planAndRegister(store, {cluster: args.cluster, inventory, operation, lockWaitMs: wait, dryRun: flags['dry-run']})
      if (this.jsonEnabled()) return {cluster: plan.cluster, changed, dryRun: flags['dry-run'], revision: plan.revision, plan: redactPlan(plan), commits: result?.commits ?? 0}
      process.stdout.write(renderPlan(plan, {diffs: flags['dry-run']}))
      if (result) this.log(`\nRegistered ${plan.cluster} at revision ${plan.revision} (${result.transactions} transaction${result.transactions === 1 ? '' : 's'}).`)
      return undefined
    } finally {
      await store.close()
    }
  }
}
