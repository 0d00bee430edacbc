// The ZooKeeper example end to end: `shoal create/scale/destroy` of specs/zookeeper.yaml running Debian's real
// ZooKeeper on sandbox hosts. The ensemble forms (one leader), grows 3 → 5 and shrinks 5 → 3 by dynamic
// reconfiguration under an application's session writing and reading all along (not one operation fails; every
// member's committed membership and myid right, no member restarted, its data kept), and destroy leaves nothing behind.
// Embedded registry for the whole story, etcd for create and destroy.
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {eventually} from './support/children.js'
import {describeLoad, during, Load, type LoadReport} from './support/load.js'
import {ZooKeeperLoadClient} from './support/zookeeper-load.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'
import {exampleSpec, fourLetterWord, freeServicePorts, homeOn, leftUnderSrvShoal, registryKeys, run, sandboxProcesses, zkMode, type SpecCopy} from './support/real-services.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, etcdRegistry, registeredNodes, shoal, type CliResult, type Registry, type RegisteredNode} from './support/shoal-cli.js'

const CLUSTER = 'zk-main'
const HOSTS = 5
const ZK_CLI = '/usr/share/zookeeper/bin/zkCli.sh'
/** The example's secret parameter, given at create as a user would (a file of its own). */
const SUPER_PASSWORD = `e2e-super-${process.pid}-password`
/** Creating or scaling restarts members one at a time; on a loaded 2-core machine that takes minutes, not seconds. */
const OPERATION_MS = 300_000
/** How long a member may take to report its place in the ensemble after an operation returned. */
const SETTLE_MS = 60_000

let sandbox: TestSandbox
let etcd: EtcdCluster
let copy: SpecCopy
let clientPort: number
let peerPort: number
let electionPort: number
let secrets: string
const registries: Registry[] = []

beforeAll(async () => {
  assertCliBuilt()
  ;[sandbox, etcd] = await Promise.all([startSandbox(HOSTS), startEtcd()])
  const [client, peer, election] = freeServicePorts(3)
  ;[clientPort, peerPort, electionPort] = [client!, peer!, election!]
  secrets = mkdtempSync(path.join(tmpdir(), 'shoal-e2e-zk-secret-'))
  writeFileSync(path.join(secrets, 'super'), SUPER_PASSWORD, {mode: 0o600})
  copy = exampleSpec('zookeeper', {client_port: client!, peer_port: peer!, election_port: election!, heap: '128m'})
})

afterAll(async () => {
  // A failed test may leave a cluster running: destroy what is registered, then stopping the sandbox kills whatever is left.
  for (const registry of registries) {
    if ((await registeredNodes(registry, CLUSTER, 'zk').catch(() => [])).length > 0) await cli(registry, 'destroy', CLUSTER, '--yes')
    registry.dispose()
  }
  await Promise.all([sandbox?.stop(), etcd?.stop()])
  copy?.dispose()
  if (secrets) rmSync(secrets, {recursive: true, force: true})
}, OPERATION_MS)

const create = (registry: Registry): Promise<CliResult> => cli(registry, 'create', copy.spec, '--hosts', sandbox.state.inventory, '--set-file', `super_password=${path.join(secrets, 'super')}`)

function cli(registry: Registry, ...args: string[]): Promise<CliResult> {
  return shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
}

function expectOk(result: CliResult): void {
  expect(result.code, describeResult(result)).toBe(0)
}

/** Each member's srvr mode, in sid order. */
function modes(nodes: readonly RegisteredNode[]): Promise<string[]> {
  return Promise.all(nodes.map((n) => zkMode(n.ip, clientPort)))
}

/** Wait (bounded) until the members form one ensemble: one leader, the rest followers; returns the modes seen last. */
async function settledModes(nodes: readonly RegisteredNode[]): Promise<string[]> {
  const expected = ['leader', ...nodes.slice(1).map(() => 'follower')]
  let seen: string[] = []
  await eventually(() => `one leader and ${nodes.length - 1} followers (last seen: ${seen.join(', ')})`, async () => {
    seen = await modes(nodes)
    return JSON.stringify([...seen].sort().reverse()) === JSON.stringify([...expected].sort().reverse())
  }, SETTLE_MS, 1000)
  return seen
}

/** The leader's count of followers in sync with it (mntr zk_synced_followers). */
async function syncedFollowers(nodes: readonly RegisteredNode[]): Promise<number | undefined> {
  for (const node of nodes) {
    const mntr = await fourLetterWord(node.ip, clientPort, 'mntr')
    if (/^zk_server_state\s+leader$/m.test(mntr)) return Number(/^zk_synced_followers\s+(\d+)$/m.exec(mntr)?.[1])
  }
  return undefined
}

/** The membership the ensemble committed, as a member answers `config`: its server lines, sorted. */
async function committedServers(node: RegisteredNode): Promise<string[]> {
  return (await zkCli(node, 'config')).split('\n').filter((l) => l.startsWith('server.')).sort()
}

