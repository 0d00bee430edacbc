// A sandbox's network: one bridge on the machine and, per host, a network namespace joined to it by a veth pair, with
// addresses from 198.18.0.0/15 (set aside for benchmarking, never routed off the machine).
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import path from 'node:path'
import {ShoalError} from '../errors.js'

export const IP = '/usr/sbin/ip'

/** 198.18.0.0/15 holds 512 /24 subnets: one per sandbox on the machine. */
const SUBNETS = 512
/** The machine's own address on every sandbox bridge: `.254` of the subnet. */
const GATEWAY_OCTET = 254
/** Marks a bridge as a sandbox's and names its owner, so leftovers of a crashed sandbox can be told from live ones. */
const ALIAS_PREFIX = 'shoal-sandbox'

export interface SandboxNetwork {
  /** Index of the /24 in 198.18.0.0/15 (0-511). */
  subnet: number
  bridge: string
  /** The machine as the hosts see it (the bridge's address): services for the hosts listen here or on 0.0.0.0. */
  gateway: string
}

/** Host `index` (1-253) of subnet `subnet`. */
export function hostAddress(subnet: number, index: number): string {
  return `198.${18 + (subnet >> 8)}.${subnet & 255}.${index}`
}

const bridgeName = (subnet: number): string => `shoal-br${subnet}`
/** The network namespace of a host, as `ip netns` names it (a file under /run/netns). */
export const namespaceName = (subnet: number, index: number): string => `shoal-${subnet}-${index}`
/** The machine's end of a host's veth pair; the host's end is `eth0` inside its namespace. */
const vethName = (subnet: number, index: number): string => `shoal${subnet}h${index}`
export const namespacePath = (subnet: number, index: number): string => `/run/netns/${namespaceName(subnet, index)}`

interface IpResult {
  ok: boolean
  stderr: string
}

function ip(args: readonly string[], input?: string): IpResult {
  const result = spawnSync(IP, [...args], {encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000})
  if (result.error) throw new ShoalError(`could not run ${IP} (${result.error.message}); it comes with iproute2: \`apt-get install iproute2\``, 'sandbox-network-failed')
  return {ok: result.status === 0, stderr: result.stderr.trim()}
}

function mustIp(what: string, args: readonly string[], input?: string): void {
  const result = ip(args, input)
  if (!result.ok) throw new ShoalError(`sandbox network: could not ${what}: ${result.stderr || `${IP} ${args.join(' ')} failed`}`, 'sandbox-network-failed')
}

/** Take a free subnet for the sandbox in `dir`: creating its bridge is the claim (it fails when another sandbox has it). */
export function claimNetwork(dir: string): SandboxNetwork {
  sweepLeftovers()
  for (let subnet = 0; subnet < SUBNETS; subnet++) {
    const bridge = bridgeName(subnet)
    const made = ip(['link', 'add', 'name', bridge, 'type', 'bridge'])
    if (!made.ok) {
      if (/exists/i.test(made.stderr)) continue
      throw new ShoalError(`sandbox network: could not create bridge ${bridge}: ${made.stderr}. It needs root and a kernel with network namespaces and bridges.`, 'sandbox-network-failed')
    }
    const network: SandboxNetwork = {subnet, bridge, gateway: hostAddress(subnet, GATEWAY_OCTET)}
    try {
      mustIp('mark the bridge', ['link', 'set', 'dev', bridge, 'alias', `${ALIAS_PREFIX} ${process.pid} ${dir}`])
      mustIp('address the bridge', ['addr', 'add', `${network.gateway}/24`, 'dev', bridge])
      mustIp('bring the bridge up', ['link', 'set', 'dev', bridge, 'up'])
    } catch (error) {
      ip(['link', 'del', bridge])
      throw error
    }
    return network
  }
  throw new ShoalError(`no free sandbox subnet: all ${SUBNETS} of 198.18.0.0/15 are taken by running sandboxes (\`shoal sandbox down\` some)`, 'sandbox-network-full')
}

/**
 * Give hosts `indices` each a network namespace joined to the bridge (one `ip -batch` call for all of them). The
 * namespace's own side is set up by `insideSetup`, run in it by the host's start script: one process per host, in
 * parallel with the other hosts' starts, instead of one more `ip` call after another here.
 */
