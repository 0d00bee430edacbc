// Registry on both stores: guarded commits, the multi-transaction protocol and its crash recovery, cluster locks.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'
import {acquireLock, forceUnlock, readLock} from '../src/registry/lock.js'
import {commitChanges} from '../src/registry/commit.js'
import {RegistryError, StaleError} from '../src/registry/errors.js'
import {clusterPrefix, clusterRevisionKey, lockKey, pendingKey} from '../src/registry/keys.js'
import {listClusters, readCluster} from '../src/registry/read.js'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import type {Store} from '../src/store/store.js'
import {eventually, startWorker, type StoreSpec} from './support/children.js'
import {clusterTree, nodeGroups, relativeTree, treeDiff} from './support/cluster-tree.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'

/** Small enough that 10 nodes need many transactions, large enough for one node (16 keys) per transaction. */
const SMALL_TXN = 40
const C = 'zk-main'
const prefix = clusterPrefix(C)
const revisionKey = clusterRevisionKey(C)

interface Backend {
  name: string
  start(): Promise<void>
  stop(): Promise<void>
  fresh(maxOpsPerTxn?: number): Promise<{store: Store; spec: StoreSpec}>
}

const dirs: string[] = []
let etcd: EtcdCluster | undefined
let n = 0
const backends: Backend[] = [
  {
    name: 'embedded',
    async start() {},
    async stop() {
      for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
    },
    async fresh(maxOpsPerTxn) {
      const dir = mkdtempSync(path.join(tmpdir(), 'shoal-registry-'))
      dirs.push(dir)
      return {store: await EmbeddedStore.open({dir, ...(maxOpsPerTxn ? {maxOpsPerTxn} : {})}), spec: {state: dir}}
    },
  },
  {
    name: 'etcd',
    async start() {
      etcd = await startEtcd()
    },
    async stop() {
      await etcd?.stop()
    },
    async fresh(maxOpsPerTxn) {
      const keyPrefix = `/registry-${process.pid}-${++n}/`
      return {
        store: new EtcdStore({endpoints: etcd!.endpoints, prefix: keyPrefix, ...(maxOpsPerTxn ? {maxOpsPerTxn} : {})}),
        spec: {etcd: etcd!.endpoints.join(','), prefix: keyPrefix},
      }
    },
  },
]

/** Register `tree` as a new cluster (guard: revision key absent). */
async function register(store: Store, tree: Record<string, string>) {
  return commitChanges(store, prefix, {revisionKey, expectedModRevision: 0}, tree, [], nodeGroups(tree))
}

