// vitest globalSetup: the run's processes live in a cgroup of their own, and a process still in it after the last
// test (an etcd, an sshd, a service started over SSH, a shoal child) fails the run, named, and is killed.
import {existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

/**
 * Where a cgroup can be made: cgroup v2 (alone or beside v1 as `unified`), else v1's pids hierarchy. A cgroup holds
 * every descendant whatever it does — daemonised, re-parented to init, in other namespaces, renamed — so the check
 * cannot be fooled the way a look at command lines or parent pids can.
 */
const HIERARCHIES = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup', '/sys/fs/cgroup/pids']

/** How long the processes of the last tests get to end on their own before they count as left behind. */
const GRACE_MS = 10_000

/**
 * Remove the empty cgroups of earlier runs whose vitest is gone (a worker still exiting can keep a run's own rmdir
 * from succeeding). One whose processes are still there is left alone: it is what the next check would name.
 */
function sweepOldCgroups(root: string): void {
  for (const entry of readdirSync(root)) {
    const owner = /^shoal-test-(\d+)$/.exec(entry)?.[1]
    if (!owner || Number(owner) === process.pid || existsSync(`/proc/${owner}`)) continue
    try {
      rmdirSync(path.join(root, entry))
    } catch {
      // not empty, or already gone
    }
  }
}

function makeCgroup(): string | undefined {
  if (process.getuid?.() !== 0) return undefined
  for (const root of HIERARCHIES) {
    if (!existsSync(path.join(root, 'cgroup.procs'))) continue
    sweepOldCgroups(root)
    const dir = path.join(root, `shoal-test-${process.pid}`)
    try {
      mkdirSync(dir, {recursive: true})
      writeFileSync(path.join(dir, 'cgroup.procs'), String(process.pid))
      return dir
    } catch {
      try {
        rmdirSync(dir)
      } catch {
        // not made
      }
    }
  }
  return undefined
}

function members(dir: string): number[] {
  return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}

/** For the message only: what the process runs (a racy read is fine for a name). */
function describe(pid: number): string {
  let exe = '?'
  let cmdline = ''
  try {
    exe = readlinkSync(`/proc/${pid}/exe`)
  } catch {
    // gone, or a kernel thread
  }
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 200)
  } catch {
    // gone
  }
  return `pid ${pid} ${exe}${cmdline ? ` (${cmdline})` : ''}`
}

export default function setup(): (() => Promise<void>) | undefined {
  const dir = makeCgroup()
  if (!dir) {
    console.warn('test/support/leftovers.ts: no cgroup could be made (needs root and a cgroup filesystem): processes left behind are not checked in this run')
    return undefined
  }
  return async () => {
    // vitest's own workers are children of this process; everything else in the cgroup was started by a test.
    const leftovers = (): number[] => members(dir).filter((pid) => pid !== process.pid && parentOf(pid) !== process.pid)
    const deadline = Date.now() + GRACE_MS
    while (leftovers().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    const left = leftovers()
    const named = left.map(describe)
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    const killDeadline = Date.now() + 5000
    while (members(dir).some((pid) => pid !== process.pid && parentOf(pid) !== process.pid) && Date.now() < killDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    // This process leaves the cgroup so that it can be removed.
    try {
      writeFileSync(path.join(path.dirname(dir), 'cgroup.procs'), String(process.pid))
      rmdirSync(dir)
    } catch {
      // workers still exiting keep it; an empty cgroup left in /sys/fs/cgroup costs nothing
    }
    if (named.length > 0) {
      // vitest reports an error thrown here with a stack trace and still exits 0: say it plainly and fail the run.
      process.exitCode = 1
      console.error(`${named.length} process${named.length === 1 ? ' was' : 'es were'} left behind by the tests ${GRACE_MS / 1000} s after the last one ended (now killed):\n  ${named.join('\n  ')}`)
    }
  }
}
