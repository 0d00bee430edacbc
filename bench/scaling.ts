// Scaling under load (issue 14): an example scaled through shoal on sandbox hosts while a steady stream of real client
// operations runs against it, and what those clients saw during each scale.
import {describeLoad, during, httpGet, Load, type LoadReport} from '../test/support/load.js'
import {RedisLoadClient} from '../test/support/redis-load.js'
import {exampleSpec, freeServicePorts} from '../test/support/real-services.js'
import {startSandbox} from '../test/support/sandbox.js'
import {describeResult, embeddedRegistry, registeredNodes, shoal} from '../test/support/shoal-cli.js'

export interface ScalingRow {
  example: string
  change: string
  /** How the clients ran: how many, and their pause between operations. */
  clients: string
  report: LoadReport
  /** The scale command's own wall time. */
  scaleMs: number
  /** What else the clients saw (e.g. acknowledged writes lost). */
  notes?: string
}

const LIMIT_MS = 300_000

/** A CLI bound to one registry, failing with the command's output. */
function cliOf(flags: readonly string[]): (...args: string[]) => Promise<void> {
  return async (...args) => {
    const result = await shoal([...args, ...flags], {limitMs: LIMIT_MS})
    if (result.code !== 0) throw new Error(`shoal ${args.join(' ')}: ${describeResult(result)}`)
  }
}

/** `scale` under `load`, with a quiet second before and after it so the clients' edges are not the scale's. */
async function scaleUnder(load: Load, scale: () => Promise<void>): Promise<{report: LoadReport; scaleMs: number}> {
  let scaleMs = 0
  const report = await during(load, async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const started = performance.now()
    await scale()
    scaleMs = performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, 1000))
  })
  return {report, scaleMs}
}

/** HAProxy (specs/haproxy.yaml) in front of web 2 → 4 → 1, with HTTP GETs through the lb all along. */
export async function benchHaproxyScaling(): Promise<ScalingRow[]> {
  const sandbox = await startSandbox(4)
  const registry = embeddedRegistry()
  const [webPort, lbPort] = freeServicePorts(2)
  const copy = exampleSpec('haproxy', {web_port: webPort!, lb_port: lbPort!})
  const cli = cliOf(registry.flags)
  const rows: ScalingRow[] = []
  try {
    await cli('create', copy.spec, '--hosts', sandbox.state.inventory)
    const lb = (await registeredNodes(registry, 'web-lb', 'lb'))[0]!
    for (const count of [4, 1]) {
      const clients = 4
      const pauseMs = 20
      const load = new Load(() => httpGet(lb.ip, lbPort!).then(() => undefined), {clients, pauseMs})
      const {report, scaleMs} = await scaleUnder(load, () => cli('scale', 'web-lb', '--role', 'web', '--count', String(count)))
      rows.push({example: 'haproxy', change: `web ${count === 4 ? '2 → 4' : '4 → 1'}`, clients: `${clients} HTTP clients, a GET through the lb every ${pauseMs} ms each, a new connection per GET`, report, scaleMs})
    }
    await cli('destroy', 'web-lb', '--yes')
  } finally {
    await sandbox.stop()
    registry.dispose()
    copy.dispose()
  }
  return rows
}

/** Redis Cluster (specs/redis-cluster.yaml) 3 → 4 → 3 masters, with SETs and GETs through ioredis's cluster client. */
export async function benchRedisScaling(): Promise<ScalingRow[]> {
  const sandbox = await startSandbox(4)
  const registry = embeddedRegistry()
  const [port] = freeServicePorts(1, {alsoPlus: 10000})
  const copy = exampleSpec('redis-cluster', {port: port!})
  const cli = cliOf(registry.flags)
  const rows: ScalingRow[] = []
  let client: RedisLoadClient | undefined
  try {
    await cli('create', copy.spec, '--hosts', sandbox.state.inventory)
    client = new RedisLoadClient((await registeredNodes(registry, 'redis-main', 'redis')).map((n) => ({host: n.ip, port: port!})))
    await client.connect()
    for (const count of [4, 3]) {
      const clients = 4
      const pauseMs = 10
      const {report, scaleMs} = await scaleUnder(new Load(client.operation, {clients, pauseMs}), () => cli('scale', 'redis-main', '--role', 'redis', '--count', String(count)))
      const lost = await client.lost()
      rows.push({
        example: 'redis-cluster', change: `masters ${count === 4 ? '3 → 4' : '4 → 3'}`, report, scaleMs,
        clients: `${clients} clients of one ioredis Cluster, each a SET and a GET of its own key every ${pauseMs} ms`,
        notes: `${lost.length} of ${client.keys} acknowledged keys lost${lost.length ? ` (${lost.slice(0, 3).join('; ')})` : ''}; the client's own error events so far: ${client.events.length}`,
      })
    }
    await client.close()
    client = undefined
    await cli('destroy', 'redis-main', '--yes')
  } finally {
    await client?.close()
    await sandbox.stop()
    registry.dispose()
    copy.dispose()
  }
  return rows
}

export function printScaling(rows: readonly ScalingRow[]): void {
  for (const row of rows) {
    console.log(`${row.example} ${row.change} (scale ${(row.scaleMs / 1000).toFixed(1)} s; ${row.clients}): ${describeLoad(row.report)}${row.notes ? `; ${row.notes}` : ''}`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printScaling([...await benchHaproxyScaling(), ...await benchRedisScaling()])
}
