// `shoal resume`: continue a cluster's unfinished operation from its first unfinished step and node.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {inventoryHosts, lockFlags, lockWaitMs, operationOptions, outcomeText, sshFlags, reportOutcome, followText} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Resume extends BaseCommand {
  static override summary = "Continue a cluster's unfinished operation where it stopped"
  static override description = `An operation that failed, or whose process died (even kill -9), is recorded in the registry with its plan and progress. Resume takes the cluster lock (a crashed process's lock expires within about 15 s: use --lock-wait to wait for it), loads the recorded plan, and continues from the first unfinished step; scripts that finished on a node are not run again there. Without an unfinished operation it changes nothing.
Afterwards (also when nothing was unfinished) the clusters that link to this one are brought up to date with it, so resume also finishes a follow that a failure or a crash interrupted.
--abandon forgets the unfinished operation without running the rest of it (the registry keeps whatever it committed).`

  static override examples = ['<%= config.bin %> resume zk-main', '<%= config.bin %> resume zk-main --lock-wait 30s']

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
    abandon: Flags.boolean({description: 'Forget the unfinished operation instead of continuing it', default: false}),
    ...lockFlags,
    ...sshFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Resume)
    const given = await inventoryHosts(flags.hosts)
    const store = await openStoreFromFlags(flags)
    try {
      if (flags.abandon) {
        const [{abandonOperation, readCurrent}, {lockCluster}] = await Promise.all([import('../operation/record.js'), import('../lifecycle/register.js')])
        const lock = await lockCluster(store, args.cluster, {operation: 'resume --abandon', waitMs: lockWaitMs(flags['lock-wait'])})
        try {
          const current = await readCurrent(store, args.cluster)
          if (current) await abandonOperation(store, args.cluster)
          if (this.jsonEnabled()) return {cluster: args.cluster, abandoned: current ?? null}
          this.log(current ? `Abandoned operation "${current.title}" (${current.id}) of ${args.cluster}.` : `${args.cluster} has no unfinished operation.`)
          return undefined
        } finally {
          await lock.release()
        }
      }
      const {runAndFollow} = await import('../lifecycle/follow.js')
      const outcome = await runAndFollow(store, {cluster: args.cluster, ...(given ? {inventory: given} : {})}, await operationOptions(flags, this.jsonEnabled()))
      const text = outcome.changed ? outcomeText(outcome) : [`${args.cluster} has no unfinished operation: nothing to resume.`, ...followText(outcome.dependents ?? [])].join('\n')
      return reportOutcome(outcome, this.jsonEnabled(), (line) => this.log(line), text)
    } finally {
      await store.close()
    }
  }
}
