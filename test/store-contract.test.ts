// One contract, two stores: the embedded state directory and a real etcd behave the same through the Store interface.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import {StoreError, type Store, type WatchEvent} from '../src/store/store.js'
import {eventually, startWorker, type StoreSpec} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'

interface Backend {
  name: string
  start(): Promise<void>
  stop(): Promise<void>
  /** A fresh, empty store and the spec a child process needs to open the same one. */
  fresh(): Promise<{store: Store; spec: StoreSpec}>
}

const tempDirs: string[] = []
let etcd: EtcdCluster | undefined
let prefixCounter = 0

const backends: Backend[] = [
  {
    name: 'embedded',
    async start() {},
    async stop() {
      for (const dir of tempDirs.splice(0)) rmSync(dir, {recursive: true, force: true})
    },
    async fresh() {
      const dir = mkdtempSync(path.join(tmpdir(), 'shoal-store-'))
      tempDirs.push(dir)
      return {store: await EmbeddedStore.open({dir, watchPollMs: 100}), spec: {state: dir}}
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
    async fresh() {
      const prefix = `/contract-${process.pid}-${++prefixCounter}/`
      const endpoints = etcd!.endpoints
      return {store: new EtcdStore({endpoints, prefix}), spec: {etcd: endpoints.join(','), prefix}}
    },
  },
]

describe.each(backends)('store contract: $name', backend => {
  let store: Store
  let spec: StoreSpec

  beforeAll(() => backend.start())
  afterAll(() => backend.stop())
  beforeEach(async () => {
    ;({store, spec} = await backend.fresh())
  })
  afterEach(() => store.close())

  const put = (key: string, value: string) => store.txn([], [{type: 'put', key, value}])

  it('returns undefined for a missing key and the value with its revisions after a put', async () => {
    expect(await store.get('a')).toBeUndefined()
    const {revision} = await put('a', '1')
    expect(await store.get('a')).toEqual({key: 'a', value: '1', modRevision: revision, createRevision: revision})
  })

  it('ranges over a prefix in key order, at one revision', async () => {
    await store.txn([], [
      {type: 'put', key: 'p/b', value: '2'},
      {type: 'put', key: 'p/a', value: '1'},
      {type: 'put', key: 'q/a', value: 'x'},
    ])
    const {kvs, revision} = await store.range('p/')
    expect(kvs.map(kv => [kv.key, kv.value])).toEqual([['p/a', '1'], ['p/b', '2']])
    expect(kvs.every(kv => kv.modRevision === revision)).toBe(true)
  })

  it('increases the revision with every change and keeps the create revision', async () => {
    const first = await put('k', '1')
    const second = await put('k', '2')
    expect(second.revision).toBeGreaterThan(first.revision)
    expect(await store.get('k')).toMatchObject({value: '2', modRevision: second.revision, createRevision: first.revision})
  })

  it('applies every op when the compares hold, and nothing when one fails', async () => {
    const {revision} = await put('guard', 'g')
    const ok = await store.txn([{key: 'guard', target: 'mod', equals: revision}], [
      {type: 'put', key: 'x', value: '1'},
      {type: 'put', key: 'y', value: '1'},
    ])
    expect(ok.succeeded).toBe(true)
    const refused = await store.txn([{key: 'guard', target: 'mod', equals: revision - 1}], [
      {type: 'put', key: 'x', value: '2'},
      {type: 'delete', key: 'y'},
    ])
    expect(refused).toEqual({succeeded: false, revision: ok.revision})
    expect((await store.get('x'))?.value).toBe('1')
    expect((await store.get('y'))?.value).toBe('1')
  })

  it('creates a key only if absent with a mod == 0 compare', async () => {
    const create = () => store.txn([{key: 'once', target: 'mod', equals: 0}], [{type: 'put', key: 'once', value: 'v'}])
    expect((await create()).succeeded).toBe(true)
    expect((await create()).succeeded).toBe(false)
  })

  it('compares on values, and a value compare on a missing key fails', async () => {
    await put('v', 'blue')
    expect((await store.txn([{key: 'v', target: 'value', equals: 'blue'}], [{type: 'put', key: 'v', value: 'red'}])).succeeded).toBe(true)
    expect((await store.txn([{key: 'v', target: 'value', equals: 'blue'}], [{type: 'put', key: 'v', value: 'green'}])).succeeded).toBe(false)
    expect((await store.txn([{key: 'missing', target: 'value', equals: ''}], [{type: 'put', key: 'v', value: 'x'}])).succeeded).toBe(false)
    expect((await store.get('v'))?.value).toBe('red')
  })

  it('deletes exactly the keys under a prefix', async () => {
    await store.txn([], [
      {type: 'put', key: 'd/1', value: ''},
      {type: 'put', key: 'd/2', value: ''},
      {type: 'put', key: 'dx', value: ''},
    ])
    await store.txn([], [{type: 'deletePrefix', prefix: 'd/'}])
    expect((await store.range('d')).kvs.map(kv => kv.key)).toEqual(['dx'])
  })

  it('reads a prefix as it was at a past revision', async () => {
    const old = await put('h/a', 'old')
    await store.txn([], [
      {type: 'put', key: 'h/a', value: 'new'},
      {type: 'put', key: 'h/b', value: 'added'},
    ])
    const past = await store.range('h/', {revision: old.revision})
    expect(past.kvs.map(kv => [kv.key, kv.value])).toEqual([['h/a', 'old']])
    expect(past.revision).toBe(old.revision)
  })

  it('deletes the keys of a revoked lease', async () => {
    const lease = await store.grantLease(30)
    await store.txn([], [{type: 'put', key: 'leased', value: 'x', lease: lease.id}])
    expect(await store.get('leased')).toBeDefined()
    await lease.revoke()
    expect(await store.get('leased')).toBeUndefined()
  })

  it('refuses a put on a lease that does not exist', async () => {
    const error = await store.txn([], [{type: 'put', key: 'k', value: 'v', lease: '987654321'}]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StoreError)
    expect((error as StoreError).code).toBe('LEASE_NOT_FOUND')
  })

  it('removes the keys of a lease whose owner died, once its TTL passes', async () => {
    const worker = startWorker(spec, ['hold-lease', 'dies', '2'])
    expect(await worker.firstLine).toBe('ready')
    expect((await store.get('dies'))?.value).toBe('held')
    worker.child.kill('SIGKILL')
    await worker.exited
    await eventually('the key of the revoked lease to be gone', async () => (await store.get('dies')) === undefined)
  })

  it('delivers changes after a revision to a watch, in revision order', async () => {
    const start = await put('w/seed', '0')
    await put('w/a', '1')
    await store.txn([], [{type: 'delete', key: 'w/a'}])
    const seen: WatchEvent[] = []
    const errors: Error[] = []
    const watch = await store.watch('w/', start.revision, events => seen.push(...events), error => errors.push(error))
    await put('w/b', '2')
    await put('other', 'not watched')
    await put('w/b', '3')
    await eventually(() => `4 watch events (seen ${seen.length})`, async () => seen.length >= 4).finally(() => watch.close())
    expect(errors).toEqual([])
    expect(seen.map(e => [e.type, e.key, e.value])).toEqual([
      ['put', 'w/a', '1'],
      ['delete', 'w/a', ''],
      ['put', 'w/b', '2'],
      ['put', 'w/b', '3'],
    ])
    const revisions = seen.map(e => e.modRevision)
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b))
    expect(revisions[0]).toBeGreaterThan(start.revision)
  })

  it('lets a process exit after close, releasing its leases', async () => {
    const worker = startWorker(spec, ['open-close', 'closing'])
    const result = await worker.exited
    expect(result).toMatchObject({code: 0, stdout: 'closed\n'})
    expect(await store.get('closing')).toBeUndefined()
  })

  it('refuses calls after close with a CLOSED error', async () => {
    await store.close()
    await expect(store.get('a')).rejects.toMatchObject({code: 'CLOSED'})
  })
})

