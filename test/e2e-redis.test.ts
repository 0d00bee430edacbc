// The Redis Cluster example end to end: `shoal create/scale/destroy` of specs/redis-cluster.yaml running Debian's
// redis-server on sandbox hosts. Three masters cover all 16384 slots; 3 → 4 → 3 masters keep every slot served and
// every key written before scaling, and a cluster-aware client writing and reading all along sees not one operation
// fail nor one acknowledged write lost (issue 14); destroy leaves nothing behind.
import {existsSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {describeLoad, during, Load, type LoadReport} from './support/load.js'
import {RedisLoadClient} from './support/redis-load.js'
import {exampleSpec, freeServicePorts, homeOn, leftUnderSrvShoal, registryKeys, run, sandboxProcesses, type SpecCopy} from './support/real-services.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, registeredNodes, shoal, type CliResult, type RegisteredNode, type Registry} from './support/shoal-cli.js'

const CLUSTER = 'redis-main'
const HOSTS = 4
const KEYS = 300
/** Creating serially and moving slots with redis-cli --cluster takes a while on a loaded 2-core machine. */
const OPERATION_MS = 300_000

let sandbox: TestSandbox
let copy: SpecCopy
let registry: Registry
let port: number
let client: RedisLoadClient | undefined

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(HOSTS)
  ;[port] = freeServicePorts(1, {alsoPlus: 10000}) as [number]
  copy = exampleSpec('redis-cluster', {port})
  registry = embeddedRegistry()
})

afterAll(async () => {
  await client?.close()
  if (registry && (await registeredNodes(registry, CLUSTER, 'redis').catch(() => [])).length > 0) await cli('destroy', CLUSTER, '--yes')
  registry?.dispose()
  await sandbox?.stop()
  copy?.dispose()
}, OPERATION_MS)

function cli(...args: string[]): Promise<CliResult> {
  return shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
}

function expectOk(result: CliResult): void {
  expect(result.code, describeResult(result)).toBe(0)
}

async function redisCli(node: RegisteredNode, args: string[], input?: string): Promise<string> {
  const result = await run('redis-cli', ['-h', node.ip, '-p', String(port), ...args], input === undefined ? {} : {input})
  expect(result.code, `redis-cli ${args.join(' ')}: ${result.stderr}`).toBe(0)
  return result.stdout
}

/** CLUSTER INFO of a node as a record. */
async function clusterInfo(node: RegisteredNode): Promise<Record<string, string>> {
  const text = await redisCli(node, ['cluster', 'info'])
  return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]))
}

/** Every node sees the same healthy cluster of exactly `nodes`, all slots assigned and served, each master holding slots. */
async function expectHealthyCluster(nodes: readonly RegisteredNode[]): Promise<void> {
  for (const node of nodes) {
    const info = await clusterInfo(node)
    expect(info, `cluster info of ${node.node_id}`).toMatchObject({
      cluster_state: 'ok', cluster_slots_assigned: '16384', cluster_slots_ok: '16384', cluster_known_nodes: String(nodes.length), cluster_size: String(nodes.length),
    })
  }
  const check = await run('redis-cli', ['--cluster', 'check', `${nodes[0]!.ip}:${port}`])
  expect(check.stdout, check.stderr).toContain('[OK] All 16384 slots covered.')
  expect(check.stdout).toContain('[OK] All nodes agree about slots configuration.')
  const members = (await redisCli(nodes[0]!, ['cluster', 'nodes'])).trim().split('\n').map((line) => line.split(' '))
  expect(members.map((f) => f[1]!.split('@')[0]).sort()).toEqual(nodes.map((n) => `${n.ip}:${port}`).sort())
  for (const fields of members) expect(fields.length, `slots of ${fields[1]}`).toBeGreaterThan(8)
}

const keyCommands = (verb: 'SET' | 'GET'): string =>
  Array.from({length: KEYS}, (_, i) => (verb === 'SET' ? `SET e2e:${i} value-${i}` : `GET e2e:${i}`)).join('\n') + '\n'

