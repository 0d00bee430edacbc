// metad benchmark (issue 12): 1,000 long-polls from distinct 127.0.x.x addresses on one metad over a 1,000-node registry
// in a real etcd: commit → last woken caller answered, metad's RSS with the polls open, plain GET /self per second.
import {spawn, type ChildProcess} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {request} from 'node:http'
import {connect, type Socket} from 'node:net'
import {join} from 'node:path'
import {planCluster} from '../src/plan/plan.js'
import {clusterPrefix, clusterRevisionKey, commitChanges, readCluster} from '../src/registry/index.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import type {ClusterSpec} from '../src/spec/types.js'
import {freePort, startEtcd} from '../test/support/etcd.js'

const BIN = join(import.meta.dirname, '..', 'bin', 'run.js')
const CLUSTERS = 100
const NODES_PER_CLUSTER = 10

export interface MetadBenchResult {
  nodes: number
  polls: number
  rounds: number
  /** Per round: ms from the commit's start to the last of the woken callers having its whole answer. */
  lastWokenMs: number[]
  /** Every woken caller's ms, all rounds together. */
  eachWokenMs: number[]
  /** The same, for the first commits after metad started (its code not yet optimised by V8): not in the percentiles. */
  coldLastWokenMs: number[]
  /** Per round: ms the commit itself took (read the cluster, one guarded transaction), and to the first answer. */
  commitMs: number[]
  firstWokenMs: number[]
  /** Callers answered when one dependent cluster (10 nodes) changed: must be exactly its nodes. */
  wokenByOneCluster: number
  rssMb: number
  rssIdleMb: number
  getPerSecond: number
  getConnections: number
  bodyBytes: number
  /** metad's own CPU time (user + system): per wake-up round of 1,000 answers, and per plain GET. */
  cpuPerRoundMs: number
  /** The load generator's CPU per round (this process: reading 1,000 answers, sending the next polls). */
  clientCpuPerRoundMs: number
  cpuPerGetUs: number
  /** The yardstick: a bare Node http server answering a fixed body of the same size, same client, same 5 s. */
  bare: {getPerSecond: number; cpuPerGetUs: number}
}

/** Node `i` of the registry (0..999) lives at 127.0.(10 + i / 250).(1 + i % 250). */
function address(i: number): string {
  return `127.0.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`
}

function spec(name: string, linked: boolean): ClusterSpec {
  return {
    apiVersion: 'shoal/v1', kind: 'Cluster', name,
    ...(linked ? {links: {zk: 'zk'}} : {}),
    env: {port: {type: 'integer', default: 7000}},
    roles: {node: {image: 'debian-12', cpu: 1, memory: '1Gi', disk: '10Gi', count: NODES_PER_CLUSTER}},
  }
}

async function register(store: EtcdStore): Promise<void> {
  const linked = {} as Record<string, NonNullable<Parameters<typeof planCluster>[0]['linked']>[string]>
  for (let c = 0; c < CLUSTERS; c++) {
    const name = c === 0 ? 'zk' : `app-${String(c).padStart(2, '0')}`
    const hosts = Array.from({length: NODES_PER_CLUSTER}, (_, n) => ({name: `${name}-h${n}`, address: address(c * NODES_PER_CLUSTER + n)}))
    const plan = planCluster({spec: spec(name, c > 0), templates: new Map(), inventory: {hosts}, operation: {kind: 'create'}, linked})
    if (plan.errors.length) throw new Error(`bench registry: ${plan.errors[0]!.message}`)
    if (c === 0) linked.zk = plan.desired!
    const groups = new Map<string, string[]>()
    for (const [key] of plan.tree) {
      const id = /\/(?:hosts\/[^/]+|mapping\/[^/]+\/[^/]+)\/([^/]+)/.exec(`/${key}`)?.[1]
      if (id) groups.set(id, [...(groups.get(id) ?? []), key])
    }
    await commitChanges(store, clusterPrefix(name), {revisionKey: clusterRevisionKey(name), expectedModRevision: 0}, Object.fromEntries(plan.tree), [], [...groups.values()])
  }
}

/** One guarded registry change of a cluster's `port` parameter (and its revision), as a registry-only apply makes it. */
async function changePort(store: EtcdStore, cluster: string, port: number): Promise<void> {
  const snapshot = await readCluster(store, cluster)
  const revision = Number(snapshot.keys['cluster/revision']) + 1
  const prefix = clusterPrefix(cluster)
  await commitChanges(store, prefix, {revisionKey: clusterRevisionKey(cluster), expectedModRevision: snapshot.revisionModRevision}, {
    [`${prefix}env/port`]: String(port),
    [clusterRevisionKey(cluster)]: String(revision),
  }, [])
}

