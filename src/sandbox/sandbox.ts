// The sandbox: N local hosts (own network namespace and address, own sshd, own /srv) with keys, known_hosts and a hosts.yaml for shoal.
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {stringify} from 'yaml'
import {ShoalError} from '../errors.js'
import type {HostsFile} from '../inventory/types.js'
import {knownHostName} from '../transport/known-hosts.js'
import {addHosts, claimNetwork, hostAddress, insideSetup, namespaceName, namespacePath, releaseNetwork, removeHosts, setHostLink, sweepLeftovers, type SandboxNetwork} from './network.js'
import {SSH_KEYGEN, isAlive, mountNamespace, preflight, sshdConfig, startSshd, stopHost, waitReady, type SshdPaths, type StartedSshd} from './sshd.js'

export const DEFAULT_SANDBOX_DIR = '.shoal/sandbox'
/** Addresses .1 to .253 of the sandbox's /24; .254 is the machine's own on the bridge. */
export const MAX_SANDBOX_HOSTS = 253
const STATE_FILE = 'sandbox.json'

export interface SandboxHost {
  name: string
  address: string
  port: number
  /** The sshd process (also its process group). */
  pid: number
  /** Its start time (/proc/PID/stat field 22): with the pid, what tells this sshd from a later process given the same pid. */
  startTime?: number
  /** Its private mount namespace, e.g. `mnt:[4026532301]`; `down` stops every process in it. */
  mountNamespace?: string
  /** Its network namespace, as `ip netns` names it. */
  netns?: string
  /** True while `shoal sandbox partition` has cut it off. */
  partitioned?: boolean
  /** Directory holding its sshd config, host key, log and `srv/` (its /srv). */
  dir: string
}

export interface SandboxState {
  /** 2 records each host's start time; a version 1 file's hosts are stopped by their namespace and started afresh. */
  version: 1 | 2
  dir: string
  port: number
  /** The inventory to give shoal (`--hosts`). */
  inventory: string
  knownHosts: string
  /** The user's private key (root login on every host). */
  key: string
  /** The bridge and subnet the hosts' network namespaces hang off (absent in a version 1 file: hosts on 127.0.1.x). */
  network?: SandboxNetwork
  hosts: SandboxHost[]
}

export interface SandboxHostStatus extends SandboxHost {
  running: boolean
  /** The directory shown as /srv on the host. */
  srv: string
  log: string
}

export interface SandboxUpOptions {
  dir: string
  hosts: number
  /** SSH port on every host; default 22. */
  port?: number
  readyTimeoutMs?: number
}