/** Every member answers the same committed membership (exactly `nodes`), and its myid is its sid. */
async function expectMembership(nodes: readonly RegisteredNode[]): Promise<void> {
  const expected = nodes.map((n) => `server.${n.sid}=${n.ip}:${peerPort}:${electionPort}:participant;${n.ip}:${clientPort}`).sort()
  for (const node of nodes) {
    expect(await committedServers(node), `membership as ${node.node_id} sees it`).toEqual(expected)
    expect(readFileSync(path.join(homeOn(sandbox, node, CLUSTER), 'data', 'myid'), 'utf8').trim(), `myid of ${node.node_id}`).toBe(String(node.sid))
  }
}

/** The pid of each member's ZooKeeper, by node id: unchanged across a scale means the member did not restart. */
function pids(nodes: readonly RegisteredNode[]): Record<string, string> {
  return Object.fromEntries(nodes.map((n) => [n.node_id, readFileSync(path.join(homeOn(sandbox, n, CLUSTER), 'run', 'zookeeper.pid'), 'utf8').trim()]))
}

async function zkCli(node: RegisteredNode, ...args: string[]): Promise<string> {
  const result = await run(ZK_CLI, ['-server', `${node.ip}:${clientPort}`, ...args])
  // zkCli prints some answers (Created ...) on stderr, data on stdout.
  const output = `${result.stdout}${result.stderr}`
  expect(result.code, `zkCli ${args.join(' ')}: ${output.slice(-3000)}`).toBe(0)
  return output
}

const javaInSandbox = (): string[] => sandboxProcesses(sandbox, /\bjava\b/)

