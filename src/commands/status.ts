// `shoal status`: a cluster's nodes, their state and health (checked now), and its last or unfinished operation.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {inventoryHosts, sshFlags} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import type {ClusterStatus} from '../lifecycle/status.js'

export default class Status extends BaseCommand {
  static override summary = "Show a cluster's nodes, their health now, and its last operation"
  static override description = `Reads the registry (no lock taken) and runs every node's health_check once, each bounded by its timeout (--no-health skips that). Shows an unfinished operation with where it stopped, and the result of the last one.`

  static override examples = ['<%= config.bin %> status zk-main', '<%= config.bin %> status zk-main --json']

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
    health: Flags.boolean({description: 'Run the health checks now', default: true, allowNo: true}),
    ...sshFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Status)
    const [{clusterStatus}, {readStoredInventory}, {SshTransport}] = await Promise.all([
      import('../lifecycle/status.js'), import('../lifecycle/operation-record.js'), import('../transport/ssh.js'),
    ])
    const given = await inventoryHosts(flags.hosts)
    const store = await openStoreFromFlags(flags, {readOnly: true})
    const transport = flags.health ? new SshTransport({acceptNewHostKeys: flags['accept-new-host-keys'], connectAttempts: 1}) : undefined
    try {
      const inventory = given ?? (await readStoredInventory(store, args.cluster)) ?? []
      const status = await clusterStatus(store, args.cluster, {inventory, ...(transport ? {transport} : {})})
      if (this.jsonEnabled()) return status
      this.log(renderStatus(status))
      return undefined
    } finally {
      await transport?.close()
      await store.close()
    }
  }
}

function renderStatus(s: ClusterStatus): string {
  const out = [`Cluster ${s.cluster}: ${s.registered ? `registered at revision ${String(s.revision)}` : 'not registered'}`]
  if (s.nodes.length > 0) {
    out.push('', 'Nodes:')
    const width = Math.max(...s.nodes.map((n) => n.node_id.length))
    for (const n of s.nodes) {
      out.push(`  ${n.node_id.padEnd(width)}  ${n.role} sid ${n.sid} on ${n.host} (${n.ip})${n.bootstrap ? ' bootstrap' : ''}  ${n.state}  ${n.health}${n.detail ? `: ${n.detail}` : ''}`)
    }
  }
  if (s.lock) out.push('', `Locked by ${s.lock.holder}, running "${s.lock.operation}" since ${s.lock.started}.`)
  if (s.unfinished) {
    const f = s.unfinished.failure
    out.push('', `Unfinished operation: "${s.unfinished.title}" (${s.unfinished.id}), started ${s.unfinished.started} by ${s.unfinished.holder}.`)
    if (f) out.push(`  stopped at step ${f.step}${f.node ? ` on ${f.node}` : ''}: ${f.message.split('\n')[0]}`)
    out.push(`  continue it with: shoal resume ${s.cluster}`)
  }
  if (s.last) out.push('', `Last operation: "${s.last.title}" ${s.last.result === 'ok' ? 'succeeded' : `failed at step ${String(s.last.step)}`}, finished ${s.last.finished}.`)
  return out.join('\n')
}
