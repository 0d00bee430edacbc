// `shoal run`: run a custom action (or restart) of a registered cluster on its nodes.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {inventoryHosts, lockFlags, operationOptions, outcomeJson, outcomeText, sshFlags} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Run extends BaseCommand {
  static override summary = "Run a custom action (a role's `actions.<name>`) or restart on a cluster's nodes"
  static override description = `Runs on the nodes the script's \`on\` selects (all, bootstrap, existing), in batches of update.max_in_flight with canaries first, one node at a time when its \`order\` is serial. A restart waits for the role's health check after each batch. Runs under the cluster lock as an operation: a failure stops it, and \`shoal resume\` finishes it without running the action twice on a node.`

  static override examples = ['<%= config.bin %> run zk-main restart', '<%= config.bin %> run zk-main snapshot --role zk --node zk-main-zk-2']

  static override args = {
    cluster: Args.string({description: 'Cluster name', required: true}),
    action: Args.string({description: 'Action name (a key of a role\'s `actions`, or `restart`)', required: true}),
  }

  static override flags = {
    role: Flags.string({description: 'Only this role'}),
    node: Flags.string({description: 'Only this node id'}),
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
    ...lockFlags,
    ...sshFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Run)
    const [{runOperation}, {requestDigest}, {readRegistered}, {planAction}] = await Promise.all([
      import('../lifecycle/operation.js'), import('../operation/record.js'), import('../lifecycle/registered.js'), import('../lifecycle/action.js'),
    ])
    const given = await inventoryHosts(flags.hosts)
    const request = {action: args.action, ...(flags.role !== undefined ? {role: flags.role} : {}), ...(flags.node !== undefined ? {node: flags.node} : {})}
    const operation = {kind: 'run' as const, ...request}
    const store = await openStoreFromFlags(flags)
    try {
      const outcome = await runOperation(store, {
        cluster: args.cluster,
        operation,
        requestDigest: requestDigest({operation}),
        ...(given ? {inventory: given} : {}),
        plan: async () => {
          const {snapshot, state} = await readRegistered(store, args.cluster)
          if (!state) throw new ShoalError(`cluster ${args.cluster} is not registered in ${store.description}`, 'not-registered', EXIT.failure)
          return {plan: planAction(state, request), expectedModRevision: snapshot.revisionModRevision, current: state}
        },
      }, await operationOptions(flags, this.jsonEnabled()))
      if (this.jsonEnabled()) return outcomeJson(outcome)
      this.log(outcomeText(outcome))
      return undefined
    } finally {
      await store.close()
    }
  }
}
