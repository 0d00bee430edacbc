// Scaling under load (issue 14): an example scaled through shoal on sandbox hosts while a steady stream of real client
// operations runs against it, and what those clients saw during each scale.
import {describeLoad, httpGet, Load, type LoadReport} from '../test/support/load.js'
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
}

const LIMIT_MS = 300_000

/** HAProxy (specs/haproxy.yaml) in front of web 2 → 4 → 1, with HTTP GETs through the lb all along. */
export async function benchHaproxyScaling(): Promise<ScalingRow[]> {
  const sandbox = await startSandbox(4)
  const registry = embeddedRegistry()
  const [webPort, lbPort] = freeServicePorts(2)
  const copy = exampleSpec('haproxy', {web_port: webPort!, lb_port: lbPort!})
  const cli = async (...args: string[]): Promise<void> => {
    const result = await shoal([...args, ...registry.flags], {limitMs: LIMIT_MS})
    if (result.code !== 0) throw new Error(`shoal ${args.join(' ')}: ${describeResult(result)}`)
  }
  const rows: ScalingRow[] = []
  try {
    await cli('create', copy.spec, '--hosts', sandbox.state.inventory)
    const lb = (await registeredNodes(registry, 'web-lb', 'lb'))[0]!
    for (const count of [4, 1]) {
      const clients = 4
      const pauseMs = 20
      const load = new Load(() => httpGet(lb.ip, lbPort!).then(() => undefined), {clients, pauseMs}).start()
      // A quiet second before and after the scale, so the clients' edges are not the scale's.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const started = performance.now()
      try {
        await cli('scale', 'web-lb', '--role', 'web', '--count', String(count))
      } catch (error) {
        await load.stop()
        throw error
      }
      const scaleMs = performance.now() - started
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const report = await load.stop()
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

export function printScaling(rows: readonly ScalingRow[]): void {
  for (const row of rows) {
    console.log(`${row.example} ${row.change} (scale ${(row.scaleMs / 1000).toFixed(1)} s; ${row.clients}): ${describeLoad(row.report)}`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printScaling(await benchHaproxyScaling())
}