describe('ZooKeeper 3 → 5 → 3 members through shoal (embedded registry)', () => {
  let registry: Registry
  const znode = `/shoal-e2e-${process.pid}`
  const payload = `written-before-scaling-${Date.now()}`
  /** An application's session on the first three members (those that stay), writing and reading while the ensemble scales. */
  let clients: ZooKeeperLoadClient | undefined
  const CLIENTS = 4
  beforeAll(() => {
    registry = embeddedRegistry()
    registries.push(registry)
  })
  afterAll(() => clients?.close())

  /** Runs `change` while 4 clients of one session each set and read back their znode every 20 ms. */
  async function underClientLoad(change: () => Promise<void>): Promise<LoadReport> {
    if (!clients) {
      const first = (await registeredNodes(registry, CLUSTER, 'zk')).slice(0, 3)
      clients = new ZooKeeperLoadClient(first.map((n) => ({host: n.ip, port: clientPort})), `/shoal-e2e-load-${process.pid}`)
      await clients.connect(CLIENTS)
    }
    return during(new Load(clients.operation, {clients: CLIENTS, pauseMs: 20}), change)
  }

  it('create: three members form one ensemble, one leader and two followers', async () => {
    expectOk(await create(registry))
    const nodes = await registeredNodes(registry, CLUSTER, 'zk')
    expect(nodes.map((n) => [n.sid, n.state])).toEqual([[1, 'active'], [2, 'active'], [3, 'active']])
    expect(new Set(nodes.map((n) => n.ip)).size).toBe(3)
    await expectMembership(nodes)
    const seen = await settledModes(nodes)
    expect([...seen].sort()).toEqual(['follower', 'follower', 'leader'])
    expect(await syncedFollowers(nodes)).toBe(2)
  }, OPERATION_MS)

  it('run srvr (the spec\'s action) prints every member\'s mode', async () => {
    const result = await cli(registry, 'run', CLUSTER, 'srvr')
    expectOk(result)
    const reported = [...result.stdout.matchAll(/^(\S+) \| Mode: (\w+)$/gm)].map((m) => m[2]!)
    expect(reported.sort()).toEqual(['follower', 'follower', 'leader'])
  }, OPERATION_MS)

  it('a znode written through one member is read through another', async () => {
    const [first, , third] = await registeredNodes(registry, CLUSTER, 'zk')
    expect(await zkCli(first!, 'create', znode, payload)).toContain(`Created ${znode}`)
    expect(await zkCli(third!, 'get', znode)).toContain(payload)
  }, OPERATION_MS)

  it('scale --count 5 under client load: sids 4 and 5 join by reconfig -add one at a time; not one client operation fails; every member sees exactly the five, myid = sid, one leader and four followers, no member restarted, the znode kept', async () => {
    const staying = pids(await registeredNodes(registry, CLUSTER, 'zk'))
    let result: CliResult | undefined
    const report = await underClientLoad(async () => void (result = await cli(registry, 'scale', CLUSTER, '--role', 'zk', '--count', '5')))
    if (!result) throw new Error('the scale did not run')
    expectOk(result)
    expect(report.failed, `${describeLoad(report)}; session states: ${clients!.states.join(', ')}`).toBe(0)
    expect(report.operations).toBeGreaterThan(0)
    expect(await clients!.values(CLIENTS)).toEqual(clients!.written(CLIENTS))
    expect(result.stdout).toMatch(/zk-main-zk-4 \| join: zk-main-zk-4 added as a voter \(4 voters\)[\s\S]*zk-main-zk-5 \| join: zk-main-zk-5 added as a voter \(5 voters\)/)
    const nodes = await registeredNodes(registry, CLUSTER, 'zk')
    expect(pids(nodes.slice(0, 3))).toEqual(staying)
    expect(nodes.map((n) => [n.sid, n.state])).toEqual([1, 2, 3, 4, 5].map((sid) => [sid, 'active']))
    expect(new Set(nodes.map((n) => n.ip)).size).toBe(5)
    await expectMembership(nodes)
    const seen = await settledModes(nodes)
    expect([...seen].sort()).toEqual(['follower', 'follower', 'follower', 'follower', 'leader'])
    expect(await syncedFollowers(nodes)).toBe(4)
    expect(await zkCli(nodes[4]!, 'get', znode)).toContain(payload)
  }, OPERATION_MS)

  it('scale --count 3 under client load: the highest sids leave by reconfig -remove before they stop; not one client operation fails; three members, one leader and two followers, none restarted, the znode kept, nothing left of 4 and 5', async () => {
    const before = await registeredNodes(registry, CLUSTER, 'zk')
    const staying = pids(before.slice(0, 3))
    let result: CliResult | undefined
    const report = await underClientLoad(async () => void (result = await cli(registry, 'scale', CLUSTER, '--role', 'zk', '--count', '3')))
    if (!result) throw new Error('the scale did not run')
    expectOk(result)
    expect(report.failed, `${describeLoad(report)}; session states: ${clients!.states.join(', ')}`).toBe(0)
    expect(await clients!.values(CLIENTS)).toEqual(clients!.written(CLIENTS))
    expect(result.stdout).toMatch(/leave: server [45] removed/)
    expect(result.stdout).not.toContain(SUPER_PASSWORD)
    const nodes = await registeredNodes(registry, CLUSTER, 'zk')
    expect(pids(nodes)).toEqual(staying)
    expect(nodes.map((n) => [n.sid, n.state])).toEqual([[1, 'active'], [2, 'active'], [3, 'active']])
    await expectMembership(nodes)
    const seen = await settledModes(nodes)
    expect([...seen].sort()).toEqual(['follower', 'follower', 'leader'])
    expect(await syncedFollowers(nodes)).toBe(2)
    expect(await zkCli(nodes[1]!, 'get', znode)).toContain(payload)
    const gone = before.filter((n) => n.sid > 3)
    expect(await modes(gone)).toEqual(['none', 'none'])
    expect(javaInSandbox().filter((p) => gone.some((n) => p.includes(`/${n.node_id}/`)))).toEqual([])
    for (const node of gone) expect(existsSync(homeOn(sandbox, node, CLUSTER)), `home of ${node.node_id}`).toBe(false)
    expect(javaInSandbox()).toHaveLength(3)
  }, OPERATION_MS)

  it('run restart: one member at a time, each back in the ensemble before the next goes down; the znode kept', async () => {
    const result = await cli(registry, 'run', CLUSTER, 'restart')
    expectOk(result)
    for (const sid of [1, 2, 3]) expect(result.stdout).toMatch(new RegExp(`${CLUSTER}-zk-${sid} \\| quorum: ${CLUSTER}-zk-${sid} is (leader|follower)`))
    const nodes = await registeredNodes(registry, CLUSTER, 'zk')
    expect([...(await settledModes(nodes))].sort()).toEqual(['follower', 'follower', 'leader'])
    expect(await zkCli(nodes[0]!, 'get', znode)).toContain(payload)
  }, OPERATION_MS)

  it('status lists the three members active', async () => {
    const result = await cli(registry, 'status', CLUSTER, '--json', '--no-health')
    expectOk(result)
    const status = JSON.parse(result.stdout) as {nodes: Array<{node_id: string; state: string}>; last?: {kind: string; result: string}}
    expect(status.nodes.map((n) => [n.node_id, n.state])).toEqual([1, 2, 3].map((i) => [`${CLUSTER}-zk-${i}`, 'active']))
    expect(status.last).toMatchObject({kind: 'run', result: 'ok'})
  })

  it('destroy leaves nothing: no ZooKeeper process on the hosts, /srv/shoal empty, the registry empty', async () => {
    expectOk(await cli(registry, 'destroy', CLUSTER, '--yes'))
    expect(javaInSandbox()).toEqual([])
    expect(leftUnderSrvShoal(sandbox)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)
})

describe('ZooKeeper create and destroy through shoal (etcd registry)', () => {
  let registry: Registry
  beforeAll(() => {
    registry = etcdRegistry(etcd.endpoints)
    registries.push(registry)
  })

  it('create: three members, one leader and two followers', async () => {
    expectOk(await create(registry))
    const nodes = await registeredNodes(registry, CLUSTER, 'zk')
    expect(nodes.map((n) => [n.sid, n.state])).toEqual([[1, 'active'], [2, 'active'], [3, 'active']])
    await expectMembership(nodes)
    expect([...(await settledModes(nodes))].sort()).toEqual(['follower', 'follower', 'leader'])
  }, OPERATION_MS)

  it('destroy leaves nothing on the hosts and nothing under the prefix in etcd', async () => {
    expectOk(await cli(registry, 'destroy', CLUSTER, '--yes'))
    expect(javaInSandbox()).toEqual([])
    expect(leftUnderSrvShoal(sandbox)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)
})
