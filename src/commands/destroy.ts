// `shoal destroy`: stop a cluster, run its destroy scripts, remove its files and homes, and clear it from the registry.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {inventoryHosts, lockFlags, operationOptions, outcomeText, sshFlags, reportOutcome, followText} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Destroy extends BaseCommand {
  static override summary = 'Destroy a cluster: stop, destroy scripts, files and homes removed, registry cleared'
  static override description = `Runs the plan of removing every node (roles in reverse declared order: stop, destroy, then each node's home /srv/shoal/<cluster>/<node-id> and absolute-path files are deleted), then removes the cluster's keys and operation records from the registry.
The hosts are reached through the inventory recorded with the cluster; --hosts replaces it (e.g. when a host's address changed).
On a terminal it shows what it will remove and asks for confirmation unless --yes; without a terminal (scripts, CI, --json) it requires --yes.
Also after a failed or interrupted operation: it plans from what stands (nodes pending or leaving included) and stops or destroys a node only where its start or init ran.`

  static override examples = ['<%= config.bin %> destroy zk-main', '<%= config.bin %> destroy zk-main --yes --hosts hosts.yaml --lock-wait 30s']

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
    yes: Flags.boolean({char: 'y', description: 'Do not ask for confirmation (required without a terminal)', default: false}),
    ...lockFlags,
    ...sshFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Destroy)
    const [{compile}, {runAndFollow}, {readStoredInventory, requestDigest}] = await Promise.all([
      import('../lifecycle/compile.js'), import('../lifecycle/follow.js'), import('../operation/record.js'),
    ])
    const given = await inventoryHosts(flags.hosts)
    const operation = {kind: 'destroy' as const}
    const store = await openStoreFromFlags(flags)
    try {
      if (!flags.yes) await this.confirm(store, args.cluster)
      const outcome = await runAndFollow(store, {
        cluster: args.cluster,
        operation,
        requestDigest: requestDigest({operation}),
        ...(given ? {inventory: given} : {}),
        plan: async (standing) => compile(store, {cluster: args.cluster, inventory: {hosts: given ?? (await readStoredInventory(store, args.cluster)) ?? []}, operation, standing}),
      }, await operationOptions(flags, this.jsonEnabled()))
      const gone = outcome.changed ? ` ${args.cluster} is gone from its hosts and from ${store.description}.` : ''
      return reportOutcome(outcome, this.jsonEnabled(), (text) => this.log(text), [`${outcomeText({...outcome, dependents: []})}${gone}`, ...followText(outcome.dependents ?? [])].join('\n'))
    } finally {
      await store.close()
    }
  }

  /** Show what goes and ask on a terminal; without one (or under --json) refuse without --yes. */
  private async confirm(store: import('../store/store.js').Store, cluster: string): Promise<void> {
    const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true && !this.jsonEnabled()
    if (!interactive) {
      throw new ShoalError(`destroy removes cluster ${cluster} from its hosts and from the registry; there is no terminal to ask on, so confirm with: shoal destroy ${cluster} --yes`, 'confirmation-required', EXIT.usage)
    }
    const {readRegistered} = await import('../lifecycle/registered.js')
    const {state} = await readRegistered(store, cluster)
    const nodes = state?.nodes ?? []
    this.log(`This destroys cluster ${cluster} (${store.description}):`)
    for (const n of nodes) this.log(`  - ${n.node_id}  ${n.role} sid ${n.sid} on ${n.host} (${n.ip}), ${n.state}: stop, destroy, remove ${n.home}`)
    this.log('  and every key of the cluster and its operation records in the registry.')
    const {createInterface} = await import('node:readline/promises')
    const rl = createInterface({input: process.stdin, output: process.stdout})
    try {
      const answer = await rl.question(`Type the cluster name (${cluster}) to destroy it: `)
      if (answer.trim() !== cluster) throw new ShoalError(`not confirmed: ${cluster} is left as it is`, 'not-confirmed', EXIT.failure)
    } finally {
      rl.close()
    }
  }
}
