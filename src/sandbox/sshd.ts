// One sandbox host's sshd: its config, a detached start inside its own network and mount namespaces, readiness, and a full stop.
import {spawn} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, statSync} from 'node:fs'
import {connect} from 'node:net'
import {ShoalError} from '../errors.js'
import {IP} from './network.js'

export const SSHD = '/usr/sbin/sshd'
export const UNSHARE = '/usr/bin/unshare'
export const SSH_KEYGEN = '/usr/bin/ssh-keygen'
export const NSENTER = '/usr/bin/nsenter'

export interface SshdPaths {
  name: string
  address: string
  port: number
  config: string
  pidFile: string
  hostKey: string
  authorizedKeys: string
  log: string
  /** Bound onto /srv inside the host's mount namespace. */
  srv: string
  /** An empty file bound over root's ~/.bashrc inside the namespace (see CLEAN_BASHRC). */
  bashrc: string
}

/**
 * sshd runs every command through root's bash, which reads ~/.bashrc. On a developer machine that file often starts
 * version managers (pyenv, nvm) costing ~0.1 s of CPU per command — a fresh host has no such thing, and a sandbox host
 * should not see the operator's shell setup. So each host gets an empty one.
 */
const CLEAN_BASHRC = '{ [ ! -f /root/.bashrc ] || mount --bind "$3" /root/.bashrc; }'

export function sshdConfig(host: SshdPaths): string {
  const q = (file: string): string => {
    if (/["\n]/.test(file)) throw new ShoalError(`the sandbox path ${JSON.stringify(file)} cannot be written into an sshd config`, 'sandbox-bad-dir')
    return `"${file}"`
  }
  return [
    `# sshd of sandbox host ${host.name}, written by \`shoal sandbox up\` (rewritten on every up).`,
    `ListenAddress ${host.address}:${host.port}`,
    `PidFile ${q(host.pidFile)}`,
    `HostKey ${q(host.hostKey)}`,
    `AuthorizedKeysFile ${q(host.authorizedKeys)}`,
    '# The sandbox files live in a temp or project dir whose modes sshd would otherwise reject.',
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitUserEnvironment no',
    'UseDNS no',
    'PrintMotd no',
    'X11Forwarding no',
    'Subsystem sftp internal-sftp',
    '# shoal uses up to 8 channels per connection plus short side channels (kills after a timeout); a person can still ssh in beside it.',
    'MaxSessions 20',
    '# Operations and tests connect to every host at once; the default 10:30:100 starts dropping handshakes past 10.',
    'MaxStartups 100:30:200',
    'LogLevel INFO',
    '',
  ].join('\n')
}

/** Check what starting a host needs, with a fix for each missing piece. */
export function preflight(): void {
  if (process.getuid?.() !== 0) {
    throw new ShoalError('the sandbox needs root (it binds sshd to loopback addresses and gives each host its own /srv mount): run it as root, e.g. with sudo', 'sandbox-needs-root')
  }
  if (!existsSync(SSHD)) throw new ShoalError(`${SSHD} not found: install OpenSSH's server with \`apt-get install openssh-server\``, 'sandbox-sshd-missing')
  if (!existsSync(SSH_KEYGEN)) throw new ShoalError(`${SSH_KEYGEN} not found: install OpenSSH with \`apt-get install openssh-server\``, 'sandbox-sshd-missing')
  if (!existsSync(UNSHARE) || !existsSync(NSENTER)) throw new ShoalError(`${UNSHARE} or ${NSENTER} not found: install util-linux (\`apt-get install util-linux\`)`, 'sandbox-unshare-missing')
  if (!existsSync(IP)) throw new ShoalError(`${IP} not found: install iproute2 (\`apt-get install iproute2\`)`, 'sandbox-ip-missing')
  // sshd's privilege separation chroots into /run/sshd; /srv must exist to be a mount point.
  mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
  mkdirSync('/srv', {recursive: true, mode: 0o755})
}

/**
 * A process named so that its exec'ing and renaming cannot fool us: pid plus its start time (field 22 of
 * /proc/PID/stat, clock ticks since boot). sshd rewrites its title and the start script execs twice, so a look at
 * /proc/PID/cmdline while it starts can read something else than its final command line; the start time never changes.
 */
export interface ProcessIdentity {
  pid: number
  startTime: number
}

/** The start time of `pid`, or undefined when there is no such process. */
export function processStartTime(pid: number): number | undefined {
  const stat = readStat(pid)
  return stat?.startTime
}

/** Whether the process is still the one identified, and not a zombie. */
export function isAlive(id: Partial<ProcessIdentity> | undefined): boolean {
  if (id?.pid === undefined || id.startTime === undefined || !Number.isInteger(id.pid) || id.pid <= 0) return false
  const stat = readStat(id.pid)
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X' && stat.startTime === id.startTime
}

function readStat(pid: number): {state: string; startTime: number} | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) is in parentheses and may itself hold spaces or parentheses: fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const startTime = Number(fields[19])
    return Number.isFinite(startTime) ? {state: fields[0] ?? '', startTime} : undefined
  } catch {
    return undefined
  }
}

