// A password change reaching running servers: the Redis Cluster example created with a password from --set-file,
// then `shoal apply --set-file password=NEW` rewrites redis.conf and its `configure` service sets the new password on
// each running redis-server with CONFIG SET (the same processes keep running). The value stays registered: a later
// scale-out joins with it. Neither password is ever printed, and none stays in the embedded state after destroy.
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {exampleSpec, freeServicePorts, homeOn, registryKeys, run, sandboxProcesses, type SpecCopy} from './support/real-services.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, registeredNodes, shoal, type CliResult, type RegisteredNode, type Registry} from './support/shoal-cli.js'

const CLUSTER = 'redis-main'
const HOSTS = 4
const OPERATION_MS = 300_000
const OLD = 'old-Pw-7f3k1'
const NEW = 'new-Pw-9q2m8'

let sandbox: TestSandbox
let copy: SpecCopy
let registry: Registry
let port: number
let dir: string
const outputs: CliResult[] = []

beforeAll(async () => {
  assertCliBuilt()
  dir = mkdtempSync(path.join(tmpdir(), 'shoal-redis-pw-'))
  writeFileSync(path.join(dir, 'old'), OLD)
  writeFileSync(path.join(dir, 'new'), NEW)
  registry = embeddedRegistry()
  sandbox = await startSandbox(HOSTS)
  ;[port] = freeServicePorts(1, {alsoPlus: 10000}) as [number]
  copy = exampleSpec('redis-cluster', {port})
}, OPERATION_MS)

afterAll(async () => {
  if (registry && (await registeredNodes(registry, CLUSTER, 'redis').catch(() => [])).length > 0) await cli('destroy', CLUSTER, '--yes')
  registry?.dispose()
  await sandbox?.stop()
  copy?.dispose()
  if (dir) rmSync(dir, {recursive: true, force: true})
}, OPERATION_MS)

async function cli(...args: string[]): Promise<CliResult> {
  const result = await shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
  outputs.push(result)
  return result
}

function expectOk(result: CliResult): void {
  expect(result.code, describeResult(result)).toBe(0)
}

/** redis-cli against a node with a password (or none); stdout and stderr together, for replies and refusals alike. */
async function redis(node: RegisteredNode, password: string | undefined, args: string[], input?: string): Promise<string> {
  const auth = password === undefined ? [] : ['-a', password, '--no-auth-warning']
  const result = await run('redis-cli', ['-h', node.ip, '-p', String(port), ...auth, ...args], input === undefined ? {} : {input})
  return `${result.stdout}${result.stderr}`.trim()
}

async function serverPids(nodes: readonly RegisteredNode[]): Promise<string[]> {
  return Promise.all(nodes.map(async (n) => (await redis(n, NEW, ['info', 'server'])).match(/^process_id:(\d+)/m)?.[1] ?? 'none'))
}

async function expectServedWith(password: string, nodes: readonly RegisteredNode[]): Promise<void> {
  for (const node of nodes) {
    expect(await redis(node, password, ['ping']), `${node.node_id} with the current password`).toBe('PONG')
    expect(await redis(node, undefined, ['get', 'k']), `${node.node_id} without a password`).toContain('NOAUTH')
    const info = await redis(node, password, ['cluster', 'info'])
    expect(info, `cluster info of ${node.node_id}`).toContain('cluster_state:ok')
    expect(info).toContain(`cluster_known_nodes:${nodes.length}`)
  }
}

describe('Redis Cluster password set at create and changed on the running cluster', () => {
  let before: string[] = []

  it('create --set-file password=FILE: every master requires the password', async () => {
    expectOk(await cli('create', copy.spec, '--hosts', sandbox.state.inventory, '--set-file', `password=${path.join(dir, 'old')}`))
    const nodes = await registeredNodes(registry, CLUSTER, 'redis')
    expect(nodes).toHaveLength(3)
    await expectServedWith(OLD, nodes)
    expect(await redis(nodes[0]!, OLD, ['-c', 'set', 'kept', 'before-the-change'])).toBe('OK')
    before = await Promise.all(nodes.map(async (n) => (await redis(n, OLD, ['info', 'server'])).match(/^process_id:(\d+)/m)?.[1] ?? 'none'))
  }, OPERATION_MS)

  it('apply --set-file password=NEW: configure sets it on the running servers (same processes), the old one is refused', async () => {
    const applied = await cli('apply', copy.spec, '--hosts', sandbox.state.inventory, '--set-file', `password=${path.join(dir, 'new')}`)
    expectOk(applied)
    expect(applied.stdout).toContain('run configure')
    const nodes = await registeredNodes(registry, CLUSTER, 'redis')
    await expectServedWith(NEW, nodes)
    for (const node of nodes) expect(await redis(node, OLD, ['ping'])).toMatch(/WRONGPASS|invalid password/i)
    expect(await serverPids(nodes)).toEqual(before)
    expect(await redis(nodes[2]!, NEW, ['-c', 'get', 'kept'])).toBe('before-the-change')
    // redis.conf on the node holds the new password for the next start, readable by its owner only.
    const conf = path.join(homeOn(sandbox, nodes[0]!, CLUSTER), 'conf', 'redis.conf')
    expect(readFileSync(conf, 'utf8')).toContain(`requirepass ${NEW}\n`)
  }, OPERATION_MS)

  it('scale --count 4 keeps the registered password: the joiner requires it and joins the cluster', async () => {
    expectOk(await cli('scale', CLUSTER, '--role', 'redis', '--count', '4'))
    const nodes = await registeredNodes(registry, CLUSTER, 'redis')
    expect(nodes.map((n) => n.state)).toEqual(['active', 'active', 'active', 'active'])
    await expectServedWith(NEW, nodes)
    const check = await run('redis-cli', ['--cluster', 'check', `${nodes[0]!.ip}:${port}`, '-a', NEW, '--no-auth-warning'])
    expect(check.stdout, check.stderr).toContain('[OK] All 16384 slots covered.')
  }, OPERATION_MS)

  it('destroy leaves no redis-server and no registry key; no output and not the state file ever held either password', async () => {
    const get = await cli('get', CLUSTER, 'env')
    expectOk(get)
    expect(get.stdout).toContain(`password = <redacted>  (from --set-file ${path.join(dir, 'new')}, secret)`)
    expectOk(await cli('destroy', CLUSTER, '--yes'))
    expect(sandboxProcesses(sandbox, /redis-server/)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
    for (const r of outputs) for (const pw of [OLD, NEW]) expect(`${r.stdout}${r.stderr}`, describeResult(r)).not.toContain(pw)
    const state = readFileSync(path.join(registry.store.state!, 'state.json'), 'utf8')
    for (const pw of [OLD, NEW]) expect(state).not.toContain(pw)
  }, OPERATION_MS)
})
