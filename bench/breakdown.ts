// Where the time of a lifecycle run goes: CPU of shoal and of the hosts' sshd, SSH traffic per step, a CPU profile by module.
import {readFileSync, readdirSync} from 'node:fs'
import path from 'node:path'
import type {TransportCounters} from '../src/transport/ssh.js'

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on every Linux this runs on). */
const TICKS_PER_S = 100

/** /proc/PID/stat fields after the command name: utime, stime, cutime, cstime (fields 14–17), in ms. */
function procTimes(pid: number | 'self'): {own: number; children: number} | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    const ms = (ticks: number): number => (ticks * 1000) / TICKS_PER_S
    return {own: ms(fields[11]! + fields[12]!), children: ms(fields[13]! + fields[14]!)}
  } catch {
    return undefined
  }
}

/**
 * CPU of this process's finished children (shoal CLI runs, the OpenSSH yardstick's clients, Ansible): the kernel adds
 * a child's CPU, and its own children's, to the parent's once it is waited for.
 */
export function childrenCpuMs(): number {
  return procTimes('self')!.children
}

/**
 * CPU of the sandbox hosts' sshd listeners and everything they ran (per-connection sshd, sessions, shells, commands),
 * counted once those processes ended and were reaped: read it after the connections closed.
 */
export function sshdCpuMs(pids: number[]): number {
  let sum = 0
  for (const pid of pids) {
    const t = procTimes(pid)
    if (t) sum += t.own + t.children
  }
  return sum
}

/** The sshd CPU once it stopped growing (the per-connection processes of a closed connection are reaped shortly after). */
export async function settledSshdCpuMs(pids: number[]): Promise<number> {
  let last = sshdCpuMs(pids)
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    const now = sshdCpuMs(pids)
    if (now === last && i >= 2) return now
    last = now
  }
  return last
}

export type Sample = TransportCounters & {at: number; cpuMs: number}

/** The timelines a run's transports wrote (SHOAL_TRANSPORT_STATS), one JSON array per line. */
export function readTimeline(file: string): Sample[] {
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  return text.split('\n').filter(Boolean).flatMap((line) => JSON.parse(line) as Sample[]).sort((a, b) => a.at - b.at)
}

/** The transport's counters over a step, with shoal's CPU (user + system) in it, ms. */
export interface StepCost extends TransportCounters {
  cpuMs: number
}

const ZERO: Sample = {at: 0, cpuMs: 0, handshakes: 0, sessions: 0, commands: 0, roundTrips: 0, bytesOut: 0, bytesIn: 0}

/** The transport counters' growth between two moments (epoch ms), from the last sample before each. */
export function costBetween(timeline: Sample[], from: number, to: number): StepCost {
  const at = (t: number): Sample => timeline.filter((s) => s.at <= t).at(-1) ?? ZERO
  const a = at(from)
  const b = at(to)
  // CPU samples before the transport's first one are unknown: the step's CPU then counts from the first sample.
  const cpuFrom = a === ZERO ? (timeline.find((s) => s.at >= from)?.cpuMs ?? b.cpuMs) : a.cpuMs
  return {
    cpuMs: b === ZERO ? 0 : Math.max(0, b.cpuMs - cpuFrom),
    handshakes: b.handshakes - a.handshakes,
    sessions: b.sessions - a.sessions,
    commands: b.commands - a.commands,
    roundTrips: b.roundTrips - a.roundTrips,
    bytesOut: b.bytesOut - a.bytesOut,
    bytesIn: b.bytesIn - a.bytesIn,
  }
}

export function formatCost(c: StepCost): string {
  const kib = (n: number): string => `${(n / 1024).toFixed(0)} KiB`
  return `shoal CPU ${(c.cpuMs / 1000).toFixed(2)} s, ${c.handshakes} handshakes, ${c.sessions} sessions, ${c.commands} commands, ${c.roundTrips} round trips, ${kib(c.bytesOut)} out / ${kib(c.bytesIn)} in`
}

interface ProfileNode {
  id: number
  callFrame: {functionName: string; url: string}
  children?: number[]
}

/**
 * A `node --cpu-prof` profile summed by where the code lives: shoal's own folders, each npm package, Node's internals,
 * the garbage collector, and (program) — native work such as syscalls, crypto and module compilation outside JS frames.
 */
export function profileByModule(dir: string): Array<{module: string; ms: number}> {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) return []
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]}
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const totals = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)
    if (!node) return
    const where = moduleOf(node.callFrame)
    if (where === '(idle)') return
    totals.set(where, (totals.get(where) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000)
  })
  return [...totals].map(([module, ms]) => ({module, ms})).sort((a, b) => b.ms - a.ms)
}

function moduleOf(frame: {functionName: string; url: string}): string {
  const {url, functionName} = frame
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) return 'node internals'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return `npm ${pkg[1]}`
  const own = /\/dist\/([^/]+)(\/|\.js)/.exec(url)
  if (own) return `shoal ${own[1]}`
  return url.replace(/^file:\/\//, '')
}