/** Values of every test key, read in cluster mode (redirects followed) through `node`. */
async function readKeys(node: RegisteredNode): Promise<string[]> {
  const out = await redisCli(node, ['-c'], keyCommands('GET'))
  return out.split('\n').filter((l) => l !== '' && !l.startsWith('-> Redirected'))
}

/** Runs `change` while 4 clients each SET and GET a key every 10 ms through ioredis's cluster client. */
async function underLoad(change: () => Promise<void>): Promise<LoadReport> {
  if (!client) {
    client = new RedisLoadClient((await registeredNodes(registry, CLUSTER, 'redis')).map((n) => ({host: n.ip, port})))
    await client.connect()
  }
  return during(new Load(client.operation, {clients: 4, pauseMs: 10}), change)
}

async function expectNothingLost(report: LoadReport): Promise<void> {
  expect(report.failed, describeLoad(report)).toBe(0)
  expect(report.operations).toBeGreaterThan(0)
  expect(await client!.lost(), `acknowledged writes of ${client!.keys} keys`).toEqual([])
}

const expectedValues = Array.from({length: KEYS}, (_, i) => `value-${i}`)
const redisInSandbox = (): string[] => sandboxProcesses(sandbox, /redis-server/)

describe('Redis Cluster 3 → 4 → 3 masters through shoal (embedded registry)', () => {
  it('create: three masters cover all 16384 slots', async () => {
    expectOk(await cli('create', copy.spec, '--hosts', sandbox.state.inventory))
    const nodes = await registeredNodes(registry, CLUSTER, 'redis')
    expect(nodes.map((n) => [n.sid, n.state])).toEqual([[1, 'active'], [2, 'active'], [3, 'active']])
    await expectHealthyCluster(nodes)
  }, OPERATION_MS)

  it('keys written through one master are read through another', async () => {
    const [first, second] = await registeredNodes(registry, CLUSTER, 'redis')
    const written = (await redisCli(first!, ['-c'], keyCommands('SET'))).split('\n').filter((l) => l === 'OK')
    expect(written).toHaveLength(KEYS)
    expect(await readKeys(second!)).toEqual(expectedValues)
  }, OPERATION_MS)

  it('scale --count 4 under steady writes and reads: none fails or is lost; the fourth master joins and takes slots; all slots served, every key still readable', async () => {
    await expectNothingLost(await underLoad(async () => expectOk(await cli('scale', CLUSTER, '--role', 'redis', '--count', '4'))))
    const nodes = await registeredNodes(registry, CLUSTER, 'redis')
    expect(nodes.map((n) => [n.sid, n.state])).toEqual([1, 2, 3, 4].map((sid) => [sid, 'active']))
    await expectHealthyCluster(nodes)
    expect(await readKeys(nodes[3]!)).toEqual(expectedValues)
  }, OPERATION_MS)

  it('scale --count 3 under steady writes and reads: none fails or is lost; the highest sid is drained and leaves; all slots served by three, every key still readable', async () => {
    const leaving = (await registeredNodes(registry, CLUSTER, 'redis'))[3]!
    await expectNothingLost(await underLoad(async () => expectOk(await cli('scale', CLUSTER, '--role', 'redis', '--count', '3'))))
    const nodes = await registeredNodes(registry, CLUSTER, 'redis')
    expect(nodes.map((n) => [n.sid, n.state])).toEqual([[1, 'active'], [2, 'active'], [3, 'active']])
    await expectHealthyCluster(nodes)
    expect(await readKeys(nodes[2]!)).toEqual(expectedValues)
    expect(redisInSandbox().filter((p) => p.includes(`${leaving.ip}:${port}`))).toEqual([])
    expect(existsSync(homeOn(sandbox, leaving, CLUSTER))).toBe(false)
  }, OPERATION_MS)

  it('destroy leaves nothing: no redis-server on the hosts, /srv/shoal empty, the registry empty', async () => {
    await client?.close()
    client = undefined
    expectOk(await cli('destroy', CLUSTER, '--yes'))
    expect(redisInSandbox()).toEqual([])
    expect(leftUnderSrvShoal(sandbox)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)
})
