// Secrets at rest, on both stores: values holding a secret are stored sealed with a key and read back plain; the
// embedded store forgets replaced values when compacted, bounds its log in bytes, and a read-only open writes nothing.
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {forgetHistory} from '../src/registry/index.js'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'
import {LOG_MAX_BYTES, type State} from '../src/store/embedded/state-file.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import {readSecretsKey, SEALED_PLACEHOLDER, SealedStore} from '../src/store/sealed.js'
import type {Store, WatchEvent} from '../src/store/store.js'
import {eventually} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'

const KEY = Buffer.alloc(32, 7)
const OTHER_KEY = Buffer.alloc(32, 9)
const SECRET = 'pw-"sealed"-1234'

const dirs: string[] = []
let etcd: EtcdCluster | undefined
let prefixes = 0
beforeAll(async () => {
  etcd = await startEtcd()
})
afterAll(async () => {
  await etcd?.stop()
  for (const dir of dirs) rmSync(dir, {recursive: true, force: true})
})

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-secrets-'))
  dirs.push(dir)
  return dir
}

const backends: Array<{name: string; open(): Promise<{raw: Store; again(): Promise<Store>}>}> = [
  {
    name: 'embedded',
    async open() {
      const dir = tempDir()
      return {raw: await EmbeddedStore.open({dir, watchPollMs: 100}), again: () => EmbeddedStore.open({dir, watchPollMs: 100})}
    },
  },
  {
    name: 'etcd',
    async open() {
      const prefix = `/secrets-${process.pid}-${++prefixes}/`
      return {raw: new EtcdStore({endpoints: etcd!.endpoints, prefix}), again: async () => new EtcdStore({endpoints: etcd!.endpoints, prefix})}
    },
  },
]

describe.each(backends)('sealed values on $name', (backend) => {
  it('stores a value holding a secret (raw or JSON-escaped) sealed, reads it back plain, leaves other values plain', async () => {
    const {raw, again} = await backend.open()
    const sealed = new SealedStore(raw, KEY)
    sealed.protect([SECRET])
    await sealed.txn([], [
      {type: 'put', key: 'env/password', value: SECRET},
      {type: 'put', key: 'plan/0000', value: JSON.stringify({env: {password: SECRET}})},
      {type: 'put', key: 'env/port', value: '6379'},
    ])
    const stored = Object.fromEntries((await raw.range('')).kvs.map((kv) => [kv.key, kv.value]))
    expect(stored['env/password']).toMatch(/^shoal-sealed:v1:/)
    expect(stored['plan/0000']).toMatch(/^shoal-sealed:v1:/)
    expect(stored['env/port']).toBe('6379')
    expect(JSON.stringify(stored)).not.toContain('sealed"-1234')
    // Another process with the key reads the values plain.
    const reader = new SealedStore(await again(), KEY)
    expect((await reader.get('env/password'))?.value).toBe(SECRET)
    expect(JSON.parse((await reader.range('plan/')).kvs[0]!.value)).toEqual({env: {password: SECRET}})
    await reader.close()
    await sealed.close()
  })

  it('opens sealed values in watch events', async () => {
    const {raw} = await backend.open()
    const sealed = new SealedStore(raw, KEY)
    sealed.protect([SECRET])
    const start = await sealed.txn([], [{type: 'put', key: 'w/start', value: 'x'}])
    const events: WatchEvent[] = []
    const watch = await sealed.watch('w/', start.revision, (e) => events.push(...e), () => undefined)
    await sealed.txn([], [{type: 'put', key: 'w/pw', value: SECRET}])
    await eventually('a watch event for w/pw', async () => events.length > 0)
    expect(events[0]).toMatchObject({key: 'w/pw', value: SECRET})
    await watch.close()
    await sealed.close()
  })

  it('refuses to read a sealed value without the key or with another key, naming what to give; get and status may show a placeholder', async () => {
    const {raw, again} = await backend.open()
    const sealed = new SealedStore(raw, KEY)
    sealed.protect([SECRET])
    await sealed.txn([], [{type: 'put', key: 'env/password', value: SECRET}])
    const [noKey, otherKey, lenient] = [new SealedStore(await again()), new SealedStore(await again(), OTHER_KEY), new SealedStore(await again(), undefined, {placeholder: true})]
    await expect(noKey.get('env/password')).rejects.toThrow(/stored encrypted and no key was given: pass --secrets-key-file FILE or set SHOAL_SECRETS_KEY/)
    await expect(otherKey.get('env/password')).rejects.toThrow(/with another key/)
    expect((await lenient.get('env/password'))?.value).toBe(SEALED_PLACEHOLDER)
    for (const store of [noKey, otherKey, lenient, sealed]) await store.close()
  })

  it('does not open a sealed value moved to another key', async () => {
    const {raw} = await backend.open()
    const sealed = new SealedStore(raw, KEY)
    sealed.protect([SECRET])
    await sealed.txn([], [{type: 'put', key: 'a', value: SECRET}])
    const moved = (await raw.get('a'))!.value
    await raw.txn([], [{type: 'put', key: 'b', value: moved}])
    await expect(sealed.get('b')).rejects.toThrow(/does not open with the key given/)
    await sealed.close()
  })
})