export function addHosts(network: SandboxNetwork, indices: readonly number[]): void {
  if (indices.length === 0) return
  // A host left by a crash under the same name would make the batch fail: remove those first.
  removeHosts(network, indices.filter((i) => existsSync(namespacePath(network.subnet, i)) || existsSync(`/sys/class/net/${vethName(network.subnet, i)}`)))
  const lines = indices.flatMap((i) => {
    const ns = namespaceName(network.subnet, i)
    const veth = vethName(network.subnet, i)
    return [`netns add ${ns}`, `link add ${veth} type veth peer name eth0 address ${hostMac(network.subnet, i)} netns ${ns}`, `link set ${veth} master ${network.bridge} up`]
  })
  mustIp('create the hosts\' network namespaces', ['-batch', '-'], `${lines.join('\n')}\n`)
}

/**
 * A host's eth0 address, the same every time the host is made: a host started again (after its sshd died, or a
 * crash) keeps its MAC, so the machine's and the other hosts' ARP caches stay right; with a new random one, packets
 * went to the old MAC until those entries went stale (30 s and more).
 */
function hostMac(subnet: number, index: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0')
  return `02:53:${hex(subnet >> 8)}:${hex(subnet & 255)}:00:${hex(index)}`
}

/**
 * Shell commands that bring up host `index`'s side, run inside its namespace: loopback, its address on eth0. No
 * default route: a host reaches its subnet (the other hosts, the machine at the gateway) and nothing else.
 */
export function insideSetup(network: SandboxNetwork, index: number): string {
  return `${IP} link set lo up && ${IP} addr add ${hostAddress(network.subnet, index)}/24 dev eth0 && ${IP} link set eth0 up`
}

/** Remove hosts' namespaces and veth pairs in one forced batch (missing ones are fine: removal is idempotent). */
export function removeHosts(network: Pick<SandboxNetwork, 'subnet'>, indices: readonly number[]): void {
  if (indices.length === 0) return
  const lines = indices.flatMap((i) => [
    ...(existsSync(namespacePath(network.subnet, i)) ? [`netns del ${namespaceName(network.subnet, i)}`] : []),
    ...(existsSync(`/sys/class/net/${vethName(network.subnet, i)}`) ? [`link del ${vethName(network.subnet, i)}`] : []),
  ])
  if (lines.length) ip(['-force', '-batch', '-'], `${lines.join('\n')}\n`)
}

/** Remove the whole network: every host namespace of the subnet, every veth, the bridge. */
export function releaseNetwork(network: Pick<SandboxNetwork, 'subnet'>): void {
  const prefix = `${namespaceName(network.subnet, 0).slice(0, -1)}`
  const hosts = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)).map((n) => Number(n.slice(prefix.length))) : []
  removeHosts(network, hosts.filter((i) => Number.isInteger(i)))
  ip(['link', 'del', bridgeName(network.subnet)])
}

/** Cut a host off (its link to the bridge goes down: nothing in or out, as a pulled cable) or heal it. */
export function setHostLink(network: SandboxNetwork, index: number, up: boolean): void {
  mustIp(`${up ? 'heal' : 'partition'} host ${index}`, ['link', 'set', 'dev', vethName(network.subnet, index), up ? 'up' : 'down'])
}

/** Whether a host's link is down (partitioned). */
export function isPartitioned(network: SandboxNetwork, index: number): boolean {
  try {
    return readFileSync(`/sys/class/net/${vethName(network.subnet, index)}/operstate`, 'utf8').trim() === 'down'
  } catch {
    return false
  }
}

/**
 * Remove the networks of sandboxes that are gone: a bridge whose alias names an owner process that ended and a
 * directory whose sandbox.json does not record that subnet (a crash, a removed directory). A live owner's bridge
 * is never touched, nor one whose directory still records it (its `down` removes it).
 */
export function sweepLeftovers(): void {
  if (!existsSync('/sys/class/net')) return
  for (const name of readdirSync('/sys/class/net')) {
    const match = /^shoal-br(\d+)$/.exec(name)
    if (!match) continue
    let alias = ''
    try {
      alias = readFileSync(`/sys/class/net/${name}/ifalias`, 'utf8').trim()
    } catch {
      continue
    }
    const [marker, pid, ...dirParts] = alias.split(' ')
    if (marker !== ALIAS_PREFIX) continue
    const subnet = Number(match[1])
    if (ownerAlive(Number(pid)) || recordsSubnet(dirParts.join(' '), subnet)) continue
    releaseNetwork({subnet})
  }
}

function ownerAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function recordsSubnet(dir: string, subnet: number): boolean {
  try {
    const state = JSON.parse(readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as {network?: {subnet?: number}}
    return state.network?.subnet === subnet
  } catch {
    return false
  }
}