describe('embedded store specifics', () => {
  let dir: string
  let store: EmbeddedStore
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'shoal-store-'))
    store = await EmbeddedStore.open({dir, watchPollMs: 100})
  })
  afterEach(async () => {
    await store.close()
    rmSync(dir, {recursive: true, force: true})
  })

  it('reports a watch that needs trimmed history as compacted', async () => {
    const start = await store.txn([], [{type: 'put', key: 'c/0', value: ''}])
    const many = Array.from({length: 10_001}, (_, i) => ({type: 'put' as const, key: `c/${i}`, value: String(i)}))
    await store.txn([], many)
    const errors: Error[] = []
    const watch = await store.watch('c/', start.revision - 1, () => undefined, error => errors.push(error))
    await eventually('the watch to report an error', async () => errors.length > 0)
    await watch.close()
    expect(errors[0]).toMatchObject({code: 'COMPACTED'})
    await expect(store.range('c/', {revision: start.revision})).rejects.toMatchObject({code: 'COMPACTED'})
  })

  it('breaks the lock file of a writer that died and commits', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0'])
    writeFileSync(path.join(dir, 'lock'), JSON.stringify({pid: dead.pid, host: hostname(), time: new Date().toISOString()}))
    writeFileSync(path.join(dir, 'state.json.999999.dead.tmp'), '{"torn')
    expect((await store.txn([], [{type: 'put', key: 'after-crash', value: 'ok'}])).succeeded).toBe(true)
    expect((await store.get('after-crash'))?.value).toBe('ok')
    expect(readdirSync(dir).sort()).toEqual(['state.json'])
  })

  it('keeps the state readable by a second store on the same directory', async () => {
    await store.txn([], [{type: 'put', key: 'shared', value: 'yes'}])
    const other = await EmbeddedStore.open({dir})
    expect((await other.get('shared'))?.value).toBe('yes')
    await other.close()
  })
})
