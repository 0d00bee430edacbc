// `shoal run`: run a custom action (or restart) of a registered cluster on its nodes.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {inventoryHosts, lockFlags, operationOptions, outcomeJson, outcomeText, sshFlags} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Run extends BaseCommand {
  static override summary = "Run a custom action (a role's `actions.<name>`) or restart on a cluster's nodes"
  static override description = `Runs on the nodes the script's \`on\` selects (all, bootstrap, existing), in batches of update.max_in_flight with canaries first, one node at a time when its \`order\` is serial. Arguments after \`--\` are appended to the action's command, each shell-quoted (and given as SHOAL_ARGS).
A restart runs the role's \`restart\` script, or without one its \`stop\` then its \`start\`, and waits for the role's health check after each batch.
An action runs under the cluster lock as an operation; when it fails it ends (recorded as failed, output in \`shoal logs\`) and never blocks the cluster. An action declared \`read_only\` takes no lock and no operation record: it runs at any time, also while another operation runs or is unfinished (on pending and leaving nodes too).`

  static override examples = [
    '<%= config.bin %> run zk-main restart',
    '<%= config.bin %> run zk-main snapshot --role zk --node zk-main-zk-2',
    '<%= config.bin %> run zk-main srvr -- --verbose "two words"',
  ]

  static override strict = false

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
    const {args, argv, flags} = await this.parse(Run)
    const [{runOperation, runReadOnly}, {requestDigest}, {readRegistered}, {planAction, isReadOnly}] = await Promise.all([
      import('../lifecycle/operation.js'), import('../operation/record.js'), import('../lifecycle/registered.js'), import('../lifecycle/action.js'),
    ])
    const given = await inventoryHosts(flags.hosts)
    const extra = (argv as string[]).slice(2)
    const request = {action: args.action, ...(flags.role !== undefined ? {role: flags.role} : {}), ...(flags.node !== undefined ? {node: flags.node} : {}), ...(extra.length ? {args: extra} : {})}
    const operation = {kind: 'run' as const, ...request}
    const store = await openStoreFromFlags(flags)
    try {
      const registered = async (): Promise<Awaited<ReturnType<typeof readRegistered>> & {state: NonNullable<Awaited<ReturnType<typeof readRegistered>>['state']>}> => {
        const found = await readRegistered(store, args.cluster)
        if (!found.state) throw new ShoalError(`cluster ${args.cluster} is not registered in ${store.description}`, 'not-registered', EXIT.failure)
        return {...found, state: found.state}
      }
      const options = await operationOptions(flags, this.jsonEnabled())
      const {state} = await registered()
      const outcome = isReadOnly(state, request)
        ? await runReadOnly(store, args.cluster, planAction(state, request), {...options, ...(given ? {inventory: given} : {})})
        : await runOperation(store, {
          cluster: args.cluster,
          operation,
          requestDigest: requestDigest({operation}),
          unfinished: 'refuse',
          ...(given ? {inventory: given} : {}),
          plan: async () => {
            const {snapshot, state: now} = await registered()
            return {plan: planAction(now, request), expectedModRevision: snapshot.revisionModRevision, current: now}
          },
        }, options)
      if (this.jsonEnabled()) return outcomeJson(outcome)
      this.log(outcomeText(outcome))
      return undefined
    } finally {
      await store.close()
    }
  }
}
