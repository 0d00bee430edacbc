// The linked example end to end (issue 14): a MariaDB primary with GTID replicas (specs/mariadb.yaml) and, linked to
// it, an HAProxy cluster with agents (specs/mariadb-proxy.yaml) sending writes to the primary and reads to the ready
// replicas. Replicas go 1 → 3 → 1 under a steady read load through the proxy: not one read fails, every read sees every
// row written before the scale, new replicas get reads only once caught up — and the proxy follows with no shoal
// command run for it (its agents re-render and reload). Destroying both leaves nothing.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {createConnection, type ConnectionOptions} from 'mysql2/promise'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {eventually} from './support/children.js'
import {freePort} from './support/etcd.js'
import {describeLoad, during, Load} from './support/load.js'
import {readAllItems, readItems, writeItems, type TableRead} from './support/mariadb-load.js'
import {startMetad, type MetadProcess} from './support/metad.js'
import {exampleSpec, freeServicePorts, leftUnderSrvShoal, registryKeys, sandboxProcesses, type SpecCopy} from './support/real-services.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, registeredNodes, shoal, type CliResult, type Registry} from './support/shoal-cli.js'

const DB = 'db-main'
const PROXY = 'db-proxy'
const HOSTS = 5
const ROWS = 200
const OPERATION_MS = 300_000
const SETTLE_MS = 90_000
const APP_PASSWORD = 'app-Pw-4k2q9x'
const REPL_PASSWORD = 'repl-Pw-8m3z1c'

let sandbox: TestSandbox
let registry: Registry
let metad: MetadProcess
let db: SpecCopy
let proxy: SpecCopy
let secrets: string
let writePort: number
let readPort: number

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(HOSTS)
  registry = embeddedRegistry()
  const [port, write, read] = freeServicePorts(3)
  writePort = write!
  readPort = read!
  db = exampleSpec('mariadb', {port: port!})
  proxy = exampleSpec('mariadb-proxy', {write_port: write!, read_port: read!})
  secrets = mkdtempSync(path.join(tmpdir(), 'shoal-mariadb-'))
  writeFileSync(path.join(secrets, 'app'), APP_PASSWORD)
  writeFileSync(path.join(secrets, 'repl'), REPL_PASSWORD)
  metad = await startMetad(registry.flags, [], await freePort(), sandbox.state.network!.gateway)
}, OPERATION_MS)

afterAll(async () => {
  for (const cluster of [PROXY, DB]) {
    if (registry && (await registryKeys(registry).catch(() => [])).some((k) => k.startsWith(`clusters/${cluster}/`))) await cli('destroy', cluster, '--yes')
  }
  await metad?.stop()
  registry?.dispose()
  await sandbox?.stop()
  db?.dispose()
  proxy?.dispose()
  if (secrets) rmSync(secrets, {recursive: true, force: true})
}, OPERATION_MS)

const outputs: CliResult[] = []

async function cli(...args: string[]): Promise<CliResult> {
  const result = await shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
  outputs.push(result)
  return result
}

function expectOk(result: CliResult): void {
  expect(result.code, describeResult(result)).toBe(0)
}

async function proxyIp(): Promise<string> {
  return (await registeredNodes(registry, PROXY, 'proxy'))[0]!.ip
}

async function options(port: number): Promise<ConnectionOptions> {
  return {host: await proxyIp(), port, user: 'app', password: APP_PASSWORD, database: 'app'}
}

const read = async (): Promise<TableRead> => readItems(await options(readPort))

/** Server ids answering reads over `samples` reads (replicas are 1000 + sid; the primary is 1). */
async function readers(samples = 24): Promise<number[]> {
  const seen = new Set<number>()
  for (let i = 0; i < samples; i++) seen.add((await read()).serverId)
  return [...seen].sort((a, b) => a - b)
}

/** Waits (bounded) until reads through the proxy come from exactly these server ids. */
async function readsFrom(expected: number[]): Promise<void> {
  let last: number[] = []
  await eventually(() => `reads answered by server ids ${expected.join(', ')} (last seen: ${last.join(', ')})`, async () => {
    last = await readers()
    return JSON.stringify(last) === JSON.stringify(expected)
  }, SETTLE_MS, 1000)
}

/** Steady reads through the proxy while `change` runs: each must answer and hold every row written before. */
async function underReads(change: () => Promise<void>): Promise<void> {
  const load = new Load(readAllItems(() => options(readPort), ROWS), {clients: 3, pauseMs: 20})
  const report = await during(load, change)
  expect(report.failed, describeLoad(report)).toBe(0)
  expect(report.operations).toBeGreaterThan(0)
}

const replicaIds = (...sids: number[]): number[] => sids.map((sid) => 1000 + sid)

describe('MariaDB replicas behind an HAProxy that follows them (agents), 1 → 3 → 1 replicas', () => {
  it('create: the database cluster with its passwords from files, then the proxy linked to it', async () => {
    expectOk(await cli('create', db.spec, '--hosts', sandbox.state.inventory, '--set-file', `app_password=${path.join(secrets, 'app')}`, '--set-file', `repl_password=${path.join(secrets, 'repl')}`))
    expect((await registeredNodes(registry, DB, 'replica')).map((n) => n.state)).toEqual(['active'])
    expectOk(await cli('create', proxy.spec, '--hosts', sandbox.state.inventory, '--metad', metad.url))
  }, OPERATION_MS)

  it('writes go to the primary and reads to the replica, which has every row', async () => {
    await writeItems(await options(writePort), ROWS)
    const connection = await createConnection(await options(writePort))
    try {
      const [rows] = await connection.query('SELECT @@server_id AS id, @@read_only AS ro')
      expect(rows).toEqual([{id: 1, ro: 0}])
    } finally {
      await connection.end()
    }
    await eventually(() => 'the replica has every row', async () => (await read()).rows === ROWS, SETTLE_MS, 500)
    expect(await readers()).toEqual(replicaIds(1))
  }, OPERATION_MS)

  it('scale replicas to 3 under steady reads: none fails or misses a row; the proxy follows by itself', async () => {
    await underReads(async () => expectOk(await cli('scale', DB, '--role', 'replica', '--count', '3')))
    await readsFrom(replicaIds(1, 2, 3))
  }, OPERATION_MS)

  it('scale replicas to 1 under steady reads: none fails or misses a row; the leaving replicas get no more reads', async () => {
    await underReads(async () => expectOk(await cli('scale', DB, '--role', 'replica', '--count', '1')))
    await readsFrom(replicaIds(1))
    expect(sandboxProcesses(sandbox, /mariadbd/)).toHaveLength(2)
  }, OPERATION_MS)

  it('neither password shows in any output of shoal', async () => {
    expectOk(await cli('status', DB))
    const all = outputs.map((r) => r.stdout + r.stderr).join('\n')
    expect(all).not.toContain(APP_PASSWORD)
    expect(all).not.toContain(REPL_PASSWORD)
  }, OPERATION_MS)

  it('destroy both leaves nothing: no server or proxy on the hosts, /srv/shoal empty, the registry empty', async () => {
    expectOk(await cli('destroy', PROXY, '--yes'))
    expectOk(await cli('destroy', DB, '--yes'))
    expect(sandboxProcesses(sandbox, /mariadbd|haproxy|agent\.mjs/)).toEqual([])
    expect(leftUnderSrvShoal(sandbox)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)
})
