// Clusters with `agent: true` on real sandbox hosts (sshd, own network namespace), a real metad on the sandbox's
// gateway and real services: shoal starts each node's agent, the agents deliver every file change (ZooKeeper's
// member list on 3 → 5 → 3 with no member restarted, its zoo.cfg on a parameter change, HAProxy's lb following web 2 → 4 → 1), a killed agent comes back, a node cut off during a
// scale holds the operation until it is back, and destroy leaves no agent, file or registry key behind.
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {sandboxPartition} from '../src/sandbox/sandbox.js'
import {eventually} from './support/children.js'
import {freePort} from './support/etcd.js'
import {startMetad, type MetadProcess} from './support/metad.js'
import {exampleSpec, freeServicePorts, homeOn, leftUnderSrvShoal, registryKeys, sandboxProcesses, zkMode, type SpecCopy} from './support/real-services.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, registeredNodes, shoal, type CliResult, type RegisteredNode, type Registry} from './support/shoal-cli.js'

const ZK = 'zk-main'
const WEB = 'web-lb'
const HOSTS = 5
const OPERATION_MS = 300_000
const SETTLE_MS = 90_000
const ZK_SUPER = ['--set', `super_password=e2e-agents-${process.pid}-super`]

let sandbox: TestSandbox
let registry: Registry
let metad: MetadProcess
let zk: SpecCopy
let web: SpecCopy
let clientPort: number
let lbPort: number

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(HOSTS)
  registry = embeddedRegistry()
  const [client, peer, election, webPort, lb] = freeServicePorts(5)
  clientPort = client!
  lbPort = lb!
  zk = exampleSpec('zookeeper', {client_port: client!, peer_port: peer!, election_port: election!, heap: '64m'}, {agent: true})
  web = exampleSpec('haproxy', {web_port: webPort!, lb_port: lb!}, {agent: true})
  metad = await startMetad(registry.flags, [], await freePort(), sandbox.state.network!.gateway)
}, OPERATION_MS)

afterAll(async () => {
  for (const cluster of [ZK, WEB]) {
    if (registry && (await registryKeys(registry).catch(() => [])).some((k) => k.startsWith(`clusters/${cluster}/`))) await cli('destroy', cluster, '--yes')
  }
  await metad?.stop()
  registry?.dispose()
  await sandbox?.stop()
  zk?.dispose()
  web?.dispose()
}, OPERATION_MS)

function cli(...args: string[]): Promise<CliResult> {
  return shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
}

function expectOk(result: CliResult): void {
  expect(result.code, describeResult(result)).toBe(0)
}

/** The agent processes (node ./agent.mjs, not their supervisors) running for a cluster's nodes, as node ids. */
function runningAgents(cluster: string): string[] {
  return sandboxProcesses(sandbox, /agent\.mjs/)
    .filter((line) => line.includes(`--node ${cluster}-`) && !line.includes('--once'))
    .map((line) => /--node (\S+)/.exec(line)![1]!)
    .sort()
}

function agentLog(cluster: string, node: RegisteredNode): string {
  const file = path.join(homeOn(sandbox, node, cluster), '.shoal', 'agent.log')
  return existsSync(file) ? readFileSync(file, 'utf8') : ''
}

function fileOn(cluster: string, node: RegisteredNode, dest: string): string {
  return readFileSync(path.join(homeOn(sandbox, node, cluster), dest), 'utf8')
}

