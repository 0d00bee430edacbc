// `shoal create`: register a new cluster and bring it up on its hosts.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {checkMetadFlag, inventoryHosts, lockFlags, metadFlags, operationOptions, sshFlags, reportOutcome} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import {valueFlags} from '../cli/value-flags.js'

export default class Create extends BaseCommand {
  static override summary = 'Create a cluster from a spec: register it, place its files, run init and start'
  static override description = `Under the cluster lock: plan, register the nodes (pending), place every node's files, then role by role in declared order run init and start (node by node: each node goes on as soon as its own previous part is done; one node at a time for order: serial), wait for health, and mark the nodes active.
Every node of a role starts before its health is awaited (members of a quorum are healthy only together); update.canaries and max_in_flight govern later changes to running nodes.
Refused when the cluster is already registered and complete (change it with \`shoal apply\`). When a create stopped (a failure, or the process died), fix the cause (the spec, its scripts) and run the same command again: it plans from what stands (registered nodes, scripts finished per node), keeps finished work, and records the stopped operation as superseded. \`shoal resume\` continues the recorded plan instead; \`shoal rollback\` undoes it.
The inventory is recorded with the cluster, so later commands (destroy, run, status, resume, scale) reach the hosts without --hosts.
A spec with \`agent: true\` needs --metad URL (metad as the nodes reach it, recorded too): each new node gets the agent (one file in its home, Node.js 20 or later on the host), whose first pass must reach metad and place the files; it then runs supervised, and shoal waits for agents' reports instead of pushing files.`

  static override examples = [
    '<%= config.bin %> create specs/zookeeper.yaml --hosts hosts.yaml --set-file super_password=zk-super.secret',
    '<%= config.bin %> create specs/zookeeper.yaml --hosts .shoal/sandbox/hosts.yaml --set-file super_password=zk-super.secret --json',
    '<%= config.bin %> create cluster-with-agents.yaml --hosts .shoal/sandbox/hosts.yaml --metad http://198.18.0.254:9611',
    '<%= config.bin %> create specs/redis-cluster.yaml --hosts hosts.yaml --values prod.yaml --set-file password=secrets/redis-password',
  ]

  static override args = {spec: Args.string({description: 'Cluster spec file', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts)', required: true}),
    ...metadFlags,
    ...valueFlags,
    ...lockFlags,
    ...sshFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Create)
    const [{readClusterInput}, {compile}, {runAndFollow}, {requestDigest}, {readGivenValues, givenDigestInput}] = await Promise.all([
      import('../workspace/inputs.js'), import('../lifecycle/compile.js'), import('../lifecycle/follow.js'), import('../operation/record.js'), import('../workspace/values.js'),
    ])
    const input = readClusterInput(args.spec)
    checkMetadFlag(input.spec, flags.metad, undefined)
    const given = readGivenValues(flags)
    const values = givenDigestInput(given, input.spec)
    const hosts = (await inventoryHosts(flags.hosts))!
    const operation = {kind: 'create' as const}
    const cluster = input.spec.name
    const store = await openStoreFromFlags(flags)
    try {
      const outcome = await runAndFollow(store, {
        cluster,
        operation,
        requestDigest: requestDigest({operation, spec: input.spec, templates: input.templates, ...(values ? {values} : {})}),
        inventory: hosts,
        ...(flags.metad !== undefined ? {metad: flags.metad} : {}),
        plan: async (standing) => {
          const compiled = await compile(store, {cluster, spec: input.spec, templates: input.templates, inventory: {hosts}, operation, given, standing})
          const complete = compiled.current?.nodes.every((n) => n.state === 'active') && compiled.current.adding.length === 0 && compiled.current.deleting.length === 0
          if (compiled.current && complete && standing.unfinished?.current.kind !== 'create') {
            throw new ShoalError(`cluster ${cluster} is already registered in ${store.description}; change it with: shoal apply ${args.spec} --hosts ${flags.hosts}`, 'already-registered', EXIT.failure)
          }
          return compiled
        },
      }, await operationOptions(flags, this.jsonEnabled()))
      return reportOutcome(outcome, this.jsonEnabled(), (text) => this.log(text))
    } finally {
      await store.close()
    }
  }
}