/** Start (or grow, or shrink) the sandbox to exactly `hosts` hosts; running hosts are kept. Needs root. */
export async function sandboxUp(options: SandboxUpOptions): Promise<SandboxState> {
  const count = options.hosts
  if (!Number.isInteger(count) || count < 1 || count > MAX_SANDBOX_HOSTS) {
    throw new ShoalError(`--hosts must be a whole number from 1 to ${MAX_SANDBOX_HOSTS} (one address of the sandbox's 198.18.x.0/24 each), got ${count}`, 'sandbox-bad-hosts', 2)
  }
  const port = options.port ?? 22
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ShoalError(`--port must be from 1 to 65535, got ${port}`, 'sandbox-bad-port', 2)
  preflight()
  const dir = path.resolve(options.dir)
  let previous = readState(dir)
  if (previous && previous.port !== port && previous.hosts.some((h) => isAlive(h))) {
    throw new ShoalError(`the sandbox in ${dir} runs on port ${previous.port}; run \`shoal sandbox down\` first to change the port to ${port}`, 'sandbox-port-changed', 2)
  }
  if (previous && !previous.network) {
    // A version 1 sandbox (hosts on 127.0.1.x in the machine's network): its hosts start again in namespaces of their own.
    for (const host of previous.hosts) await stopHost(host, host.mountNamespace, hostPaths(dir, host.name, host.address, host.port).srv)
    previous = undefined
  }
  mkdirSync(dir, {recursive: true, mode: 0o700})
  const key = path.join(dir, 'id_ed25519')
  if (!existsSync(key)) writeKeyPair(key, 'shoal-sandbox-user')
  const authorizedKeys = path.join(dir, 'authorized_keys')
  writeFileSync(authorizedKeys, readFileSync(`${key}.pub`), {mode: 0o600})
  const network = previous?.network ?? claimNetwork(dir)

  // Hosts beyond the new count go first, so their addresses are free if the sandbox grows again.
  const extra = previous?.hosts.slice(count) ?? []
  for (const host of extra) {
    await stopHost(host, host.mountNamespace, hostPaths(dir, host.name, host.address, host.port).srv)
    rmSync(host.dir, {recursive: true, force: true})
  }
  removeHosts(network, extra.map((h) => hostIndex(h.name)))

  const hosts: SandboxHost[] = []
  const starting: Array<Promise<void>> = []
  const fresh: number[] = []
  const reused = new Map<number, SandboxHost>()
  for (let i = 1; i <= count; i++) {
    const known = previous?.hosts.find((h) => h.name === `sandbox-${i}`)
    if (known && isAlive(known)) reused.set(i, known)
    else {
      // A host recorded without a live identity may still have processes in its namespace (an old state file, a crash).
      if (known) await stopHost(known, known.mountNamespace, hostPaths(dir, known.name, known.address, known.port).srv)
      fresh.push(i)
    }
  }
  addHosts(network, fresh)
  for (let i = 1; i <= count; i++) {
    const name = `sandbox-${i}`
    const address = hostAddress(network.subnet, i)
    const paths = hostPaths(dir, name, address, port)
    mkdirSync(paths.srv, {recursive: true, mode: 0o755})
    writeFileSync(paths.bashrc, '', {mode: 0o644})
    if (!existsSync(paths.hostKey)) writeKeyPair(paths.hostKey, `shoal-${name}`)
    writeFileSync(paths.config, sshdConfig({...paths, authorizedKeys}), {mode: 0o600})
    const known = reused.get(i)
    let host: SandboxHost
    let sshd: StartedSshd | SandboxHost
    if (known) {
      host = sshd = known
    } else {
      const started = startSshd({...paths, authorizedKeys}, {path: namespacePath(network.subnet, i), setup: insideSetup(network, i)})
      sshd = started
      host = {name, address, port, pid: started.pid, startTime: started.startTime, netns: namespaceName(network.subnet, i), dir: path.dirname(paths.config)}
    }
    hosts.push(host)
    starting.push(
      waitReady({...paths, authorizedKeys}, {pid: host.pid, startTime: host.startTime ?? -1, ...('ended' in sshd ? {ended: sshd.ended} : {})}, options.readyTimeoutMs).then(() => {
        const ns = mountNamespace(host.pid)
        if (ns !== undefined) host.mountNamespace = ns
      }),
    )
  }
  const state: SandboxState = {version: 2, dir, port, inventory: path.join(dir, 'hosts.yaml'), knownHosts: path.join(dir, 'known_hosts'), key, network, hosts}
  // Recorded before waiting, so `down` can stop hosts that started but failed to become ready.
  writeState(state)
  const results = await Promise.allSettled(starting)
  writeState(state)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason

  writeFileSync(state.knownHosts, hosts.map((h) => `${knownHostName(h.address, h.port)} ${publicKeyFields(path.join(h.dir, 'ssh_host_ed25519_key.pub'))}\n`).join(''), {mode: 0o600})
  writeFileSync(state.inventory, inventoryYaml(state))
  return state
}

/** Stop every host (all processes in their namespaces) and remove the sandbox directory. False when there was none. */
export async function sandboxDown(options: {dir: string}): Promise<boolean> {
  const dir = path.resolve(options.dir)
  const state = readState(dir)
  if (!state) {
    sweepLeftovers()
    return false
  }
  for (const host of state.hosts) await stopHost(host, host.mountNamespace, hostPaths(dir, host.name, host.address, host.port).srv)
  if (state.network) releaseNetwork(state.network)
  rmSync(dir, {recursive: true, force: true})
  sweepLeftovers()
  return true
}

/** The recorded hosts and whether each sshd is still running; undefined when there is no sandbox in `dir`. */
export function sandboxStatus(options: {dir: string}): (SandboxState & {hosts: SandboxHostStatus[]}) | undefined {
  const dir = path.resolve(options.dir)
  const state = readState(dir)
  if (!state) return undefined
  return {
    ...state,
    hosts: state.hosts.map((h) => {
      const paths = hostPaths(dir, h.name, h.address, h.port)
      return {...h, running: isAlive(h), srv: paths.srv, log: paths.log}
    }),
  }
}

