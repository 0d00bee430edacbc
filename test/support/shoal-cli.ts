// Runs the shoal CLI as a real process against one registry (a fresh embedded state dir, or etcd under its own prefix).
// By default the built CLI (bin/run.js over dist/, as CI builds it first); SHOAL_TEST_CLI=dev runs the TypeScript
// sources through oclif's dev mode instead (about 2.5x slower to start, but needs no build); SHOAL_TEST_CLI=<path> runs
// that bin/run.js (an installed or privately built copy).
import {spawn, type ChildProcess} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

export const REPO = path.resolve(import.meta.dirname, '../..')
const GATE = path.join(import.meta.dirname, 'start-gate.mjs')
const DEV = process.env.SHOAL_TEST_CLI === 'dev'
const CUSTOM = DEV ? undefined : process.env.SHOAL_TEST_CLI || undefined
const BIN = CUSTOM ?? path.join(REPO, 'bin', DEV ? 'dev.js' : 'run.js')
/** A CLI run that takes longer than this is killed, so a hang fails its test instead of the whole run. */
const RUN_LIMIT_MS = 150_000

export interface CliResult {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Wait for this file to exist before running the command (modules already loaded), to release many at once. */
  gate?: string
  env?: Record<string, string>
  /** Kill the run after this long instead of the default 150 s (operations on real services restart them one by one). */
  limitMs?: number
}

/** Throws a message that says what to do when the built CLI is missing. */
export function assertCliBuilt(): void {
  if (DEV) return
  if (CUSTOM) {
    if (!existsSync(CUSTOM)) throw new Error(`SHOAL_TEST_CLI=${CUSTOM} does not exist`)
    return
  }
  for (const file of ['dist/commands/plan.js', 'dist/commands/scale.js', 'oclif.manifest.json']) {
    if (!existsSync(path.join(REPO, file))) {
      throw new Error(`${file} is missing: these tests run the built CLI; run \`npm run build\` first (or set SHOAL_TEST_CLI=dev to run the TypeScript sources)`)
    }
  }
}

export interface CliProcess {
  child: ChildProcess
  exited: Promise<CliResult>
}

export function spawnShoal(args: readonly string[], options: RunOptions = {}): CliProcess {
  const env: Record<string, string | undefined> = {...process.env, NO_COLOR: '1', ...options.env}
  // The registry is chosen by flags only: a developer's own etcd must never be reached from a test.
  for (const name of Object.keys(env)) if (name.startsWith('SHOAL_ETCD') && !options.env?.[name]) delete env[name]
  if (options.gate) env.SHOAL_TEST_GATE = options.gate
  const node = [...(options.gate ? ['--import', GATE] : []), BIN]
  const child = spawn(process.execPath, [...node, ...args], {cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const limit = setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? RUN_LIMIT_MS)
  const exited = new Promise<CliResult>(resolve =>
    child.on('close', (code, signal) => {
      clearTimeout(limit)
      resolve({code, signal, stdout, stderr})
    }),
  )
  return {child, exited}
}

export function shoal(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return spawnShoal(args, options).exited
}

/** One line per result, for assertion messages. */
export function describeResult(r: CliResult): string {
  return `exit ${String(r.code ?? r.signal)}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`
}

export type RegistryKind = 'embedded' | 'etcd'

/** Where a test's clusters live: the registry flags every command of the test gets. */
export interface Registry {
  kind: RegistryKind
  flags: string[]
  /** The same registry for in-process or worker access (test/support/children.ts StoreSpec, openStore options). */
  store: {state?: string; etcd?: string; prefix?: string}
  /** Remove what the registry left on disk (etcd prefixes are unique per test and need no cleanup). */
  dispose(): void
}

export function embeddedRegistry(): Registry {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-cli-state-'))
  return {kind: 'embedded', flags: ['--state', dir], store: {state: dir}, dispose: () => rmSync(dir, {recursive: true, force: true})}
}

export function etcdRegistry(endpoints: readonly string[]): Registry {
  const prefix = `/shoal-test-${randomUUID()}/`
  const etcd = endpoints.join(',')
  return {kind: 'etcd', flags: ['--etcd', etcd, '--etcd-prefix', prefix], store: {etcd, prefix}, dispose: () => undefined}
}

export interface RegisteredNode {
  node_id: string
  sid: number
  ip: string
  state: string
}

export interface RegisteredCluster {
  /** `cluster/revision`; undefined when the cluster is not registered. */
  revision?: string
  /** Top-level segments of the tree, sorted (e.g. cluster, env, files, hosts, ids). */
  sections: string[]
  /** Nodes of every role, sorted by role then sid. */
  nodes: Array<RegisteredNode & {role: string}>
  /** Rendered files per node id: dest → content. */
  files: Record<string, Record<string, string>>
}

/**
 * What the registry holds for a cluster, read in this process (the commands under test run as processes; checking
 * their effect this way keeps a test from spawning one more CLI per assertion). The same consistent read `shoal get` does.
 */
export async function readRegistered(registry: Registry, cluster: string): Promise<RegisteredCluster> {
  const [{openStore}, {readCluster}] = await Promise.all([import('../../src/store/open.js'), import('../../src/registry/read.js')])
  const store = await openStore({...registry.store, env: {}})
  try {
    const {keys} = await readCluster(store, cluster)
    const nodes = new Map<string, Record<string, string>>()
    const files: Record<string, Record<string, string>> = {}
    for (const [key, value] of Object.entries(keys)) {
      const parts = key.split('/')
      if (parts[0] === 'hosts' && parts.length === 4) {
        const id = `${parts[1]}/${parts[2]}`
        nodes.set(id, {...nodes.get(id), role: parts[1]!, [parts[3]!]: value})
      } else if (parts[0] === 'files' && parts.length === 3) {
        ;(files[parts[1]!] ??= {})[decodeURIComponent(parts[2]!)] = value
      }
    }
    return {
      ...(keys['cluster/revision'] !== undefined ? {revision: keys['cluster/revision']} : {}),
      sections: [...new Set(Object.keys(keys).map(k => k.split('/')[0]!))].sort(),
      nodes: [...nodes.values()]
        .map(n => ({role: n.role!, node_id: n.node_id!, sid: Number(n.sid), ip: n.ip!, state: n.state!}))
        .sort((a, b) => (a.role === b.role ? a.sid - b.sid : a.role < b.role ? -1 : 1)),
      files,
    }
  } finally {
    await store.close()
  }
}

/** The nodes of one role, sorted by sid ([] when none). */
export async function registeredNodes(registry: Registry, cluster: string, role: string): Promise<RegisteredNode[]> {
  return (await readRegistered(registry, cluster)).nodes.filter(n => n.role === role).map(({role: _role, ...node}) => node)
}
