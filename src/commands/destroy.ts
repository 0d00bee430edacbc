// `shoal destroy`: stop a cluster, run its destroy scripts, remove its files and homes, and clear it from the registry.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {inventoryHosts, lockFlags, operationOptions, outcomeText, sshFlags, reportOutcome, followText} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Destroy extends BaseCommand {
  static override summary = 'Destroy a cluster: stop, destroy scripts, files and homes removed, registry cleared'
  static override description = `Runs the plan of removing every node (roles in reverse declared order: stop, destroy, then each node's home /srv/shoal/<cluster>/<node-id> and absolute-path files are deleted), then removes the cluster's keys and operation records from the registry.
The hosts are reached through the inventory recorded with the cluster; --hosts replaces it (e.g. when a host's address changed).`

  static override examples = ['<%= config.bin %> destroy zk-main', '<%= config.bin %> destroy zk-main --hosts hosts.yaml --lock-wait 30s']

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
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
      const outcome = await runAndFollow(store, {
        cluster: args.cluster,
        operation,
        requestDigest: requestDigest({operation}),
        ...(given ? {inventory: given} : {}),
        plan: async () => compile(store, {cluster: args.cluster, inventory: {hosts: given ?? (await readStoredInventory(store, args.cluster)) ?? []}, operation}),
      }, await operationOptions(flags, this.jsonEnabled()))
      const gone = outcome.changed ? ` ${args.cluster} is gone from its hosts and from ${store.description}.` : ''
      return reportOutcome(outcome, this.jsonEnabled(), (text) => this.log(text), [`${outcomeText({...outcome, dependents: []})}${gone}`, ...followText(outcome.dependents ?? [])].join('\n'))
    } finally {
      await store.close()
    }
  }
}
