// The per-node token on the real create path: shoal create places .shoal/token in every node home on a sandbox host,
// metad (on the sandbox gateway) accepts it from the host's own address for the node that shares that address with
// another, and destroy leaves no key of it behind.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'
import {openStore} from '../src/store/open.js'
import {startMetad, stopAllMetad, type MetadProcess} from './support/metad.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, registeredNodes, shoal, type Registry} from './support/shoal-cli.js'

const NAME = 'tok'
/** A create and a destroy on a sandbox host: minutes on this shared 2-core machine when it is busy. */
const SLOW = 300_000
let sandbox: TestSandbox | undefined
let registry: Registry | undefined
let metad: MetadProcess | undefined
let dir: string | undefined

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(1)
  registry = embeddedRegistry()
  dir = mkdtempSync(path.join(tmpdir(), 'shoal-metad-token-'))
  writeFileSync(path.join(dir, 'conf.liquid'), 'node={{ self.node_id }}\n')
  writeFileSync(
    path.join(dir, 'cluster.yaml'),
    `apiVersion: shoal/v1
kind: Cluster
name: ${NAME}
roles:
  a:
    image: debian-12
    cpu: 1
    memory: 64Mi
    disk: 64Mi
    count: 2
    placement: {max_per_host: 2}
    files:
      - {template: conf.liquid, dest: conf/node.conf}
    services:
      start: {cmd: "true"}
`,
  )
}, SLOW)
afterAll(async () => {
  await stopAllMetad()
  await sandbox?.stop()
  registry?.dispose()
  if (dir) rmSync(dir, {recursive: true, force: true})
})

const run = async (...args: string[]): Promise<void> => {
  const result = await shoal([...args, ...registry!.flags])
  expect(result.code, describeResult(result)).toBe(0)
}

/** GET from inside a sandbox host's own network namespace, so the request comes from the host's own address. */
function askFromHost(netns: string, url: string, token?: string): {status: number; body: string} {
  const result = spawnSync('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '30', '-w', '\\n%{http_code}', ...(token ? ['-H', `X-Shoal-Token: ${token}`] : []), url], {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`curl ${url} in ${netns} exited ${String(result.status)}: ${result.stderr}`)
  const newline = result.stdout.lastIndexOf('\n')
  return {status: Number(result.stdout.slice(newline + 1)), body: result.stdout.slice(0, newline)}
}

it('places a token in each node home at create that proves the node to metad on a shared address', async () => {
  await run('create', path.join(dir!, 'cluster.yaml'), '--hosts', sandbox!.state.inventory)
  const host = sandbox!.state.hosts[0]!
  const srv = path.join(host.dir, 'srv')
  const nodes = await registeredNodes(registry!, NAME, 'a')
  expect(nodes.map((n) => n.ip)).toEqual([host.address, host.address])
  // Where the hosts reach the machine: the sandbox's gateway address.
  metad = await startMetad(registry!.flags, [], undefined, sandbox!.state.network!.gateway)
  const bare = askFromHost(host.netns!, `${metad.url}/self`)
  expect([bare.status, JSON.parse(bare.body)]).toMatchObject([409, {error: {code: 'ambiguous-node'}}])
  const tokens = new Set<string>()
  for (const node of nodes) {
    const file = path.join(srv, 'shoal', NAME, node.node_id, '.shoal', 'token')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const token = readFileSync(file, 'utf8').trim()
    tokens.add(token)
    const answer = askFromHost(host.netns!, `${metad.url}/self/host/node_id?node=${node.node_id}`, token)
    expect([answer.status, JSON.parse(answer.body)]).toEqual([200, node.node_id])
  }
  expect(tokens.size).toBe(2)
  const [first, second] = nodes
  const borrowed = readFileSync(path.join(srv, 'shoal', NAME, second!.node_id, '.shoal', 'token'), 'utf8').trim()
  expect(askFromHost(host.netns!, `${metad.url}/self?node=${first!.node_id}`, borrowed).status).toBe(403)
}, SLOW)

it('leaves nothing of the token key in the registry after destroy', async () => {
  await run('destroy', NAME, '--yes')
  const store = await openStore({...registry!.store, env: {}})
  try {
    expect((await store.range('')).kvs.map((kv) => kv.key)).toEqual([])
  } finally {
    await store.close()
  }
}, SLOW)
