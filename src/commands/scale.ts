// `shoal scale`: grow or shrink one role of a registered cluster.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {inventoryHosts, lockWaitMs, operationFlags, operationOptions, reportOutcome, followText, followError} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Scale extends BaseCommand {
  static override summary = 'Scale one role of a registered cluster out or in'
  static override description = `Exactly one of --count, --add or --remove. Scaling in without --remove takes the highest sids first. The role's scale bounds from the spec are enforced. New nodes take the lowest never-used sids.
Plans under the cluster lock and runs the plan: registry commits, files re-rendered and reloaded, the new nodes' init and start, scale_out / scale_in on the members that stay, stop and destroy of the leaving nodes. --registry-only commits the registry changes only. Concurrent scales of one cluster never both proceed (use --lock-wait to queue behind another operation).
Without --hosts, the inventory recorded with the cluster is used to place new nodes and reach hosts.
When a scale stopped (a failure, or the process died), fix the cause and run the same command again: it counts from the members that stand (nodes still pending do not count, and join again with their ids), keeps finished work, and records the stopped operation as superseded; or undo it with \`shoal rollback\`.
Clusters that link to this one follow it: each is re-planned from its registered spec and, where its files change, re-rendered and reloaded as its own operation (see Operations in the README).`

  static override examples = [
    '<%= config.bin %> scale zk-main --role zk --add 2 --hosts hosts.yaml',
    '<%= config.bin %> scale zk-main --role zk --count 3 --hosts hosts.yaml --registry-only',
    '<%= config.bin %> scale zk-main --role zk --remove zk-main-zk-5 --registry-only --dry-run',
  ]

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    role: Flags.string({description: 'Role to scale', required: true}),
    count: Flags.integer({description: 'Target number of nodes', min: 0, exactlyOne: ['count', 'add', 'remove']}),
    add: Flags.integer({description: 'Number of nodes to add', min: 1}),
    remove: Flags.string({description: 'Node id to remove (repeatable)', multiple: true}),
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
    'dry-run': Flags.boolean({description: 'Print the plan only', default: false}),
    ...operationFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Scale)
    const wait = lockWaitMs(flags['lock-wait'])
    const [{planAndRegister}, {renderPlan, redactPlan}, {readStoredInventory, requestDigest}] = await Promise.all([
      import('../lifecycle/apply.js'), import('../plan/show.js'), import('../operation/record.js'),
    ])
    const operation = {
      kind: 'scale' as const,
      role: flags.role,
      ...(flags.count !== undefined ? {count: flags.count} : {}),
      ...(flags.add !== undefined ? {add: flags.add} : {}),
      ...(flags.remove !== undefined ? {remove: flags.remove} : {}),
    }
    const given = await inventoryHosts(flags.hosts)
    const store = await openStoreFromFlags(flags)
    try {
      const hosts = given ?? (await readStoredInventory(store, args.cluster))
      const growing = flags.add !== undefined || flags.count !== undefined
      if (growing && !hosts) throw new ShoalError('scaling with --add or --count needs --hosts FILE to place new nodes (no inventory is recorded with the cluster)', 'usage', EXIT.usage)
      const inventory = {hosts: hosts ?? []}
      if (!flags['dry-run'] && !flags['registry-only']) {
        const [{runAndFollow}, {compile}] = await Promise.all([import('../lifecycle/follow.js'), import('../lifecycle/compile.js')])
        const outcome = await runAndFollow(store, {
          cluster: args.cluster, operation, requestDigest: requestDigest({operation}), ...(given ? {inventory: given} : {}),
          plan: (standing) => compile(store, {cluster: args.cluster, inventory, operation, standing}),
        }, await operationOptions(flags, this.jsonEnabled()))
        return reportOutcome(outcome, this.jsonEnabled(), (text) => this.log(text))
      }
      const {plan, changed, result} = await planAndRegister(store, {cluster: args.cluster, inventory, operation, lockWaitMs: wait, dryRun: flags['dry-run']})
      const dependents = flags['dry-run'] ? [] : await (await import('../lifecycle/follow.js')).followInRegistry(store, args.cluster, wait)
      const json = {cluster: plan.cluster, changed, dryRun: flags['dry-run'], revision: plan.revision, plan: redactPlan(plan), commits: result?.commits ?? 0, ...(dependents.length ? {dependents} : {})}
      if (!this.jsonEnabled()) {
        process.stdout.write(renderPlan(plan, {diffs: flags['dry-run']}))
        if (result) this.log(`\nRegistered ${plan.cluster} at revision ${plan.revision} (${result.transactions} transaction${result.transactions === 1 ? '' : 's'}).`)
        for (const line of followText(dependents)) this.log(line)
      }
      const failed = followError(args.cluster, dependents)
      if (failed) throw failed
      return this.jsonEnabled() ? json : undefined
    } finally {
      await store.close()
    }
  }
}
