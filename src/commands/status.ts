// `shoal status`: a cluster's nodes, their state and health (checked now), and its last or unfinished operation.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {inventoryHosts, sshFlags} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import type {AgentStatus, ClusterStatus} from '../lifecycle/status.js'

export default class Status extends BaseCommand {
  static override summary = "Show a cluster's nodes, their health now, and its last operation"
  static override description = `Reads the registry (no lock taken) and runs every node's health_check once, each bounded by its timeout (--no-health skips that). Shows an unfinished operation with where it stopped and the ways out, the result of the last one, the step timings of the one shown, and for a failed step the last lines its script printed (all of it: shoal logs).`

  static override examples = ['<%= config.bin %> status zk-main', '<%= config.bin %> status zk-main --json']

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
    health: Flags.boolean({description: 'Run the health checks now', default: true, allowNo: true}),
    drift: Flags.boolean({description: 'Also check every registered file on its host over SSH and show what differs (content with a diff, mode, missing); `shoal apply SPEC --refresh` puts them back', default: false}),
    ...sshFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Status)
    const [{clusterStatus}, {readStoredInventory}, {SshTransport}] = await Promise.all([
      import('../lifecycle/status.js'), import('../operation/record.js'), import('../transport/ssh.js'),
    ])
    const given = await inventoryHosts(flags.hosts)
    const store = await openStoreFromFlags(flags, {readOnly: true})
    const transport = flags.health ? new SshTransport({acceptNewHostKeys: flags['accept-new-host-keys'], connectAttempts: 1}) : undefined
    try {
      const inventory = given ?? (await readStoredInventory(store, args.cluster)) ?? []
      const status = await clusterStatus(store, args.cluster, {inventory, ...(transport ? {transport} : {})})
      const drift = flags.drift ? await (await import('../lifecycle/drift.js')).refreshDrift(store, args.cluster, inventory, {acceptNewHostKeys: flags['accept-new-host-keys']}) : undefined
      // What a host holds may quote a registered secret (a template that no longer reads it): swept in every form.
      const {renderDrift, redactText} = await import('../plan/show.js')
      const {readRegistered} = await import('../lifecycle/registered.js')
      const state = drift ? (await readRegistered(store, args.cluster)).state : undefined
      const secrets = Object.entries(state?.env ?? {}).filter(([name]) => state?.secretEnv.includes(name)).map(([, v]) => String(v))
      if (this.jsonEnabled()) return {...status, ...(drift ? {drift: drift.drift.map((d) => ({...d, ...(d.found !== undefined ? {found: redactText(d.found, secrets)} : {}), ...(d.registered !== undefined ? {registered: redactText(d.registered, secrets)} : {})})), driftUnchecked: drift.unchecked} : {})}
      this.log(renderStatus(status))
      if (drift) process.stdout.write(redactText(renderDrift(drift.drift, drift.unchecked), secrets))
      return undefined
    } finally {
      await transport?.close()
      await store.close()
    }
  }
}

function agentText(a: AgentStatus): string {
  switch (a.state) {
    case 'down': return 'agent down'
    case 'in-sync': return `agent in sync at revision ${String(a.revision)}`
    case 'stale': return `agent stale: files at revision ${String(a.revision)}, the cluster has changed since`
    case 'failed': return `agent failed at revision ${String(a.revision)}: ${(a.errors ?? []).join('; ')}`
  }
}

function renderStatus(s: ClusterStatus): string {
  const out = [`Cluster ${s.cluster}: ${s.registered ? `registered at revision ${String(s.revision)}` : 'not registered'}`]
  if (s.nodes.length > 0) {
    out.push('', 'Nodes:')
    const width = Math.max(...s.nodes.map((n) => n.node_id.length))
    for (const n of s.nodes) {
      out.push(`  ${n.node_id.padEnd(width)}  ${n.role} sid ${n.sid} on ${n.host} (${n.ip})${n.bootstrap ? ' bootstrap' : ''}  ${n.state}  ${n.health}${n.detail ? `: ${n.detail}` : ''}${n.agent ? `  ${agentText(n.agent)}` : ''}`)
    }
  }
  if (s.lock) out.push('', `Locked by ${s.lock.holder}, running "${s.lock.operation}" since ${s.lock.started}.`)
  if (s.unfinished) {
    const f = s.unfinished.failure
    out.push('', `Unfinished operation: "${s.unfinished.title}" (${s.unfinished.id}), started ${s.unfinished.started} by ${s.unfinished.holder}.`)
    if (f) out.push(`  stopped at step ${f.step}${f.node ? ` on ${f.node}` : ''}: ${f.message.split('\n')[0]}`)
    out.push(`  fix the cause and run the same command again (it keeps finished work), continue the recorded plan: shoal resume ${s.cluster}, or undo it: shoal rollback ${s.cluster}`)
  }
  if (s.last && s.last.id !== s.unfinished?.id) out.push('', `Last operation: "${s.last.title}" ${s.last.result === 'ok' ? 'succeeded' : `failed at step ${String(s.last.step)}`}, finished ${s.last.finished}.`)
  if (s.steps?.length) {
    out.push('', `Steps of "${s.unfinished?.title ?? s.last?.title ?? ''}":`)
    const width = Math.max(...s.steps.map((t) => t.step.length))
    for (const t of s.steps) out.push(`  ${t.step.padEnd(width)}  ${t.result.padEnd(7)}  ${`${String(t.seconds ?? 0)}s`.padStart(7)}  ${t.title}`)
  }
  if (s.failedOutput) {
    out.push('', `Last lines of ${s.failedOutput.step} on ${s.failedOutput.node} (all of it: shoal logs ${s.cluster} --step ${s.failedOutput.step} --node ${s.failedOutput.node}):`)
    for (const line of s.failedOutput.lines) out.push(`  ${line}`)
  }
  return out.join('\n')
}