describe.each(backends)('registry: $name', backend => {
  let store: Store
  let spec: StoreSpec
  beforeAll(() => backend.start())
  afterAll(() => backend.stop())
  beforeEach(async () => {
    ;({store, spec} = await backend.fresh(SMALL_TXN))
  })
  afterEach(() => store.close())

  it('commits a small diff as one transaction and reads the cluster back', async () => {
    const small = clusterTree(C, 1)
    const committed = await register(store, small)
    expect(committed.transactions).toBe(1)
    const snapshot = await readCluster(store, C)
    expect(snapshot.keys).toEqual(relativeTree(C, small))
    expect(snapshot.revisionModRevision).toBe(committed.revision)
    expect(snapshot.pending).toBeUndefined()
    expect(await listClusters(store)).toEqual([C])
  })

  it('refuses a plan made against an older cluster revision with a StaleError', async () => {
    const v1 = clusterTree(C, 2, 1)
    const first = await register(store, v1)
    const v2 = clusterTree(C, 3, 2)
    await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision}, treeDiff(v1, v2).puts, [])
    const stale = await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision}, {[revisionKey]: '3'}, []).catch(e => e)
    expect(stale).toBeInstanceOf(StaleError)
    expect((stale as StaleError).message).toMatch(/plan is stale.*cluster\/revision.*plan again/)
    expect((await readCluster(store, C)).keys).toEqual(relativeTree(C, v2))
  })

  it('splits a large diff into whole-node transactions that readers never see half-applied', async () => {
    const before = clusterTree(C, 2, 1)
    const first = await register(store, before)
    const after = clusterTree(C, 12, 2)
    const {puts, deletes} = treeDiff(before, after)
    const observed: Array<{batch: number; keys: Record<string, string>; nodesComplete: boolean}> = []
    const result = await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision}, puts, deletes, nodeGroups(puts), {
      onBatchCommitted: async batch => {
        const snapshot = await readCluster(store, C)
        const raw = (await store.range(`${prefix}hosts/`)).kvs
        const perNode = new Map<string, number>()
        for (const kv of raw) perNode.set(kv.key.split('/')[4]!, (perNode.get(kv.key.split('/')[4]!) ?? 0) + 1)
        observed.push({batch, keys: snapshot.keys, nodesComplete: [...perNode.values()].every(count => count === 15)})
      },
    })
    expect(result.transactions).toBeGreaterThan(2)
    expect(observed.length).toBe(result.transactions - 1)
    for (const seen of observed.slice(0, -1)) {
      expect(seen.keys).toEqual(relativeTree(C, before))
      expect(seen.nodesComplete).toBe(true)
    }
    expect(observed.at(-1)!.keys).toEqual(relativeTree(C, after))
    expect(await store.get(pendingKey(prefix))).toBeUndefined()
  })

  it('rolls back a commit that crashed after batch 2 before applying the next one', async () => {
    const before = clusterTree(C, 2, 1)
    const first = await register(store, before)
    const big = treeDiff(before, clusterTree(C, 12, 2))
    const crash = new Error('simulated crash after batch 2')
    const failed = await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision}, big.puts, big.deletes, nodeGroups(big.puts), {
      onBatchCommitted: batch => {
        if (batch === 2) throw crash
      },
    }).catch(e => e)
    expect(failed).toBe(crash)
    const during = await readCluster(store, C)
    expect(during.keys).toEqual(relativeTree(C, before))
    expect(during.pending?.opId).toBeDefined()
    expect((await store.range('mapping/')).kvs.length).toBeGreaterThan(2) // the crashed commit did write some nodes

    const small = {[`${prefix}cluster/spec_hash`]: 'hash-fixed', [revisionKey]: '2'}
    const next = await commitChanges(store, prefix, {revisionKey, expectedModRevision: during.revisionModRevision}, small, [], [], {abandonedAfterMs: 0})
    expect(next.rolledBack?.opId).toBe(during.pending?.opId)
    const final = await readCluster(store, C)
    expect(final.pending).toBeUndefined()
    expect(final.keys).toEqual({...relativeTree(C, before), 'cluster/spec_hash': 'hash-fixed', 'cluster/revision': '2'})
    expect((await store.range('mapping/')).kvs.map(kv => kv.key).sort()).toEqual(Object.keys(before).filter(k => k.startsWith('mapping/')).sort())
  })

  it('does not roll back an interrupted commit while its writer still holds the cluster lock', async () => {
    const before = clusterTree(C, 2, 1)
    const first = await register(store, before)
    const lock = await acquireLock(store, C, {operation: 'scale'})
    const big = treeDiff(before, clusterTree(C, 12, 2))
    await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision, lock: {key: lock.key, id: lock.info.id}}, big.puts, big.deletes, nodeGroups(big.puts), {
      onBatchCommitted: batch => {
        if (batch === 1) throw new Error('paused writer')
      },
    }).catch(() => undefined)
    const intruder = await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision}, {[revisionKey]: '9'}, []).catch(e => e)
    expect(intruder).toBeInstanceOf(RegistryError)
    expect((intruder as RegistryError).code).toBe('COMMIT_IN_PROGRESS')
    await lock.release()
    const after = await commitChanges(store, prefix, {revisionKey, expectedModRevision: first.revision}, {[revisionKey]: '9'}, [])
    expect(after.rolledBack).toBeDefined()
    expect((await readCluster(store, C)).keys).toEqual({...relativeTree(C, before), 'cluster/revision': '9'})
  })

  it('lets only one holder take a cluster lock and tells the second who holds it', async () => {
    const lock = await acquireLock(store, C, {operation: 'create', holder: 'alice@box pid 1'})
    const refused = await acquireLock(store, C, {operation: 'scale'}).catch(e => e)
    expect(refused).toMatchObject({code: 'LOCKED'})
    expect((refused as Error).message).toContain('alice@box pid 1')
    expect((refused as Error).message).toContain('"create"')
    expect((refused as Error).message).toContain(lock.info.started)
    expect((refused as Error).message).toContain(`shoal unlock ${C} --force --id ${lock.info.id}`)
    await lock.release()
    const again = await acquireLock(store, C, {operation: 'scale'})
    await again.release()
  })

  it('force-unlocks only with the lock id', async () => {
    const lock = await acquireLock(store, C, {operation: 'create'})
    await expect(forceUnlock(store, C, 'not-the-id')).rejects.toMatchObject({code: 'LOCK_ID_MISMATCH'})
    expect((await readLock(store, C))?.id).toBe(lock.info.id)
    expect((await forceUnlock(store, C, lock.info.id)).id).toBe(lock.info.id)
    expect(await store.get(lockKey(C))).toBeUndefined()
    await expect(forceUnlock(store, C, lock.info.id)).rejects.toMatchObject({code: 'NOT_LOCKED'})
    await lock.release() // harmless after a force-unlock
  })

  it('frees the lock of a killed process when its lease expires', async () => {
    const worker = startWorker(spec, ['hold-lock', C, '2'])
    const id = await worker.firstLine
    expect((await readLock(store, C))?.id).toBe(id)
    await expect(acquireLock(store, C, {operation: 'scale'})).rejects.toMatchObject({code: 'LOCKED'})
    worker.child.kill('SIGKILL')
    await worker.exited
    let taken: Awaited<ReturnType<typeof acquireLock>> | undefined
    await eventually('the lock to be free again', async () => (taken = await acquireLock(store, C, {operation: 'scale'}).catch(() => undefined)) !== undefined)
    await taken?.release()
  })
})
