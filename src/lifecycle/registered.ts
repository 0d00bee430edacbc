// What a command needs from the registry before planning: a cluster's registered state, what other clusters use on
// the same hosts, and the states of linked clusters.
import {clusterPrefix, listClusters, readCluster, type ClusterSnapshot} from '../registry/index.js'
import {stateFromTree} from '../plan/tree.js'
import type {ClusterState} from '../plan/types.js'
import type {HostUsage} from '../plan/inventory.js'
import type {ClusterSpec} from '../spec/types.js'
import type {Store} from '../store/store.js'

export interface Registered {
  snapshot: ClusterSnapshot
  /** Undefined when the cluster is not registered. */
  state?: ClusterState
}

export async function readRegistered(store: Store, cluster: string): Promise<Registered> {
  const snapshot = await readCluster(store, cluster)
  if (snapshot.revisionModRevision === 0) return {snapshot}
  const root = clusterPrefix(cluster)
  const keys: Record<string, string> = {}
  for (const [key, value] of Object.entries(snapshot.keys)) keys[root + key] = value
  return {snapshot, state: stateFromTree(cluster, keys)}
}

/** Resources the nodes of every other registered cluster hold, per inventory host name. */
export async function otherUsage(store: Store, exclude: string): Promise<Record<string, HostUsage>> {
  const usage: Record<string, HostUsage> = {}
  for (const name of await listClusters(store)) {
    if (name === exclude) continue
    const {state} = await readRegistered(store, name)
    for (const node of state?.nodes ?? []) {
      const used = (usage[node.host] ??= {cpu: 0, memory: 0, disk: 0})
      used.cpu += node.cpu
      used.memory += node.memory_bytes
      used.disk += node.disk_bytes
    }
  }
  return usage
}

/** Registered states of the clusters a spec links to; missing ones are left out (the planner names them). */
export async function linkedStates(store: Store, spec: ClusterSpec): Promise<Record<string, ClusterState>> {
  const linked: Record<string, ClusterState> = {}
  for (const name of new Set(Object.values(spec.links ?? {}))) {
    const {state} = await readRegistered(store, name)
    if (state) linked[name] = state
  }
  return linked
}