interface Response {status: number; revision: number; body: string; at: number}

function get(url: string, localAddress: string, agent: false): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, {agent, localAddress}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, revision: Number(res.headers['x-shoal-revision']), body: Buffer.concat(chunks).toString(), at: performance.now()}))
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * A minimal keep-alive HTTP/1.1 client on one socket from one source address, as cheap as a load generator should be
 * (Node's own client costs more CPU per answer than metad does, on the same 2 cores). Answers come in order.
 */
class Conn {
  private readonly socket: Socket
  private buffer: Buffer = Buffer.alloc(0)
  private readonly waiting: Array<(res: Response) => void> = []

  constructor(port: number, localAddress: string, onError: (error: Error) => void) {
    this.socket = connect({host: '127.0.0.1', port, localAddress, noDelay: true})
    this.socket.on('data', (chunk: Buffer) => this.read(chunk))
    this.socket.on('error', onError)
  }

  get(path: string): Promise<Response> {
    return new Promise((resolve) => {
      this.waiting.push(resolve)
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: metad\r\n\r\n`)
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private read(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = this.buffer.subarray(0, end).toString('latin1')
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      if (this.buffer.length < end + 4 + length) return
      const body = this.buffer.subarray(end + 4, end + 4 + length).toString()
      this.buffer = this.buffer.subarray(end + 4 + length)
      this.waiting.shift()?.({status: Number(head.slice(9, 12)), revision: Number(/\r\nx-shoal-revision: *(\d+)/i.exec(head)?.[1]), body, at: performance.now()})
    }
  }
}

async function metrics(base: string): Promise<string> {
  return (await get(`${base}/metrics`, '127.0.0.1', false)).body
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} did not happen within ${ms / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** User + system CPU time of a process so far, in ms (from /proc: clock ticks of 10 ms on Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
  return kb / 1024
}

/** `connections` keep-alive sockets from node addresses asking `path` back to back for 5 s: answers/s, server CPU µs each. */
async function getLoad(port: number, pid: number, callers: readonly string[], connections: number, path: string): Promise<{perSecond: number; cpuPerGetUs: number; bodyBytes: number}> {
  let failure: Error | undefined
  const conns = Array.from({length: connections}, (_, i) => new Conn(port, callers[(i * 17) % callers.length]!, (error) => (failure ??= error)))
  let count = 0
  let bodyBytes = 0
  const cpuBefore = cpuMs(pid)
  const end = performance.now() + 5000
  await Promise.all(conns.map(async (conn) => {
    while (performance.now() < end && !failure) {
      const res = await conn.get(path)
      if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.body}`)
      bodyBytes = res.body.length
      count++
    }
  }))
  const cpu = cpuMs(pid) - cpuBefore
  for (const conn of conns) conn.close()
  if (failure) throw failure
  return {perSecond: count / 5, cpuPerGetUs: (cpu * 1000) / count, bodyBytes}
}

