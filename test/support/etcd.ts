// Starts real etcd servers (Debian's /usr/bin/etcd) on free loopback ports for tests and benchmarks; fault helpers too.
import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {track} from './resources.js'

export const ETCD_BINARY = process.env.SHOAL_TEST_ETCD ?? '/usr/bin/etcd'
const SETPRIV = '/usr/bin/setpriv'
const READY_TIMEOUT_MS = 20_000

export interface EtcdMember {
  name: string
  clientUrl: string
  peerUrl: string
  dataDir: string
  process: ChildProcess | undefined
}

export interface EtcdCluster {
  /** Client URLs of all members. */
  endpoints: string[]
  members: EtcdMember[]
  /** SIGKILL a member (data dir kept, so `restart` brings it back). */
  kill(member: number): Promise<void>
  /** Start a killed member again on the same ports and data dir; waits until it is healthy. */
  restart(member: number): Promise<void>
  /** SIGSTOP / SIGCONT: the member stays connected but stops answering. */
  pause(member: number): void
  resume(member: number): void
  /** Wait until the running members have a leader again (after a kill, an election takes about a second). */
  waitForLeader(): Promise<void>
  /** Kill every member and remove the data directories. */
  stop(): Promise<void>
}

/** Start `members` (1 or 3) etcd servers forming one cluster; resolves when every member reports healthy. */
export async function startEtcd(options: {members?: number} = {}): Promise<EtcdCluster> {
  if (!existsSync(ETCD_BINARY)) {
    throw new Error(`${ETCD_BINARY} not found: install Debian's etcd-server (apt-get install -y etcd-server) or set SHOAL_TEST_ETCD`)
  }
  const count = options.members ?? 1
  const baseDir = mkdtempSync(path.join(tmpdir(), 'shoal-etcd-'))
  const members: EtcdMember[] = []
  for (let i = 0; i < count; i++) {
    const [clientPort, peerPort] = [await freePort(), await freePort()]
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${clientPort}`,
      peerUrl: `http://127.0.0.1:${peerPort}`,
      dataDir: path.join(baseDir, `m${i}`),
      process: undefined,
    })
  }
  const initialCluster = members.map(m => `${m.name}=${m.peerUrl}`).join(',')
  const token = path.basename(baseDir)

  const launch = (member: EtcdMember): void => {
    const child = spawn(
      SETPRIV,
      [
        // The server dies with the process that started it, even one killed without running its exit handlers.
        '--pdeathsig', 'SIGKILL', ETCD_BINARY,
        '--name', member.name,
        '--data-dir', member.dataDir,
        '--listen-client-urls', member.clientUrl,
        '--advertise-client-urls', member.clientUrl,
        '--listen-peer-urls', member.peerUrl,
        '--initial-advertise-peer-urls', member.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', token,
        '--initial-cluster-state', 'new',
        '--unsafe-no-fsync',
        '--logger', 'zap',
        '--log-outputs', path.join(baseDir, `${member.name}.log`),
      ],
      {stdio: ['ignore', 'ignore', 'ignore']},
    )
    member.process = child
  }

  const kill = async (index: number): Promise<void> => {
    const child = memberAt(members, index).process
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
    child.kill('SIGCONT') // a paused process cannot die until it runs again
    child.kill('SIGKILL')
    await exited
  }

  for (const member of members) launch(member)
  const cluster: EtcdCluster = {
    endpoints: members.map(m => m.clientUrl),
    members,
    kill,
    async restart(index) {
      const member = memberAt(members, index)
      await kill(index)
      launch(member)
      await waitHealthy(member)
    },
    pause(index) {
      memberAt(members, index).process?.kill('SIGSTOP')
    },
    resume(index) {
      memberAt(members, index).process?.kill('SIGCONT')
    },
    async waitForLeader() {
      const live = members.filter(m => m.process && m.process.exitCode === null && m.process.signalCode === null)
      await Promise.all(live.map(m => waitHealthy(m)))
    },
    async stop() {
      for (let i = 0; i < members.length; i++) await kill(i)
      rmSync(baseDir, {recursive: true, force: true})
      untrack()
    },
  }
  const untrack = track(`etcd (${count} member${count === 1 ? '' : 's'}, ${baseDir})`, () => cluster.stop())
  try {
    await Promise.all(members.map(m => waitHealthy(m)))
  } catch (error) {
    await cluster.stop()
    throw error
  }
  return cluster
}

/** A free TCP port on 127.0.0.1, found by binding port 0 (never 2379: a developer's etcd may live there). */
export async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    if (tries === 200) throw new Error('no free port on 127.0.0.1 after 200 tries')
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const address = server.address()
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
    if (port !== 0 && port !== 2379 && port !== 2380) return port
  }
}

async function waitHealthy(member: EtcdMember): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  let last = 'no answer'
  while (Date.now() < deadline) {
    const child = member.process
    if (!child || child.exitCode !== null) {
      throw new Error(`etcd member ${member.name} exited (code ${String(child?.exitCode)}) before becoming healthy; see its log beside ${member.dataDir}`)
    }
    try {
      const res = await fetch(`${member.clientUrl}/health`, {signal: AbortSignal.timeout(1000)})
      const body = (await res.json()) as {health?: string}
      if (body.health === 'true') return
      last = JSON.stringify(body)
    } catch (error) {
      last = (error as Error).message
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`etcd member ${member.name} at ${member.clientUrl} not healthy within ${READY_TIMEOUT_MS / 1000} s: ${last}`)
}

function memberAt(members: EtcdMember[], index: number): EtcdMember {
  const member = members[index]
  if (!member) throw new Error(`no etcd member ${index} (cluster has ${members.length})`)
  return member
}
