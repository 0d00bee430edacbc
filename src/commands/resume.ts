// `shoal resume`: continue a cluster's unfinished operation from its first unfinished step and node.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {inventoryHosts, lockFlags, lockWaitMs, operationOptions, outcomeText, sshFlags, reportOutcome, followText} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Resume extends BaseCommand {
  static override summary = "Continue a cluster's unfinished operation where it stopped"
  static override description = `An operation that failed, or whose process died (even kill -9), is recorded in the registry with its plan and progress. Resume takes the cluster lock (a crashed process's lock expires within about 15 s: use --lock-wait to wait for it), loads the recorded plan, and continues from the first unfinished step; scripts that finished on a node are not run again there. Without an unfinished operation it changes nothing.
Afterwards (also when nothing was unfinished) the clusters that link to this one are brought up to date with it, so resume also finishes a follow that a failure or a crash interrupted.
--abandon forgets the unfinished operation without running the rest of it (the registry keeps whatever it committed, and what its scripts did stays known): then fix forward by running a command again, or undo with \`shoal rollback\`.
To fix forward instead (after changing the spec or its scripts), run the command that failed again; to undo, \`shoal rollback\`.`

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
          this.log(current
            ? `Abandoned operation "${current.title}" (${current.id}) of ${args.cluster}. Its nodes stay as they are: fix forward by running create, apply, scale or destroy again, or undo it with: shoal rollback ${args.cluster}`
            : `${args.cluster} has no unfinished operation.`)
          return undefined
        } finally {
          await lock.release()
        }
      }
      const {runAndFollow} = await import('../lifecycle/follow.js')
      const outcome = await runAndFollow(store, {cluster: args.cluster, ...(given ? {inventory: given} : {})}, await operationOptions(flags, this.jsonEnabled()))
      let idle = `${args.cluster} has no unfinished operation: nothing to resume.`
      if (!outcome.changed) {
        const {readRegistered} = await import('../lifecycle/registered.js')
        const {state} = await readRegistered(store, args.cluster)
        if (state?.nodes.some((n) => n.state !== 'active')) idle += ` Nodes are still pending or leaving (an abandoned operation): run the command again to fix forward, or undo it with: shoal rollback ${args.cluster}`
      }
      const text = outcome.changed ? outcomeText(outcome) : [idle, ...followText(outcome.dependents ?? [])].join('\n')
      return reportOutcome(outcome, this.jsonEnabled(), (line) => this.log(line), text)
    } finally {
      await store.close()
    }
  }
}