function hostIndex(name: string): number {
  return Number(/^sandbox-(\d+)$/.exec(name)?.[1] ?? NaN)
}

/** Cut host `name` off the network (`partitioned`) or heal it; the state file records which hosts are cut off. */
export function sandboxPartition(options: {dir: string; host: string; partitioned: boolean}): SandboxHost {
  const dir = path.resolve(options.dir)
  const state = readState(dir)
  if (!state) throw new ShoalError(`no sandbox in ${dir}: start one with \`shoal sandbox up\``, 'sandbox-missing')
  const host = state.hosts.find((h) => h.name === options.host || h.address === options.host)
  if (!host) throw new ShoalError(`no sandbox host ${options.host} in ${dir} (hosts: ${state.hosts.map((h) => h.name).join(', ')})`, 'sandbox-unknown-host', 2)
  if (!state.network) throw new ShoalError(`the sandbox in ${dir} predates network namespaces: run \`shoal sandbox up\` again to give its hosts their own`, 'sandbox-no-network')
  setHostLink(state.network, hostIndex(host.name), !options.partitioned)
  if (options.partitioned) host.partitioned = true
  else delete host.partitioned
  writeState(state)
  return host
}

function hostPaths(dir: string, name: string, address: string, port: number): Omit<SshdPaths, 'authorizedKeys'> {
  const hostDir = path.join(dir, 'hosts', name)
  return {
    name,
    address,
    port,
    config: path.join(hostDir, 'sshd_config'),
    pidFile: path.join(hostDir, 'sshd.pid'),
    hostKey: path.join(hostDir, 'ssh_host_ed25519_key'),
    log: path.join(hostDir, 'sshd.log'),
    srv: path.join(hostDir, 'srv'),
    bashrc: path.join(hostDir, 'bashrc'),
  }
}

function readState(dir: string): SandboxState | undefined {
  const file = path.join(dir, STATE_FILE)
  if (!existsSync(file)) return undefined
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as SandboxState
    if ((state.version !== 1 && state.version !== 2) || !Array.isArray(state.hosts)) throw new Error('unknown format')
    return state
  } catch (error) {
    throw new ShoalError(`${file} is not a sandbox state file (${(error as Error).message}); stop its sshd processes by hand and remove ${dir}`, 'sandbox-bad-state')
  }
}

function writeState(state: SandboxState): void {
  const file = path.join(state.dir, STATE_FILE)
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`)
  renameSync(`${file}.tmp`, file) // a crash mid-write leaves the previous state whole
}

/**
 * An ed25519 key pair from ssh-keygen (private key mode 0600, `.pub` beside it). Not ssh2's generateKeyPairSync: about
 * one key in 256 comes out with its public part's leading zero byte dropped, and sshd then refuses it ("error in libcrypto").
 */
function writeKeyPair(file: string, comment: string): void {
  mkdirSync(path.dirname(file), {recursive: true, mode: 0o700})
  rmSync(file, {force: true})
  rmSync(`${file}.pub`, {force: true})
  const result = spawnSync(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  if (result.error || result.status !== 0) {
    const why = result.error?.message ?? result.stderr.trim()
    throw new ShoalError(`could not generate an SSH key with ${SSH_KEYGEN} (${why}); it comes with openssh-client: \`apt-get install openssh-server\``, 'sandbox-keygen-failed')
  }
  chmodSync(file, 0o600)
}

/** `type base64` of an OpenSSH public key file (the comment dropped). */
function publicKeyFields(file: string): string {
  const [type, base64] = readFileSync(file, 'utf8').trim().split(/\s+/)
  if (!type || !base64) throw new ShoalError(`${file} is not an OpenSSH public key`, 'sandbox-bad-key')
  return `${type} ${base64}`
}

function inventoryYaml(state: SandboxState): string {
  const inventory: HostsFile = {
    apiVersion: 'shoal/v1',
    kind: 'Hosts',
    hosts: state.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      ssh: {port: h.port, user: 'root', key: state.key, known_hosts: state.knownHosts},
      capacity: {cpu: 4, memory: '8Gi', disk: '50Gi'},
      labels: {sandbox: 'true'},
    })),
  }
  return `# The sandbox hosts as a shoal inventory, written by \`shoal sandbox up\` (rewritten on every up).\n${stringify(inventory)}`
}
