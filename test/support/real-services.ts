// Helpers for end-to-end tests of the example specs with the real Debian services on sandbox hosts: the example spec
// with its ports moved to free ones, the services' own protocols (ZooKeeper four-letter words, HTTP), and what a
// cluster leaves behind on the hosts (processes in the hosts' mount namespaces, files under their /srv).
import {execFile} from 'node:child_process'
import {cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {parseDocument} from 'yaml'
import type {TestSandbox} from './sandbox.js'
import {REPO, type Registry} from './shoal-cli.js'

export interface SpecCopy {
  /** The spec file to give `shoal create`. */
  spec: string
  dispose(): void
}

/**
 * The example spec `specs/<name>.yaml` unchanged except for the defaults of the env parameters in `defaults` (ports,
 * heap), so test runs in parallel (or beside `scripts/demo.sh`) never share a service port. Its templates are the
 * repository's own, copied beside it. With `agent`, the copy opts in to agents (`agent: true`).
 */
export function exampleSpec(name: string, defaults: Record<string, string | number>, options: {agent?: boolean} = {}): SpecCopy {
  const source = path.join(REPO, 'specs', `${name}.yaml`)
  const doc = parseDocument(readFileSync(source, 'utf8'))
  if (options.agent) doc.set('agent', true)
  for (const [param, value] of Object.entries(defaults)) {
    if (!doc.hasIn(['env', param])) throw new Error(`specs/${name}.yaml has no env parameter ${param}`)
    doc.setIn(['env', param, 'default'], value)
  }
  const dir = mkdtempSync(path.join(tmpdir(), `shoal-e2e-${name}-`))
  // A copy, not a symlink: lint refuses templates that resolve outside the spec's directory.
  cpSync(path.join(REPO, 'specs', name), path.join(dir, name), {recursive: true})
  const spec = path.join(dir, `${name}.yaml`)
  writeFileSync(spec, doc.toString())
  return {spec, dispose: () => rmSync(dir, {recursive: true, force: true})}
}

/**
 * `count` distinct ports from 20000-29999 for a test's services; with `alsoPlus`, port + alsoPlus is kept free of the
 * others too (Redis Cluster's bus port). No bind check is needed: every sandbox host has a network namespace of its
 * own, so nothing else listens there; the ports only differ from the examples' defaults so that a test never leans on them.
 */
export function freeServicePorts(count: number, options: {alsoPlus?: number} = {}): number[] {
  const ports: number[] = []
  while (ports.length < count) {
    const port = 20000 + Math.floor(Math.random() * 10000)
    const taken = (p: number): boolean => ports.includes(p) || (options.alsoPlus !== undefined && (ports.includes(p - options.alsoPlus) || ports.includes(p + options.alsoPlus)))
    if (!taken(port) && (options.alsoPlus === undefined || !taken(port + options.alsoPlus))) ports.push(port)
  }
  return ports
}

/** Send a ZooKeeper four-letter word (srvr, mntr, ruok) and return the answer; '' when nothing answers within 5 s. */
export function fourLetterWord(ip: string, port: number, word: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({host: ip, port})
    let answer = ''
    const done = (): void => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(5000, done)
    socket.on('connect', () => socket.write(word))
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()))
    socket.on('error', done)
    socket.on('close', done)
  })
}

/** `Mode:` of a member's srvr answer (leader, follower, standalone), or `none` when it does not serve. */
export async function zkMode(ip: string, port: number): Promise<string> {
  return /^Mode: (\w+)/m.exec(await fourLetterWord(ip, port, 'srvr'))?.[1] ?? 'none'
}

/** Run a program with a deadline; resolves with its exit code and output (never rejects). */
export function run(file: string, args: readonly string[], options: {input?: string; timeoutMs?: number} = {}): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const child = execFile(file, args, {timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 2 ** 20}, (error, stdout, stderr) => {
      const code = error ? (typeof (error as {code?: unknown}).code === 'number' ? (error as {code: number}).code : null) : 0
      resolve({code, stdout, stderr})
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
  })
}

/**
 * Pids and command lines of the processes in the sandbox hosts' mount namespaces whose program (the executable) or
 * command line matches. The executable is read too: a command line can read as something else for a moment while a
 * process execs or rewrites its title (redis-server, sshd do), its executable cannot. A child forked and not yet exec'd
 * (or a server's own fork, e.g. redis-server saving) looks like its parent: a match whose parent matches with the same
 * command line is not counted.
 */
export function sandboxProcesses(sandbox: TestSandbox, pattern: RegExp): string[] {
  const namespaces = new Set(sandbox.state.hosts.map((h) => h.mountNamespace).filter((ns): ns is string => ns !== undefined))
  if (namespaces.size !== sandbox.state.hosts.length) throw new Error('a sandbox host has no recorded mount namespace')
  const found = new Map<string, {line: string; parent: string}>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (!namespaces.has(readlinkSync(`/proc/${entry}/ns/mnt`))) continue
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()
      const exe = readlinkSync(`/proc/${entry}/exe`)
      const parent = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ').at(-1)!.split(' ')[1]!
      if (pattern.test(cmdline) || pattern.test(path.basename(exe))) found.set(entry, {line: cmdline || exe, parent})
    } catch {
      // the process ended while we looked
    }
  }
  return [...found].filter(([, p]) => found.get(p.parent)?.line !== p.line).map(([pid, p]) => `${pid} ${p.line}`)
}

/** The local directory shown as /srv on the sandbox host with this address. */
export function srvOf(sandbox: TestSandbox, address: string): string {
  const host = sandbox.state.hosts.find((h) => h.address === address)
  if (!host) throw new Error(`no sandbox host has address ${address}`)
  return path.join(host.dir, 'srv')
}

/** A node's home on its sandbox host, as a local path. */
export function homeOn(sandbox: TestSandbox, node: {ip: string; node_id: string}, cluster: string): string {
  return path.join(srvOf(sandbox, node.ip), 'shoal', cluster, node.node_id)
}

/** What is left under /srv/shoal on every sandbox host (`<host>:/srv/shoal/<entry>`); [] when nothing is. */
export function leftUnderSrvShoal(sandbox: TestSandbox): string[] {
  return sandbox.state.hosts.flatMap((h) => {
    const dir = path.join(h.dir, 'srv', 'shoal')
    return existsSync(dir) ? readdirSync(dir).map((entry) => `${h.name}:/srv/shoal/${entry}`) : []
  })
}

/** Every key the registry holds (under its prefix): [] once the last cluster is destroyed. */
export async function registryKeys(registry: Registry): Promise<string[]> {
  const {openStore} = await import('../../src/store/open.js')
  const store = await openStore({...registry.store, env: {}})
  try {
    return (await store.range('')).kvs.map((kv) => kv.key)
  } finally {
    await store.close()
  }
}