/** A started sshd: its identity and, once it ended, how (from its exit event, not from /proc). */
export interface StartedSshd extends ProcessIdentity {
  /** Set when the process exited: `exit code N` or `signal S`. */
  ended(): string | undefined
}

/**
 * Start sshd detached (own process group, output to its log) inside the network namespace at `netns.path` (entered
 * with nsenter, which leaves mounts alone; `netns.setup` brings its side up first) and a private mount namespace
 * where `srv` is /srv.
 */
export function startSshd(host: SshdPaths, netns: {path: string; setup: string}): StartedSshd {
  const log = openSync(host.log, 'a')
  try {
    const child = spawn(
      NSENTER,
      [`--net=${netns.path}`, UNSHARE, '-m', '--propagation', 'private', '/bin/sh', '-c', `${netns.setup} && mount --bind "$1" /srv && ${CLEAN_BASHRC} && exec ${SSHD} -D -e -f "$2"`, 'shoal-sandbox', host.srv, host.config, host.bashrc],
      {detached: true, stdio: ['ignore', log, log]},
    )
    let ended: string | undefined
    child.on('error', (error) => (ended ??= `could not run ${UNSHARE}: ${error.message}`))
    child.on('exit', (code, signal) => (ended = signal ? `signal ${signal}` : `exit code ${code}`))
    child.unref()
    if (child.pid === undefined) throw new ShoalError(`could not start ${UNSHARE} for ${host.name}`, 'sandbox-unshare-failed')
    // Read at once: the child cannot have been reaped yet (that happens on a later turn of the event loop).
    const startTime = processStartTime(child.pid)
    if (startTime === undefined) throw new ShoalError(`sandbox host ${host.name}: ${UNSHARE} ended before it could be identified (log: ${host.log})`, 'sandbox-sshd-failed')
    return {pid: child.pid, startTime, ended: () => ended}
  } finally {
    closeSync(log)
  }
}

/**
 * Wait until the host answers with an SSH banner. A process this one started fails at once when its exit event
 * says it ended; a host started by an earlier command, when its identity (pid + start time) is gone.
 */