describe('secrets key', () => {
  it('reads 32 raw bytes, 64 hex digits or base64 from a file, or hex/base64 from SHOAL_SECRETS_KEY; the file wins', () => {
    const dir = tempDir()
    const raw = path.join(dir, 'raw')
    const hex = path.join(dir, 'hex')
    writeFileSync(raw, KEY)
    writeFileSync(hex, `${OTHER_KEY.toString('hex')}\n`)
    expect(readSecretsKey(raw, undefined)).toEqual(KEY)
    expect(readSecretsKey(hex, KEY.toString('hex'))).toEqual(OTHER_KEY)
    expect(readSecretsKey(undefined, KEY.toString('base64'))).toEqual(KEY)
    expect(readSecretsKey(undefined, undefined)).toBeUndefined()
    expect(() => readSecretsKey(undefined, 'short')).toThrow(/SHOAL_SECRETS_KEY is not a 32-byte key/)
  })
})

describe('embedded history', () => {
  const stateOf = (dir: string): State => JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as State

  it('keeps no copy of a replaced or deleted value once compacted, and says so to readers of the past', async () => {
    const dir = tempDir()
    const store = await EmbeddedStore.open({dir})
    const first = await store.txn([], [{type: 'put', key: 'clusters/c/env/password', value: 'old-secret-1'}, {type: 'put', key: 'clusters/c/gone', value: 'old-secret-2'}])
    await store.txn([], [{type: 'put', key: 'clusters/c/env/password', value: 'new-secret'}, {type: 'delete', key: 'clusters/c/gone'}])
    expect(readFileSync(path.join(dir, 'state.json'), 'utf8')).toContain('old-secret-1')
    await forgetHistory(store)
    const text = readFileSync(path.join(dir, 'state.json'), 'utf8')
    expect(text).not.toContain('old-secret-1')
    expect(text).not.toContain('old-secret-2')
    expect(text).toContain('new-secret')
    await expect(store.range('clusters/', {revision: first.revision})).rejects.toMatchObject({code: 'COMPACTED'})
    await store.close()
  })

  it('keeps the history a multi-transaction commit in flight still needs', async () => {
    const dir = tempDir()
    const store = await EmbeddedStore.open({dir})
    const before = await store.txn([], [{type: 'put', key: 'clusters/c/cluster/revision', value: '1'}])
    await store.txn([], [{type: 'put', key: 'clusters/c/cluster/pending', value: '{}'}])
    await store.txn([], [{type: 'put', key: 'clusters/c/cluster/revision', value: '2'}])
    await forgetHistory(store)
    expect((await store.range('clusters/c/', {revision: before.revision})).kvs.map((kv) => kv.value)).toEqual(['1'])
    await store.close()
  })

  it('bounds its change log in bytes, not only in entries', async () => {
    const dir = tempDir()
    const store = await EmbeddedStore.open({dir})
    const big = 'x'.repeat(LOG_MAX_BYTES / 4)
    for (let i = 0; i < 8; i++) await store.txn([], [{type: 'put', key: 'k', value: `${i}${big}`}])
    const state = stateOf(dir)
    const logBytes = state.log.reduce((n, e) => n + e.changes.reduce((m, c) => m + c.k.length + c.v.length + (c.prev?.v.length ?? 0), 0), 0)
    expect(logBytes).toBeLessThanOrEqual(LOG_MAX_BYTES)
    expect(state.compactedRevision).toBeGreaterThan(0)
    await store.close()
  })

  it('opened read-only, creates no state directory and refuses to write', async () => {
    const dir = path.join(tempDir(), 'not-there')
    const store = await EmbeddedStore.open({dir, readOnly: true})
    expect((await store.range('')).kvs).toEqual([])
    await expect(store.txn([], [{type: 'put', key: 'k', value: 'v'}])).rejects.toMatchObject({code: 'UNSUPPORTED'})
    await store.close()
    expect(existsSync(dir)).toBe(false)
  })
})