/** A bare Node http server answering `bytes` bytes to every request: what any Node service pays per answer here. */
async function bareServer(port: number, bytes: number): Promise<ChildProcess> {
  const code = `const b='x'.repeat(${bytes});require('http').createServer((q,r)=>{r.writeHead(200,{'Content-Type':'application/json','Content-Length':b.length,'X-Shoal-Revision':'1'});r.end(b)}).listen(${port},'127.0.0.1',()=>console.log('up'))`
  const child = spawn(process.execPath, ['-e', code], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise((resolve) => child.stdout!.once('data', resolve))
  return child
}

export async function benchMetad(rounds = 20, warmup = 3): Promise<MetadBenchResult> {
  const etcd = await startEtcd()
  const store = new EtcdStore({endpoints: etcd.endpoints})
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const metad = spawn(process.execPath, [...(process.env.SHOAL_BENCH_METAD_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.SHOAL_BENCH_METAD_PROF] : []), BIN, 'metad', '--listen', `127.0.0.1:${port}`, '--etcd', etcd.endpoints.join(',')], {stdio: ['ignore', 'ignore', 'pipe']})
  let log = ''
  metad.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()))
  try {
    await register(store)
    await until('metad listening', async () => log.includes('listening on'), 20_000)
    const nodes = CLUSTERS * NODES_PER_CLUSTER
    const callers = Array.from({length: nodes}, (_, i) => address(i))
    const first = await get(`${base}/self`, callers[0]!, false)
    if (first.status !== 200) throw new Error(`bench: GET /self from ${callers[0]} answered ${first.status}: ${first.body}`)
    const rssIdleMb = rssMb(metad.pid!)

    // Every caller long-polls from its own address and asks again as soon as it is answered, as an agent does.
    const version = new Map<string, number>()
    for (const from of callers) version.set(from, (await get(`${base}/self`, from, false)).revision)
    let round: {start: number; answered: number[]} | undefined
    let failure: Error | undefined
    // One keep-alive connection per caller, as an agent keeps it between polls.
    const conns = new Map(callers.map((from) => [from, new Conn(port, from, (error) => (failure ??= error))]))
    const poll = (from: string): void => {
      conns.get(from)!.get(`/self?wait=true&prev_version=${version.get(from)!}&timeout=600`).then((res) => {
        if (res.status === 200) {
          version.set(from, res.revision)
          round?.answered.push(res.at - round.start)
        } else if (res.status !== 304) throw new Error(`long-poll from ${from} answered ${res.status}: ${res.body}`)
        if (!stopped) poll(from)
      }).catch((error: Error) => (failure ??= error))
    }
    let stopped = false
    for (const from of callers) poll(from)
    const parked = async (): Promise<boolean> => {
      if (failure) throw failure
      return (await metrics(base)).includes(`shoal_metad_long_polls_open ${nodes}\n`)
    }
    await until(`${nodes} long-polls open`, parked)
    const rss = rssMb(metad.pid!)

    const lastWokenMs: number[] = []
    const eachWokenMs: number[] = []
    const commitMs: number[] = []
    const firstWokenMs: number[] = []
    let roundCpuMs = 0
    let clientCpuMs = 0
    const coldLastWokenMs: number[] = []
    for (let r = -warmup; r < rounds; r++) {
      const cpuBefore = cpuMs(metad.pid!)
      const clientBefore = process.cpuUsage()
      round = {start: performance.now(), answered: []}
      await changePort(store, 'zk', 8100 + r) // every node's view: zk's own env, and links.zk.env of all 99 others
      commitMs.push(performance.now() - round.start)
      const current = round
      await until(`round ${r}: all ${nodes} callers answered`, async () => current.answered.length >= nodes)
      if (r < 0) {
        coldLastWokenMs.push(Math.max(...current.answered))
        commitMs.pop()
        await until(`round ${r}: ${nodes} long-polls open again`, parked)
        continue
      }
      const client = process.cpuUsage(clientBefore)
      clientCpuMs += (client.user + client.system) / 1000
      lastWokenMs.push(Math.max(...current.answered))
      firstWokenMs.push(Math.min(...current.answered))
      eachWokenMs.push(...current.answered)
      await until(`round ${r}: ${nodes} long-polls open again`, parked)
      roundCpuMs += cpuMs(metad.pid!) - cpuBefore
    }
    round = {start: performance.now(), answered: []}
    await changePort(store, 'app-07', 9000)
    await until('app-07 callers answered', async () => round!.answered.length >= NODES_PER_CLUSTER)
    await until('long-polls open again', parked)
    const wokenByOneCluster = round.answered.length
    stopped = true
    round = undefined
    for (const conn of conns.values()) conn.close()

    // Plain GET /self: keep-alive connections, each from one node's address, asking back to back for 5 s.
    const getConnections = 64
    const plain = await getLoad(port, metad.pid!, callers, getConnections, '/self')
    const barePort = await freePort()
    const bare = await bareServer(barePort, plain.bodyBytes)
    let yardstick: Awaited<ReturnType<typeof getLoad>>
    try {
      yardstick = await getLoad(barePort, bare.pid!, callers, getConnections, '/self')
    } finally {
      bare.kill()
    }
    return {
      nodes, polls: nodes, rounds, lastWokenMs, coldLastWokenMs, eachWokenMs, commitMs, firstWokenMs, wokenByOneCluster, rssMb: rss, rssIdleMb, getPerSecond: plain.perSecond, getConnections, bodyBytes: plain.bodyBytes,
      cpuPerRoundMs: roundCpuMs / rounds, clientCpuPerRoundMs: clientCpuMs / rounds, cpuPerGetUs: plain.cpuPerGetUs, bare: {getPerSecond: yardstick.perSecond, cpuPerGetUs: yardstick.cpuPerGetUs},
    }
  } finally {
    metad.kill('SIGTERM')
    await new Promise((resolve) => metad.once('exit', resolve))
    await store.close()
    await etcd.stop()
  }
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchMetad(Number(process.env.SHOAL_BENCH_METAD_ROUNDS ?? 20)))
}
