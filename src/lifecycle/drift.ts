// Drift: what is really on the hosts against what the registry says each node's files are (`plan --refresh`, issue
// 17). Each node's registered files are checked on its host with one command (mode and content hash); a file whose
// content differs is read back for a diff unless its template reads a secret. Drifted nodes are handed to the planner
// as nodes whose files may differ (NodeFacts.filesStale): applying puts the registered content back and reloads.
import {createHash} from 'node:crypto'
import {filePath, registeredSensitive} from '../plan/render.js'
import type {ClusterState, FileDrift, NodeFacts} from '../plan/types.js'
import {octalMode, type Transport} from '../transport/transport.js'
import type {HostSpec} from '../inventory/types.js'
import type {Store} from '../store/store.js'
import {SshTransport} from '../transport/ssh.js'
import {shellQuote} from '../util/shell.js'
import {hostLookup, type HostLookup} from './hosts.js'
import {readRegistered} from './registered.js'

const CHECK_TIMEOUT_MS = 60_000

export interface DriftReport {
  drift: FileDrift[]
  /** Nodes whose files could not be checked (host unreachable, command failed), with why. */
  unchecked: Array<{node: string; reason: string}>
}

export async function readDrift(transport: Transport, hosts: HostLookup, state: ClusterState): Promise<DriftReport> {
  const sensitive = registeredSensitive(state, 'unknown')
  const drift: FileDrift[] = []
  const unchecked: DriftReport['unchecked'] = []
  await Promise.all(state.nodes.filter((n) => n.state !== 'pending').map(async (node) => {
    const files = Object.entries(state.files[node.node_id] ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))
    if (files.length === 0) return
    const specFiles = state.spec?.roles[node.role]?.files ?? []
    const checks = files.map(([dest, content]) => ({
      dest, content, path: filePath(node.home, dest), mode: octalMode(specFiles.find((f) => f.dest === dest)?.mode ?? '0644'),
      hidden: sensitive.get(node.role)?.has(dest) === true,
    }))
    try {
      const host = hosts(node)
      const script = checks.map((c) => `f=${shellQuote(c.path)}; if [ -f "$f" ]; then m=$(stat -c %a -- "$f") && h=$(sha256sum < "$f") && echo "$m \${h%% *}"; else echo missing; fi`).join('\n')
      const result = await transport.exec(host, script, {timeoutMs: CHECK_TIMEOUT_MS})
      const lines = (result.stdout ?? '').trim().split('\n')
      if (result.exitCode !== 0 || lines.length !== checks.length) throw new Error(`checking its files exited ${String(result.exitCode ?? result.signal)}: ${(result.stderr ?? '').trim().split('\n').at(-1) ?? ''}`)
      for (const [i, c] of checks.entries()) {
        const line = lines[i]!
        const base = {node: node.node_id, host: node.host, dest: c.dest, path: c.path, registeredMode: c.mode, ...(c.hidden ? {sensitive: true} : {})}
        if (line === 'missing') {
          drift.push({...base, problem: 'missing', ...(c.hidden ? {} : {registered: c.content})})
          continue
        }
        const [mode, hash] = line.split(' ')
        const modeDiffers = parseInt(mode!, 8) !== parseInt(c.mode, 8)
        const contentDiffers = hash !== createHash('sha256').update(c.content).digest('hex')
        if (!modeDiffers && !contentDiffers) continue
        const found = contentDiffers && !c.hidden ? (await transport.readFile(host, c.path))?.toString('utf8') : undefined
        drift.push({
          ...base, problem: modeDiffers && contentDiffers ? 'content and mode' : modeDiffers ? 'mode' : 'content', foundMode: octalMode(mode!),
          ...(contentDiffers && !c.hidden ? {registered: c.content, ...(found !== undefined ? {found} : {})} : {}),
        })
      }
    } catch (error) {
      unchecked.push({node: node.node_id, reason: (error as Error).message})
    }
  }))
  const order = (a: {node: string; dest?: string}, b: {node: string; dest?: string}): number => (a.node === b.node ? ((a.dest ?? '') < (b.dest ?? '') ? -1 : 1) : a.node < b.node ? -1 : 1)
  return {drift: drift.sort(order), unchecked: unchecked.sort(order)}
}

/** The planner's facts for drifted nodes: their files are to be installed again (with reloads) by applying. */
export function driftFacts(report: DriftReport, facts: Record<string, NodeFacts> = {}): Record<string, NodeFacts> {
  const out = {...facts}
  for (const node of new Set(report.drift.map((d) => d.node))) out[node] = {...(out[node] ?? {done: [], touched: []}), filesStale: true}
  return out
}

/**
 * `--refresh` of a registered cluster: its nodes' files checked on their hosts over SSH. Undefined when the cluster is
 * not registered (nothing can have drifted). Agent clusters are checked the same way: what is on the host is the truth.
 */
export async function refreshDrift(store: Store, cluster: string, hosts: readonly HostSpec[], options: {acceptNewHostKeys?: boolean} = {}): Promise<DriftReport | undefined> {
  const {state} = await readRegistered(store, cluster)
  if (!state) return undefined
  const transport = new SshTransport({acceptNewHostKeys: options.acceptNewHostKeys === true})
  try {
    return await readDrift(transport, hostLookup(hosts, cluster), state)
  } finally {
    await transport.close()
  }
}
