// shoal metad as a real process over the embedded store and a real etcd: callers on 127.0.1.x get their own views,
// isolation between clusters, forwarded addresses, shared addresses, long-polls woken by registry-only scales, one
// revision per answer (never half of a multi-transaction change), restarts, etcd away and back, compaction.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {Etcd3} from 'etcd3'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse as parseYaml} from 'yaml'
import {clusterPrefix, clusterRevisionKey, commitChanges, ensureNodeTokenKey, nodeToken, readCluster} from '../src/registry/index.js'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import {openStore} from '../src/store/open.js'
import type {Store} from '../src/store/store.js'
import {eventually} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'
import {ask, startMetad, stopAllMetad, type Answer, type MetadProcess} from './support/metad.js'
import {assertCliBuilt, describeResult, embeddedRegistry, etcdRegistry, readRegistered, shoal, type Registry} from './support/shoal-cli.js'

/** Tests that run shoal commands and start metad processes: minutes on this shared 2-core machine when it is busy. */
const SLOW = 300_000

let etcd: EtcdCluster | undefined
const cleanups: Array<() => void> = []

beforeAll(async () => {
  assertCliBuilt()
  etcd = await startEtcd()
})
afterAll(async () => {
  await stopAllMetad()
  await etcd?.stop()
  for (const cleanup of cleanups) cleanup()
})

/** Addresses of the inventories: every cluster on hosts of its own, so an address names one node (except `pair`). */
const ZK_HOSTS = Array.from({length: 8}, (_, i) => `127.0.1.${i + 1}`)
const APP_HOSTS = ['127.0.1.11', '127.0.1.12']
const OTHER_HOST = '127.0.1.21'
const PAIR_HOST = '127.0.1.31'
const PROXY = '127.0.1.41'
const STRANGER = '127.0.1.200'

interface Specs {
  zk: string
  app: string
  other: string
  pair: string
  hosts: Record<'zk' | 'app' | 'other' | 'pair', string>
}

function inventory(dir: string, name: string, addresses: readonly string[]): string {
  const file = path.join(dir, `${name}-hosts.yaml`)
  writeFileSync(file, `apiVersion: shoal/v1\nkind: Hosts\nhosts:\n${addresses.map((a, i) => `  - {name: ${name}${i + 1}, address: ${a}}`).join('\n')}\n`)
  return file
}

function spec(dir: string, name: string, body: string): string {
  const file = path.join(dir, `${name}.yaml`)
  writeFileSync(file, `apiVersion: shoal/v1\nkind: Cluster\nname: ${name}\n${body}`)
  return file
}

function role(name: string, count: number, extra = ''): string {
  return `roles:\n  ${name}:\n    image: debian-12\n    cpu: 1\n    memory: 256Mi\n    disk: 1Gi\n    count: ${count}\n    scale: {min: 1, max: 40}\n${extra}`
}

function secretParam(name: string, value: string): string {
  return `  ${name}: {type: string, description: A secret., default: ${JSON.stringify(value)}, secret: true}\n`
}

function writeSpecs(kind: string): Specs {
  const dir = mkdtempSync(path.join(tmpdir(), `shoal-metad-${kind}-`))
  cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
  return {
    zk: spec(dir, `zk-${kind}`, `env:\n  client_port: {type: integer, description: Port., default: 2181}\n${secretParam('password', `zk-secret-${kind}`)}${role('zk', 3)}`),
    app: spec(dir, `app-${kind}`, `links: {zk: zk-${kind}}\nenv:\n${secretParam('api_key', `app-secret-${kind}`)}${role('web', 2)}`),
    other: spec(dir, `other-${kind}`, `env:\n${secretParam('password', `other-secret-${kind}`)}${role('db', 1)}`),
    pair: spec(dir, `pair-${kind}`, role('a', 2, '    placement: {max_per_host: 2}\n')),
    hosts: {
      zk: inventory(dir, 'zk', ZK_HOSTS),
      app: inventory(dir, 'app', APP_HOSTS),
      other: inventory(dir, 'other', [OTHER_HOST]),
      pair: inventory(dir, 'pair', [PAIR_HOST]),
    },
  }
}

