// Registry under etcd faults: a server dying mid-commit, and a 3-member cluster losing a member.
import {afterEach, describe, expect, it} from 'vitest'
import {commitChanges} from '../src/registry/commit.js'
import {clusterPrefix, clusterRevisionKey} from '../src/registry/keys.js'
import {readCluster} from '../src/registry/read.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import {StoreError} from '../src/store/store.js'
import {clusterTree, nodeGroups, relativeTree, treeDiff} from './support/cluster-tree.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'

const C = 'kafka-main'
const prefix = clusterPrefix(C)
const revisionKey = clusterRevisionKey(C)

describe('registry under etcd faults', () => {
  let etcd: EtcdCluster | undefined
  const stores: EtcdStore[] = []
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close()
    await etcd?.stop()
    etcd = undefined
  })
  const open = (cluster: EtcdCluster, maxOpsPerTxn?: number): EtcdStore => {
    const store = new EtcdStore({endpoints: cluster.endpoints, callTimeoutMs: 2000, ...(maxOpsPerTxn ? {maxOpsPerTxn} : {})})
    stores.push(store)
    return store
  }

  it('fails a commit with a StoreError when etcd dies mid-way, and readers see the old state, then the next commit recovers', async () => {
    etcd = await startEtcd()
    const store = open(etcd, 40)
    const before = clusterTree(C, 2, 1)
    const first = await commitChanges(store, prefix, {revisionKey, expectedModRevision: 0}, before, [], nodeGroups(before))
    const after = clusterTree(C, 12, 2)
    const big = treeDiff(before, after)
    const cluster = etcd
    const failed = await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision}, big.puts, big.deletes, nodeGroups(big.puts), {
      onBatchCommitted: async batch => {
        if (batch === 2) await cluster.kill(0)
      },
    }).catch(e => e)
    expect(failed).toBeInstanceOf(StoreError)
    expect((failed as StoreError).code).toBe('STORE_UNAVAILABLE')
    expect((failed as StoreError).message).toContain(etcd.endpoints[0])

    await expect(readCluster(store, C)).rejects.toBeInstanceOf(StoreError)
    await etcd.restart(0)
    const seen = await readCluster(store, C)
    expect(seen.keys).toEqual(relativeTree(C, before)) // the commit never finished: the complete old state, not a mix

    const retry = await commitChanges(store, prefix, {revisionKey, expectedModRevision: seen.revisionModRevision}, big.puts, big.deletes, nodeGroups(big.puts), {abandonedAfterMs: 0})
    expect(retry.rolledBack).toBeDefined()
    expect((await readCluster(store, C)).keys).toEqual(relativeTree(C, after))
  })

  it('keeps committing when one member of a 3-member etcd is killed', async () => {
    etcd = await startEtcd({members: 3})
    const store = open(etcd)
    const v1 = clusterTree(C, 3, 1)
    let guard = (await commitChanges(store, prefix, {revisionKey, expectedModRevision: 0}, v1, [], nodeGroups(v1))).revision
    await etcd.kill(0)
    await etcd.waitForLeader()
    let current = v1
    for (let revision = 2; revision <= 6; revision++) {
      const next = clusterTree(C, revision + 2, revision)
      const {puts, deletes} = treeDiff(current, next)
      guard = (await commitChanges(store, prefix, {revisionKey, expectedModRevision: guard}, puts, deletes, nodeGroups(puts))).revision
      current = next
    }
    const final = await readCluster(store, C)
    expect(final.keys).toEqual(relativeTree(C, current))
    expect(final.revisionModRevision).toBe(guard)
  })

  it('reports an unreachable etcd as a StoreError instead of hanging', async () => {
    const {freePort} = await import('./support/etcd.js')
    const store = new EtcdStore({endpoints: [`http://127.0.0.1:${await freePort()}`], callTimeoutMs: 2000})
    stores.push(store)
    const error = await readCluster(store, C).catch(e => e)
    expect(error).toBeInstanceOf(StoreError)
    expect((error as StoreError).message).toMatch(/check that etcd is running/)
  })
})
