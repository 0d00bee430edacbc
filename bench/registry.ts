// Registry scale benchmark: what one scale-out step writes to a real etcd holding a 1,000-node cluster.
import {commitChanges} from '../src/registry/commit.js'
import {clusterPrefix, clusterRevisionKey} from '../src/registry/keys.js'
import {readCluster} from '../src/registry/read.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import {clusterTree, nodeGroups, treeDiff} from '../test/support/cluster-tree.js'
import {startEtcd} from '../test/support/etcd.js'

export interface RegistryScaleResult {
  /** Keys in the registered 1,000-node tree. */
  treeKeys: number
  /** Transactions the initial registration needed (etcd caps one at 128 ops). */
  registerTxns: number
  /** The scale step (one node added): transactions, put/delete ops and key+value bytes sent to etcd. */
  scaleTxns: number
  scaleOps: number
  scaleBytes: number
  registerMs: number
  scaleMs: number
}

export async function benchRegistryScale(nodes = 1000): Promise<RegistryScaleResult> {
  const etcd = await startEtcd()
  const store = new EtcdStore({endpoints: etcd.endpoints})
  try {
    const cluster = 'bench-zk'
    const prefix = clusterPrefix(cluster)
    const revisionKey = clusterRevisionKey(cluster)
    const before = clusterTree(cluster, nodes, 1)
    let start = performance.now()
    const registered = await commitChanges(store, prefix, {revisionKey, expectedModRevision: 0}, before, [], nodeGroups(before))
    const registerMs = performance.now() - start

    // Scale out by one: the new node's keys and mapping, the cluster revision and spec hash change.
    const after = clusterTree(cluster, nodes + 1, 2)
    const {puts, deletes} = treeDiff(before, after)
    const snapshot = await readCluster(store, cluster)
    const counted = {...store.counters}
    start = performance.now()
    await commitChanges(store, prefix, {revisionKey, expectedModRevision: snapshot.revisionModRevision}, puts, deletes, nodeGroups(puts))
    const scaleMs = performance.now() - start
    return {
      treeKeys: Object.keys(before).length,
      registerTxns: registered.transactions,
      scaleTxns: store.counters.txns - counted.txns,
      scaleOps: store.counters.ops - counted.ops,
      scaleBytes: store.counters.bytes - counted.bytes,
      registerMs,
      scaleMs,
    }
  } finally {
    await store.close()
    await etcd.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchRegistryScale())
}
