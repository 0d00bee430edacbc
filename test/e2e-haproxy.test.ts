// The HAProxy example end to end: `shoal create/scale/destroy` of specs/haproxy.yaml running Debian's haproxy in front
// of python3 web nodes on sandbox hosts. Requests through the load balancer reach exactly the current web nodes as
// the pool goes 2 → 4 → 1 — with not one failed request while it scales (issue 14) — and destroy leaves nothing.
import {request} from 'node:http'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {eventually} from './support/children.js'
import {describeLoad, during, httpGet, Load, type LoadReport} from './support/load.js'
import {exampleSpec, freeServicePorts, leftUnderSrvShoal, registryKeys, sandboxProcesses, type SpecCopy} from './support/real-services.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, registeredNodes, shoal, type CliResult, type Registry} from './support/shoal-cli.js'

const CLUSTER = 'web-lb'
const HOSTS = 4
/** Requests per sample: with round robin over at most 4 backends, every backend in rotation answers several times. */
const REQUESTS = 24
const OPERATION_MS = 240_000
/** HAProxy marks a joining server up after its first passing check (inter 2s); allow a loaded machine much longer. */
const SETTLE_MS = 60_000

let sandbox: TestSandbox
let copy: SpecCopy
let registry: Registry
let lbPort: number

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(HOSTS)
  const [web, lb] = freeServicePorts(2)
  lbPort = lb!
  copy = exampleSpec('haproxy', {web_port: web!, lb_port: lb!})
  registry = embeddedRegistry()
})

afterAll(async () => {
  if (registry && (await registeredNodes(registry, CLUSTER, 'lb').catch(() => [])).length > 0) await cli('destroy', CLUSTER, '--yes')
  registry?.dispose()
  await sandbox?.stop()
  copy?.dispose()
}, OPERATION_MS)

function cli(...args: string[]): Promise<CliResult> {
  return shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
}

function expectOk(result: CliResult): void {
  expect(result.code, describeResult(result)).toBe(0)
}

/** One GET through the load balancer: the status and the node named by the page's title ('' when none). */
function get(ip: string): Promise<{status: number; node: string}> {
  return new Promise((resolve) => {
    // agent: false — a fresh connection per request, so HAProxy balances every request anew.
    const req = request({host: ip, port: lbPort, path: '/', agent: false, timeout: 5000}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({status: res.statusCode ?? 0, node: /<title>([^<]*)<\/title>/.exec(body)?.[1] ?? ''}))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', () => resolve({status: 0, node: ''}))
    req.end()
  })
}

/** What REQUESTS requests through the lb reached: the sorted set of node names and every status seen. */
async function sample(ip: string): Promise<{nodes: string[]; statuses: number[]}> {
  const nodes = new Set<string>()
  const statuses = new Set<number>()
  for (let i = 0; i < REQUESTS; i++) {
    const answer = await get(ip)
    statuses.add(answer.status)
    if (answer.node) nodes.add(answer.node)
  }
  return {nodes: [...nodes].sort(), statuses: [...statuses].sort()}
}

/** Wait (bounded) until every request through the lb answers 200 from exactly `expected`; returns the last sample. */
async function servedBy(expected: string[]): Promise<{nodes: string[]; statuses: number[]}> {
  const lb = (await registeredNodes(registry, CLUSTER, 'lb'))[0]!
  let last = {nodes: [] as string[], statuses: [] as number[]}
  await eventually(() => `requests through the lb served by ${expected.join(', ')} (last seen: ${JSON.stringify(last)})`, async () => {
    last = await sample(lb.ip)
    return JSON.stringify(last) === JSON.stringify({nodes: [...expected].sort(), statuses: [200]})
  }, SETTLE_MS, 1000)
  return last
}

/** Runs `change` under a steady stream of requests through the lb (4 clients, a request every 20 ms each). */
async function underLoad(change: () => Promise<void>): Promise<LoadReport> {
  const lb = (await registeredNodes(registry, CLUSTER, 'lb'))[0]!
  return during(new Load(() => httpGet(lb.ip, lbPort).then(() => undefined), {clients: 4, pauseMs: 20}), change)
}

const webIds = (...sids: number[]): string[] => sids.map((sid) => `${CLUSTER}-web-${sid}`)
const servicesInSandbox = (): string[] => sandboxProcesses(sandbox, /haproxy|http\.server/)

describe('HAProxy in front of web 2 → 4 → 1 through shoal (embedded registry)', () => {
  it('create: requests through the lb reach both web nodes and nothing else', async () => {
    expectOk(await cli('create', copy.spec, '--hosts', sandbox.state.inventory))
    expect((await registeredNodes(registry, CLUSTER, 'web')).map((n) => n.node_id)).toEqual(webIds(1, 2))
    expect(await servedBy(webIds(1, 2))).toEqual({nodes: webIds(1, 2), statuses: [200]})
  }, OPERATION_MS)

  it('scale web --count 4 under steady requests: not one fails; the lb reloads with four servers and requests reach all four', async () => {
    const report = await underLoad(async () => expectOk(await cli('scale', CLUSTER, '--role', 'web', '--count', '4')))
    expect(report.failed, describeLoad(report)).toBe(0)
    expect(report.operations).toBeGreaterThan(0)
    expect((await registeredNodes(registry, CLUSTER, 'web')).map((n) => n.node_id)).toEqual(webIds(1, 2, 3, 4))
    expect(await servedBy(webIds(1, 2, 3, 4))).toEqual({nodes: webIds(1, 2, 3, 4), statuses: [200]})
  }, OPERATION_MS)

  it('scale web --count 1 under steady requests: not one fails; the highest sids leave; every request reaches the one that stays', async () => {
    const report = await underLoad(async () => expectOk(await cli('scale', CLUSTER, '--role', 'web', '--count', '1')))
    expect(report.failed, describeLoad(report)).toBe(0)
    expect((await registeredNodes(registry, CLUSTER, 'web')).map((n) => n.node_id)).toEqual(webIds(1))
    // The lb dropped the leaving servers before they stopped: nothing to wait for.
    const lb = (await registeredNodes(registry, CLUSTER, 'lb'))[0]!
    expect(await sample(lb.ip)).toEqual({nodes: webIds(1), statuses: [200]})
    expect(servicesInSandbox().filter((p) => /http\.server/.test(p))).toHaveLength(1)
  }, OPERATION_MS)

  it('destroy leaves nothing: no haproxy or web server on the hosts, /srv/shoal empty, the registry empty', async () => {
    expectOk(await cli('destroy', CLUSTER, '--yes'))
    expect(servicesInSandbox()).toEqual([])
    expect(leftUnderSrvShoal(sandbox)).toEqual([])
    expect(await registryKeys(registry)).toEqual([])
  }, OPERATION_MS)
})
