// Reads a cluster's registry tree as flat data, always a consistent state (never half of a multi-transaction commit).
import type {Store} from '../store/store.js'
import {parsePending} from './commit.js'
import {CLUSTERS_PREFIX, assertClusterName, clusterPrefix, clusterRevisionKey, pendingKey} from './keys.js'

export interface ClusterSnapshot {
  cluster: string
  /** Keys relative to `clusters/<cluster>/`, e.g. `hosts/zk/zk-main-zk-1/ip` (the pending marker excluded). */
  keys: Record<string, string>
  /** The store revision this snapshot shows. */
  revision: number
  /** Mod revision of `cluster/revision` (0 when the cluster is not registered): a plan's `expectedModRevision`. */
  revisionModRevision: number
  /** Set while a multi-transaction commit is in flight or was interrupted: the snapshot is the state before it. */
  pending?: {opId: string; holder: string; started: string}
}

export async function readCluster(store: Store, cluster: string): Promise<ClusterSnapshot> {
  assertClusterName(cluster)
  const prefix = clusterPrefix(cluster)
  const marker = pendingKey(prefix)
  let {kvs, revision} = await store.range(prefix)
  const pendingKv = kvs.find(kv => kv.key === marker)
  let pending: ClusterSnapshot['pending']
  if (pendingKv) {
    const record = parsePending(pendingKv, marker)
    pending = {opId: record.opId, holder: record.holder, started: record.started}
    // The store just before the pending record was created holds the whole old state.
    revision = pendingKv.createRevision - 1
    kvs = (await store.range(prefix, {revision})).kvs
  }
  const keys: Record<string, string> = {}
  let revisionModRevision = 0
  const revisionKey = clusterRevisionKey(cluster)
  for (const kv of kvs) {
    if (kv.key === marker) continue
    if (kv.key === revisionKey) revisionModRevision = kv.modRevision
    keys[kv.key.slice(prefix.length)] = kv.value
  }
  return {cluster, keys, revision, revisionModRevision, ...(pending ? {pending} : {})}
}

/**
 * Names of the registered clusters, sorted. A cluster exists once its revision key does: a create spanning several
 * transactions writes it last, so a create that is still running or was interrupted (keys written behind a pending
 * record) is not listed, just as readCluster does not show it.
 */
export async function listClusters(store: Store): Promise<string[]> {
  const {kvs} = await store.range(CLUSTERS_PREFIX)
  const names = new Set<string>()
  for (const kv of kvs) {
    const name = kv.key.slice(CLUSTERS_PREFIX.length).split('/')[0]
    if (name && kv.key === clusterRevisionKey(name)) names.add(name)
  }
  return [...names].sort()
}