export async function waitReady(host: SshdPaths, sshd: ProcessIdentity & {ended?: () => string | undefined}, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer'
  for (;;) {
    const ended = sshd.ended ? sshd.ended() : isAlive(sshd) ? undefined : 'it is no longer running'
    if (ended !== undefined) throw startFailure(host, ended)
    if (Date.now() >= deadline) break
    try {
      const banner = await readBanner(host.address, host.port, Math.min(2000, Math.max(100, deadline - Date.now())))
      if (banner.startsWith('SSH-2.0-')) return
      last = `unexpected banner ${JSON.stringify(banner)}`
    } catch (error) {
      last = (error as Error).message
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new ShoalError(`sandbox host ${host.name} (${host.address}:${host.port}) did not answer SSH within ${timeoutMs / 1000} s (last: ${last}); its sshd (pid ${sshd.pid}) is still running; see ${host.log}`, 'sandbox-not-ready')
}

function startFailure(host: SshdPaths, how: string): ShoalError {
  const tail = existsSync(host.log) ? readFileSync(host.log, 'utf8').trim().split(/\r?\n/).slice(-5).join(' | ') : ''
  if (/unshare|nsenter|mount|RTNETLINK|Cannot find device/.test(tail) && !/sshd/.test(tail)) {
    return new ShoalError(`sandbox host ${host.name}: could not enter or set up its namespaces (nsenter --net, ip, unshare -m, mount --bind; ${how}): ${tail}. It needs root and a kernel that allows network and mount namespaces (in a container: CAP_SYS_ADMIN and CAP_NET_ADMIN).`, 'sandbox-unshare-failed')
  }
  return new ShoalError(`sandbox host ${host.name}: sshd exited during start (${how}): ${tail || 'no output'} (log: ${host.log})`, 'sandbox-sshd-failed')
}

function readBanner(address: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: address, port})
    let data = ''
    const done = (error?: Error): void => {
      socket.destroy()
      if (error) reject(error)
      else resolve(data.split('\n')[0]!.trim())
    }
    socket.setTimeout(timeoutMs, () => done(new Error('timed out waiting for the SSH banner')))
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1')
      if (data.includes('\n')) done()
    })
    socket.on('error', (error) => done(error))
    socket.on('end', () => done(new Error('closed before the SSH banner')))
  })
}

/** The mount namespace of a process, e.g. `mnt:[4026532301]`. */
export function mountNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`)
  } catch {
    return undefined
  }
}

/**
 * Every process of the host: in mount namespace `ns` and seeing `srv` as its /srv (the host's sshd, its sessions, and
 * whatever they started). The namespace id alone is not enough: once the host's processes are gone, the kernel may give
 * the same id to a namespace another sandbox creates next, and sweeping that would kill another sandbox's hosts.
 */
function processesIn(ns: string, srv: string): ProcessIdentity[] {
  const own = statSync(srv, {throwIfNoEntry: false})
  if (!own) return []
  const pids: ProcessIdentity[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || mountNamespace(Number(entry)) !== ns) continue
    try {
      const startTime = processStartTime(Number(entry))
      const seen = statSync(`/proc/${entry}/root/srv`)
      if (startTime !== undefined && seen.dev === own.dev && seen.ino === own.ino) pids.push({pid: Number(entry), startTime})
    } catch {
      // the process ended while we looked
    }
  }
  return pids
}

/**
 * Stop a host: SIGTERM then SIGKILL to every process in its private mount namespace (sshd, sessions, services the
 * host's scripts started), with a bounded wait. A namespace equal to our own is never swept: only `sshd` is stopped then.
 * Processes are told apart by identity (pid + start time), so a pid reused meanwhile is never signalled.
 */
export async function stopHost(sshd: Partial<ProcessIdentity> | undefined, ns: string | undefined, srv: string, graceMs = 5000): Promise<void> {
  const ownNs = mountNamespace(process.pid)
  const targets = (): ProcessIdentity[] => {
    const found = ns !== undefined && ns !== ownNs ? processesIn(ns, srv) : []
    if (isAlive(sshd) && !found.some((p) => p.pid === sshd!.pid)) found.push({pid: sshd!.pid!, startTime: sshd!.startTime!})
    return found.filter((p) => isAlive(p))
  }
  for (const [signal, waitMs] of [['SIGTERM', graceMs], ['SIGKILL', 2000]] as const) {
    const pids = targets()
    if (pids.length === 0) return
    for (const p of pids) {
      try {
        process.kill(p.pid, signal)
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + waitMs
    while (Date.now() < deadline && pids.some((p) => isAlive(p))) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  const left = targets()
  if (left.length > 0) throw new ShoalError(`sandbox processes ${left.map((p) => p.pid).join(', ')} did not stop after SIGKILL`, 'sandbox-stop-failed')
}