interface Tree {
  host: {node_id: string; ip: string; sid: number; role: string}
  hosts: Record<string, Record<string, {node_id: string; ip: string; sid: number}>>
  cluster: {name: string; revision: number}
  env: Record<string, unknown>
  links: Record<string, {cluster: string; env: Record<string, unknown>; hosts: Record<string, Record<string, {ip: string}>>}>
  'adding-hosts': Record<string, Record<string, unknown>>
  'deleting-hosts': Record<string, Record<string, unknown>>
}

function expectStatus(answer: Answer, status: number): void {
  expect(answer.status, `${answer.status} ${answer.body}`).toBe(status)
}

/** A promise's outcome if it has settled by now (after pending callbacks ran), else 'pending'. */
async function settled<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))])
}

describe.each(['embedded', 'etcd'] as const)('shoal metad over the %s registry', (kind) => {
  let registry: Registry
  let specs: Specs
  let metad: MetadProcess
  let store: Store
  const zk = `zk-${kind}`
  const app = `app-${kind}`
  const other = `other-${kind}`
  const pair = `pair-${kind}`

  const run = async (...args: string[]): Promise<void> => {
    const result = await shoal([...args, ...registry.flags])
    expect(result.code, describeResult(result)).toBe(0)
  }
  /** The mod revision of a cluster's revision key: the revision its current state was committed at. */
  const committed = async (cluster: string): Promise<number> => (await readCluster(store, cluster)).revisionModRevision
  const nodes = async (cluster: string): Promise<Array<{node_id: string; ip: string; sid: number}>> => (await readRegistered(registry, cluster)).nodes
  const view = async (from: string, pathname = '/self'): Promise<Answer> => ask(metad.url, pathname, {from})
  /** metad has applied the registry up to `revision` (it says so in /health). */
  const caughtUp = async (target: MetadProcess, revision: number): Promise<void> => {
    await eventually(`metad to reach registry revision ${revision}`, async () => ((await ask(target.url, '/health')).json() as {revision: number}).revision >= revision)
  }
  const storeRevision = async (): Promise<number> => (await store.range('nothing/')).revision

  beforeAll(async () => {
    registry = kind === 'embedded' ? embeddedRegistry() : etcdRegistry(etcd!.endpoints)
    cleanups.push(() => registry.dispose())
    specs = writeSpecs(kind)
    await Promise.all([
      run('apply', specs.zk, '--hosts', specs.hosts.zk, '--registry-only').then(() => run('apply', specs.app, '--hosts', specs.hosts.app, '--registry-only')),
      run('apply', specs.other, '--hosts', specs.hosts.other, '--registry-only'),
      run('apply', specs.pair, '--hosts', specs.hosts.pair, '--registry-only'),
    ])
    store = await openStore({...registry.store, env: {}})
    metad = await startMetad(registry.flags, ['--verbose', '--trusted-proxy', `${PROXY}/32`])
  }, SLOW)
  afterAll(async () => {
    await metad?.stop()
    await store?.close()
  })

  it('answers each caller with its own node, its cluster and its members, at the revision they were committed', async () => {
    const members = await nodes(zk)
    expect(members.map((n) => n.ip).sort()).toEqual(ZK_HOSTS.slice(0, 3))
    for (const member of members) {
      const answer = await view(member.ip)
      expectStatus(answer, 200)
      const tree = answer.json() as Tree
      expect(tree.host).toMatchObject({node_id: member.node_id, ip: member.ip, sid: member.sid, role: 'zk'})
      expect(Object.keys(tree.hosts.zk!)).toEqual(members.map((n) => n.node_id))
      expect(tree.cluster.name).toBe(zk)
      expect(tree.env).toEqual({client_port: 2181, password: `zk-secret-${kind}`})
      expect(tree.links).toEqual({})
      expect(answer.revision).toBe(await committed(zk))
    }
  })

  it("shows a linked cluster's hosts and env, and the answer's revision is the newer of the two clusters'", async () => {
    const [web] = await nodes(app)
    const answer = await view(web!.ip)
    expectStatus(answer, 200)
    const tree = answer.json() as Tree
    expect(tree.links.zk!.cluster).toBe(zk)
    expect(Object.values(tree.links.zk!.hosts.zk!).map((h) => h.ip).sort()).toEqual(ZK_HOSTS.slice(0, 3))
    expect(answer.revision).toBe(Math.max(await committed(zk), await committed(app)))
  })

  it("never serves a linked cluster's secret parameters, nor anything of an unrelated cluster", async () => {
    const [web] = await nodes(app)
    const answer = await view(web!.ip)
    const tree = answer.json() as Tree
    expect(tree.links.zk!.env).toEqual({client_port: 2181})
    expect(tree.env).toEqual({api_key: `app-secret-${kind}`})
    expect(answer.body).not.toContain(`zk-secret-${kind}`)
    expect(answer.body).not.toContain(other)
    expectStatus(await view(web!.ip, '/self/links/zk/env/password'), 404)
    const db = await view(OTHER_HOST)
    expect(db.body).not.toContain(zk)
    expect(db.body).not.toContain(`app-secret-${kind}`)
    expect((db.json() as Tree).env).toEqual({password: `other-secret-${kind}`})
    // The agent's answer (view, files and templates) keeps to the same bounds.
    const agent = await ask(metad.url, '/agent', {from: web!.ip})
    expectStatus(agent, 200)
    expect((agent.json() as {view: {links: Record<string, {env: unknown}>; env: unknown}}).view).toMatchObject({env: {api_key: `app-secret-${kind}`}, links: {zk: {env: {client_port: 2181}}}})
    expect(agent.body).not.toContain(`zk-secret-${kind}`)
    expect(agent.body).not.toContain(other)
  })

  it('serves every subpath: a leaf as a JSON value, bare text, sorted path<TAB>value lines, YAML', async () => {
    const [first] = await nodes(zk)
    const from = first!.ip
    expect((await ask(metad.url, '/self/host/sid', {from})).json()).toBe(first!.sid)
    const leaf = await ask(metad.url, '/self/host/ip', {from, accept: 'text/plain'})
    expect([leaf.body, leaf.headers['content-type']]).toEqual([from, 'text/plain; charset=utf-8'])
    const lines = (await ask(metad.url, '/self/cluster', {from, accept: 'text/plain'})).body.split('\n').filter(Boolean)
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['/self/cluster/description', '/self/cluster/name', '/self/cluster/revision', '/self/cluster/spec_hash'])
    expect(lines).toContain(`/self/cluster/name\t${zk}`)
    const hosts = await ask(metad.url, `/self/hosts/zk/${first!.node_id}`, {from, accept: 'application/yaml'})
    expect(hosts.headers['content-type']).toBe('application/yaml; charset=utf-8')
    expect(parseYaml(hosts.body)).toEqual((await ask(metad.url, `/self/hosts/zk/${first!.node_id}`, {from})).json())
    expect((await ask(metad.url, '/self', {from, accept: 'text/plain'})).body).toContain(`/self/host/node_id\t${first!.node_id}\n`)
    const missing = await ask(metad.url, '/self/hosts/nope', {from})
    expectStatus(missing, 404)
    expect(missing.json()).toMatchObject({error: {code: 'no-such-path'}})
    expectStatus(await ask(metad.url, '/self', {from, accept: 'image/png'}), 406)
  })

  it('answers an address that holds no node with 404 unknown-node and nothing else', async () => {
    const answer = await view(STRANGER)
    expectStatus(answer, 404)
    expect(answer.json()).toEqual({error: {code: 'unknown-node', message: `no node is registered at ${STRANGER}`}})
    expect(answer.revision).toBeUndefined()
  })

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const [first, second] = await nodes(zk)
    const viaProxy = await ask(metad.url, '/self/host/node_id', {from: PROXY, headers: {'x-forwarded-for': first!.ip}})
    expect(viaProxy.json()).toBe(first!.node_id)
    const fromStranger = await ask(metad.url, '/self', {from: STRANGER, headers: {'x-forwarded-for': first!.ip}})
    expect(fromStranger.json()).toMatchObject({error: {code: 'unknown-node'}})
    const fromNode = await ask(metad.url, '/self/host/node_id', {from: second!.ip, headers: {'x-forwarded-for': first!.ip}})
    expect(fromNode.json()).toBe(second!.node_id)
    // A client cannot hide behind the proxy by writing addresses further left: the proxy appends what it saw.
    const spoofed = await ask(metad.url, '/self', {from: PROXY, headers: {'x-forwarded-for': `${first!.ip}, ${STRANGER}`}})
    expect(spoofed.json()).toMatchObject({error: {code: 'unknown-node'}})
  })

  it('asks callers on a shared address to name their node and prove it with its token', async () => {
    const [a1, a2] = await nodes(pair)
    expect([a1!.ip, a2!.ip]).toEqual([PAIR_HOST, PAIR_HOST])
    const bare = await view(PAIR_HOST)
    expectStatus(bare, 409)
    expect(bare.json()).toMatchObject({error: {code: 'ambiguous-node'}})
    expect(bare.body).not.toContain(a1!.node_id)
    expect(bare.body).not.toContain(a2!.node_id)
    expectStatus(await ask(metad.url, `/self?node=${a1!.node_id}`, {from: PAIR_HOST}), 409)
    // The key the executor creates at create (a registry-only create places no files; see metad-token.test.ts).
    const key = await ensureNodeTokenKey(store, pair)
    await caughtUp(metad, await storeRevision())
    const wrong = await ask(metad.url, `/self?node=${a1!.node_id}`, {from: PAIR_HOST, headers: {'x-shoal-token': nodeToken(key, pair, a2!.node_id)}})
    expectStatus(wrong, 403)
    expect(wrong.json()).toMatchObject({error: {code: 'invalid-token'}})
    const stranger = await ask(metad.url, `/self?node=${a1!.node_id}`, {from: STRANGER, headers: {'x-shoal-token': nodeToken(key, pair, a1!.node_id)}})
    expectStatus(stranger, 404)
    for (const node of [a1!, a2!]) {
      const proven = await ask(metad.url, `/self/host/node_id?node=${node.node_id}`, {from: PAIR_HOST, headers: {'x-shoal-token': nodeToken(key, pair, node.node_id)}})
      expect(proven.json()).toBe(node.node_id)
    }
  })

  it('wakes exactly the long-polls of the clusters a registry-only scale touches (its own and those linking to it)', async () => {
    const members = (await nodes(zk)).length
    const callers = [...(await nodes(zk)), ...(await nodes(app)), ...(await nodes(other))]
    const before = new Map<string, number>()
    for (const caller of callers) before.set(caller.ip, (await view(caller.ip)).revision!)
    const polls = new Map(callers.map((c) => [c.ip, ask(metad.url, `/self?wait=true&prev_version=${before.get(c.ip)!}&timeout=120`, {from: c.ip, limitMs: 150_000})]))
    polls.get(OTHER_HOST)!.catch(() => undefined) // answered by a later test's change, or cut off when metad stops
    await eventually(`all ${callers.length} long-polls waiting`, async () => (await ask(metad.url, '/metrics')).body.includes(`shoal_metad_long_polls_open ${callers.length}\n`))
    await run('scale', zk, '--role', 'zk', '--add', '1', '--hosts', specs.hosts.zk, '--registry-only')
    for (const caller of callers) {
      if (caller.ip === OTHER_HOST) continue
      const woken = await polls.get(caller.ip)!
      expectStatus(woken, 200)
      expect(woken.revision).toBeGreaterThan(before.get(caller.ip)!)
      const tree = woken.json() as Tree
      expect(Object.keys((tree.hosts.zk ?? tree.links.zk!.hosts.zk)!)).toHaveLength(members + 1)
    }
    // The other cluster's poll was looked at in the same round that answered the ones above, and left waiting.
    expect(await settled(polls.get(OTHER_HOST)!)).toBe('pending')
    expect((await ask(metad.url, '/metrics')).body).toContain('shoal_metad_long_polls_open 1\n')
  }, SLOW)

  it('answers at once when the caller is behind, and 304 with the same revision when nothing changed in time', async () => {
    const [first] = await nodes(zk)
    const now = await view(first!.ip)
    const behind = await ask(metad.url, `/self?wait=true&prev_version=${now.revision! - 1}`, {from: first!.ip})
    expectStatus(behind, 200)
    expect([behind.revision, behind.body]).toEqual([now.revision, now.body])
    const unchanged = await ask(metad.url, `/self/host?wait=true&prev_version=${now.revision!}&timeout=1s`, {from: first!.ip})
    expect([unchanged.status, unchanged.revision, unchanged.body]).toEqual([304, now.revision, ''])
  })

  it('never shows half of a multi-transaction change: the cluster reads as before until its last batch', async () => {
    const [db] = await nodes(other)
    const base = await view(OTHER_HOST)
    const prefix = clusterPrefix(other)
    const revisionKey = clusterRevisionKey(other)
    const snapshot = await readCluster(store, other)
    // A second node, cloned from the first key by key, written 3 operations per transaction.
    const newId = `${other}-db-99`
    const newIp = '127.0.1.22'
    const puts: Record<string, string> = {[revisionKey]: String(Number(snapshot.keys['cluster/revision']) + 1)}
    for (const [key, value] of Object.entries(snapshot.keys)) {
      if (!key.startsWith(`hosts/db/${db!.node_id}/`)) continue
      const field = key.split('/')[3]!
      puts[`${prefix}hosts/db/${newId}/${field}`] = field === 'node_id' ? newId : field === 'ip' ? newIp : field === 'sid' ? '99' : field === 'bootstrap' ? 'false' : value
    }
    puts[`mapping/${newIp}/${other}/${newId}`] = `${other}/${newId}`
    const small = kind === 'embedded'
      ? await EmbeddedStore.open({dir: registry.store.state!, maxOpsPerTxn: 3})
      : new EtcdStore({endpoints: etcd!.endpoints, prefix: registry.store.prefix!, maxOpsPerTxn: 3})
    const seenMidway: Answer[] = []
    try {
      const result = await commitChanges(small, prefix, {revisionKey, expectedModRevision: snapshot.revisionModRevision}, puts, [], [], {
        onBatchCommitted: async (batch, batches) => {
          if (batch === batches) return
          await caughtUp(metad, await storeRevision())
          seenMidway.push(await view(OTHER_HOST), await view(newIp))
        },
      })
      expect(result.transactions).toBeGreaterThan(3)
    } finally {
      await small.close()
    }
    expect(seenMidway.length).toBeGreaterThan(0)
    for (let i = 0; i < seenMidway.length; i += 2) {
      expect([seenMidway[i]!.revision, seenMidway[i]!.body]).toEqual([base.revision, base.body])
      expect(seenMidway[i + 1]!.json()).toMatchObject({error: {code: 'unknown-node'}})
    }
    await caughtUp(metad, await storeRevision())
    const after = await view(OTHER_HOST)
    expect(Object.keys((after.json() as Tree).hosts.db!)).toEqual([db!.node_id, newId])
    expect(after.revision).toBe(await committed(other))
    expect(((await view(newIp)).json() as Tree).host.node_id).toBe(newId)
  }, SLOW)

  it('gives the same answers from a second metad, and from one restarted while a caller waits', async () => {
    const [first] = await nodes(zk)
    const second = await startMetad(registry.flags)
    try {
      for (const from of [first!.ip, APP_HOSTS[0]!, OTHER_HOST]) {
        const [a, b] = [await view(from), await ask(second.url, '/self', {from})]
        expect([b.status, b.revision, b.body]).toEqual([a.status, a.revision, a.body])
      }
      const now = await ask(second.url, '/self', {from: first!.ip})
      const waiting = ask(second.url, `/self?wait=true&prev_version=${now.revision!}`, {from: first!.ip})
      await eventually('the long-poll waiting on the second metad', async () => (await ask(second.url, '/metrics')).body.includes('shoal_metad_long_polls_open 1\n'))
      const port = second.port
      await second.stop()
      const interrupted = await waiting
      expectStatus(interrupted, 503)
      expect(interrupted.json()).toMatchObject({error: {code: 'shutting-down'}})
      const restarted = await startMetad(registry.flags, [], port)
      try {
        const again = ask(restarted.url, `/self?wait=true&prev_version=${now.revision!}&timeout=120`, {from: first!.ip, limitMs: 150_000})
        await eventually('the long-poll waiting on the restarted metad', async () => (await ask(restarted.url, '/metrics')).body.includes('shoal_metad_long_polls_open 1\n'))
        await run('scale', zk, '--role', 'zk', '--add', '1', '--hosts', specs.hosts.zk, '--registry-only')
        const woken = await again
        expectStatus(woken, 200)
        expect(woken.revision).toBeGreaterThan(now.revision!)
        expect(restarted.stderr()).not.toMatch(/GET \/self/) // no request lines without --verbose
        expect(metad.stderr()).toMatch(/GET \/self\S* 200 /)
      } finally {
        await restarted.stop()
      }
    } finally {
      await second.stop()
    }
  }, SLOW)

  it('recovers from a compacted watch by reading the registry afresh', async () => {
    const [first, ...rest] = await nodes(zk)
    const reads = async (): Promise<number> => Number(/shoal_metad_registry_reads_total\{reason="compacted"\} (\d+)/.exec((await ask(metad.url, '/metrics')).body)?.[1] ?? NaN)
    // Usually 0; more when metad's watch fell behind the embedded store's kept history (1 MB of changes) on a busy machine.
    const before = await reads()
    expect(before).toBeGreaterThanOrEqual(0)
    metad.pause()
    try {
      if (kind === 'embedded') {
        // The embedded store keeps the last 10,000 changes: push the ones metad needs out of it.
        const filler = Array.from({length: 10_001}, (_, i) => ({type: 'put' as const, key: `filler/${i}`, value: ''}))
        await store.txn([], filler)
        await run('scale', zk, '--role', 'zk', '--add', '1', '--hosts', specs.hosts.zk, '--registry-only')
        await store.txn([], [{type: 'deletePrefix', prefix: 'filler/'}])
      } else {
        // etcd keeps a live watch going through a compaction; one that must resume from before it is refused.
        await etcd!.restart(0)
        await run('scale', zk, '--role', 'zk', '--add', '1', '--hosts', specs.hosts.zk, '--registry-only')
        const client = new Etcd3({hosts: etcd!.endpoints})
        try {
          await client.kv.compact({revision: String(await storeRevision()), physical: true})
        } finally {
          client.close()
        }
      }
    } finally {
      metad.resume()
    }
    await eventually('metad to read the registry afresh after the compaction', async () => (await reads()) > before, 30_000)
    const answer = await view(first!.ip)
    expect(Object.keys((answer.json() as Tree).hosts.zk!)).toHaveLength(rest.length + 2)
    expect(answer.revision).toBe(await committed(zk))
  }, SLOW)

  it.runIf(kind === 'etcd')('answers the last state it had, marked stale, while etcd is away, and catches up when it is back', async () => {
    const [first] = await nodes(zk)
    const before = await view(first!.ip)
    await etcd!.kill(0)
    try {
      await eventually('/health to report the registry away', async () => (await ask(metad.url, '/health')).status === 503, 30_000)
      expect((await ask(metad.url, '/health')).json()).toMatchObject({status: 'stale'})
      const during = await view(first!.ip)
      expect([during.status, during.revision, during.body, during.headers['x-shoal-stale']]).toEqual([200, before.revision, before.body, 'true'])
      expect((await ask(metad.url, '/metrics')).body).toContain('shoal_metad_registry_stale 1\n')
    } finally {
      await etcd!.restart(0)
    }
    await run('scale', zk, '--role', 'zk', '--add', '1', '--hosts', specs.hosts.zk, '--registry-only')
    const target = await committed(zk)
    await eventually('metad to serve the change made after etcd came back, no longer stale', async () => {
      const answer = await view(first!.ip)
      return answer.revision === target && answer.headers['x-shoal-stale'] === undefined
    }, 30_000)
    expect((await ask(metad.url, '/health')).json()).toMatchObject({status: 'ok'})
  }, SLOW)
})