async function statusJson(cluster: string): Promise<{nodes: Array<{node_id: string; agent?: {state: string; revision?: number; errors?: string[]}}>}> {
  const result = await cli('status', cluster, '--json')
  expect(result.stdout, describeResult(result)).toMatch(/^\{/)
  return JSON.parse(result.stdout) as {nodes: Array<{node_id: string; agent?: {state: string}}>}
}

async function oneLeader(nodes: readonly RegisteredNode[]): Promise<void> {
  let seen: string[] = []
  await eventually(() => `one leader and ${nodes.length - 1} followers (last seen: ${seen.join(', ')})`, async () => {
    seen = await Promise.all(nodes.map((n) => zkMode(n.ip, clientPort)))
    return seen.filter((m) => m === 'leader').length === 1 && seen.filter((m) => m === 'follower').length === nodes.length - 1
  }, SETTLE_MS, 1000)
}

const zkIds = (...sids: number[]): string[] => sids.map((sid) => `${ZK}-zk-${sid}`)

describe('ZooKeeper with agents: 3 → 5 → 3, every file change delivered by the node\'s own agent', () => {
  it('create without --metad is refused before anything is registered, naming the flag', async () => {
    const result = await cli('create', zk.spec, '--hosts', sandbox.state.inventory, ...ZK_SUPER)
    expect(result.code, describeResult(result)).toBe(2)
    expect(result.stderr).toMatch(/agent: true.*--metad URL/s)
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)

  it('create: every node runs a supervised agent that placed its files; status shows each agent in sync', async () => {
    const result = await cli('create', zk.spec, '--hosts', sandbox.state.inventory, '--metad', metad.url, ...ZK_SUPER)
    expectOk(result)
    expect(result.stdout).toMatch(/start the agents of 3 new nodes/)
    const nodes = await registeredNodes(registry, ZK, 'zk')
    expect(runningAgents(ZK)).toEqual(zkIds(1, 2, 3))
    for (const node of nodes) {
      expect(fileOn(ZK, node, 'conf/initial-members.cfg').match(/^server\.\d+=/gm)).toHaveLength(3)
      expect(fileOn(ZK, node, 'data/myid').trim()).toBe(String(node.sid))
    }
    await oneLeader(nodes)
    const status = await statusJson(ZK)
    expect(status.nodes.map((n) => n.agent?.state)).toEqual(['in-sync', 'in-sync', 'in-sync'])
  }, OPERATION_MS)

  it('kill -9 of an agent: its supervisor starts it again, and it follows the next change', async () => {
    const node = (await registeredNodes(registry, ZK, 'zk'))[1]!
    const pids = (): string[] => sandboxProcesses(sandbox, /agent\.mjs/).filter((l) => l.includes(`--node ${node.node_id} `) && !l.includes('--once'))
    // Under load the supervisor may still be between runs of its agent: wait for the one running agent.
    await eventually(() => `one running agent of ${node.node_id} (seen: ${pids().join(' | ')})`, async () => pids().length === 1, 30_000, 200)
    const [victim] = pids()
    const pid = /^(\d+) /.exec(victim!)?.[1]
    expect(pid, `a pid at the start of ${victim}`).toBeDefined()
    process.kill(Number(pid), 'SIGKILL')
    // One look per try: two could see the agent between its supervisor's runs in one and running in the other.
    await eventually(() => `${node.node_id}'s agent running again (seen: ${pids().join(' | ')})`, async () => {
      const running = pids()
      return running.length === 1 && !running[0]!.startsWith(`${pid} `)
    }, 30_000, 200)
    expect(agentLog(ZK, node)).toMatch(/agent ended \(exit 137\); restarting in 1 s/)
    // A registry-only change (no shoal command for the nodes) reaches the restarted agent as well: tick_time. (The spec's
    // count is the cluster's now: applying it scales nothing.)
    expectOk(await cli('apply', zk.spec, '--hosts', sandbox.state.inventory, '--set', 'tick_time=2100', '--registry-only'))
    await eventually(`${node.node_id}'s zoo.cfg with tickTime=2100`, async () => fileOn(ZK, node, 'conf/zoo.cfg').includes('tickTime=2100'), 60_000, 200)
    // A static setting needs a restart: every member's agent reloads it (restart-if-changed, which waits for the quorum).
    const members = await registeredNodes(registry, ZK, 'zk')
    for (const member of members) {
      await eventually(`${member.node_id}'s agent reloaded the new zoo.cfg`, async () => /changed conf\/zoo\.cfg; reloaded: bin\/restart-if-changed\.sh ok/.test(agentLog(ZK, member)), 120_000, 200)
    }
    await oneLeader(members)
  }, OPERATION_MS)

  it('scale --count 5: the existing members get the new member list from their agents, not over SSH, and keep running; the joiners are added by reconfig', async () => {
    const existing = await registeredNodes(registry, ZK, 'zk')
    const before = new Map(existing.map((n) => [n.node_id, agentLog(ZK, n)]))
    const zkPids = (): string[] => existing.map((n) => fileOn(ZK, n, 'run/zookeeper.pid').trim())
    const pidsBefore = zkPids()
    const result = await cli('scale', ZK, '--role', 'zk', '--count', '5')
    expectOk(result)
    expect(result.stdout).toMatch(/wait for the agents to install changed files and reload on 3 nodes/)
    expect(result.stdout).toMatch(/join: zk-main-zk-5 added as a voter \(5 voters\)/)
    const nodes = await registeredNodes(registry, ZK, 'zk')
    expect(nodes.map((n) => n.node_id)).toEqual(zkIds(1, 2, 3, 4, 5))
    // The agent logs a file only when it replaced it itself: had shoal pushed it, the agent would find it in place.
    for (const node of existing) {
      const added = agentLog(ZK, node).slice(before.get(node.node_id)!.length)
      expect(added, `${node.node_id}'s agent log`).toMatch(/changed [^;\n]*bin\/common\.sh/)
      expect(added, `${node.node_id}'s agent log`).not.toContain('restart-if-changed')
      expect(fileOn(ZK, node, 'bin/common.sh')).toContain(`${ZK}-zk-5=`)
    }
    expect(zkPids()).toEqual(pidsBefore)
    expect(runningAgents(ZK)).toEqual(zkIds(1, 2, 3, 4, 5))
    await oneLeader(nodes)
  }, OPERATION_MS)

  it('scale --count 3, then destroy: the agents of leaving nodes stop with them; nothing is left', async () => {
    const result = await cli('scale', ZK, '--role', 'zk', '--count', '3')
    expectOk(result)
    expect(result.stdout).toMatch(/leave: server [45] removed/)
    expect(runningAgents(ZK)).toEqual(zkIds(1, 2, 3))
    const nodes = await registeredNodes(registry, ZK, 'zk')
    for (const node of nodes) await eventually(`${node.node_id}'s member list without 4 and 5`, async () => !fileOn(ZK, node, 'bin/common.sh').includes(`${ZK}-zk-4=`), 60_000, 200)
    await oneLeader(nodes)
    expectOk(await cli('destroy', ZK, '--yes'))
    expect(runningAgents(ZK)).toEqual([])
    expect(sandboxProcesses(sandbox, /agent\.sh|java/)).toEqual([])
    expect(leftUnderSrvShoal(sandbox)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)
})

describe('HAProxy with agents: the lb follows web with no file pushed over SSH', () => {
  /** The lb's haproxy.cfg server lines, as node names. */
  const servers = async (): Promise<string[]> => {
    const lb = (await registeredNodes(registry, WEB, 'lb'))[0]!
    return [...fileOn(WEB, lb, 'conf/haproxy.cfg').matchAll(/^\s*server (\S+) /gm)].map((m) => m[1]!).sort()
  }
  const webIds = (...sids: number[]): string[] => sids.map((sid) => `${WEB}-web-${sid}`)

  it('create: the lb lists both web nodes', async () => {
    expectOk(await cli('create', web.spec, '--hosts', sandbox.state.inventory, '--metad', metad.url))
    expect(await servers()).toEqual(webIds(1, 2))
    expect(await fetchThroughLb((await registeredNodes(registry, WEB, 'lb'))[0]!.ip)).toBe(200)
  }, OPERATION_MS)

  it('the lb cut off during scale web --count 4: the wait fails naming it, status shows it stale; back, it converges by itself and resume finishes', async () => {
    const lb = (await registeredNodes(registry, WEB, 'lb'))[0]!
    const host = sandbox.state.hosts.find((h) => h.address === lb.ip)!
    sandboxPartition({dir: sandbox.state.dir, host: host.name, partitioned: true})
    try {
      const failed = await cli('scale', WEB, '--role', 'web', '--count', '4', '--agent-wait', '10s')
      expect(failed.code, describeResult(failed)).toBe(1)
      expect(failed.stderr).toMatch(new RegExp(`waited 10 s for the agents of 1 node to apply revision \\d+: ${lb.node_id} \\((no agent reports for it|its files reflect revision \\d+)`))
      const status = await statusJson(WEB)
      expect(status.nodes.find((n) => n.node_id === lb.node_id)?.agent?.state).toMatch(/^(stale|down)$/)
    } finally {
      sandboxPartition({dir: sandbox.state.dir, host: host.name, partitioned: false})
    }
    // Back on the network, its agent catches up with no shoal command (TCP retransmits metad's answer, or it asks again).
    let listed: string[] = []
    await eventually(() => `the lb's haproxy.cfg listing 4 web nodes (has ${listed.join(', ')})`, async () => (listed = await servers()).length === 4, SETTLE_MS, 500)
    expectOk(await cli('resume', WEB))
    expect(await servers()).toEqual(webIds(1, 2, 3, 4))
    expect((await statusJson(WEB)).nodes.map((n) => n.agent?.state)).toEqual(['in-sync', 'in-sync', 'in-sync', 'in-sync', 'in-sync'])
  }, OPERATION_MS)

  it('scale web --count 1, destroy: the lb\'s agent reloaded haproxy.cfg once per change (not at create: not started yet); nothing is left', async () => {
    const lb = (await registeredNodes(registry, WEB, 'lb'))[0]!
    expectOk(await cli('scale', WEB, '--role', 'web', '--count', '1'))
    expect(await servers()).toEqual(webIds(1))
    const reloads = [...agentLog(WEB, lb).matchAll(/changed conf\/haproxy\.cfg; reloaded: bin\/reload\.sh ok/g)]
    expect(reloads.length, agentLog(WEB, lb)).toBe(2)
    expect(await fetchThroughLb(lb.ip)).toBe(200)
    expectOk(await cli('destroy', WEB, '--yes'))
    expect(runningAgents(WEB)).toEqual([])
    expect(leftUnderSrvShoal(sandbox)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)
})

async function fetchThroughLb(ip: string): Promise<number> {
  const {request} = await import('node:http')
  let status = 0
  await eventually(() => `a 200 through the lb at ${ip}:${lbPort} (last ${status})`, () => new Promise<boolean>((resolve) => {
    const req = request({host: ip, port: lbPort, path: '/', agent: false, timeout: 5000}, (res) => {
      status = res.statusCode ?? 0
      res.resume()
      res.on('end', () => resolve(status === 200))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', () => resolve(false))
    req.end()
  }), SETTLE_MS, 1000)
  return status
}
