// Scaling under load (issue 14): an example scaled through shoal on sandbox hosts while a steady stream of real client
// operations runs against it, and what those clients saw during each scale.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {freePort} from '../test/support/etcd.js'
import {describeLoad, during, httpGet, Load, type LoadReport} from '../test/support/load.js'
import {readAllItems, writeItems} from '../test/support/mariadb-load.js'
import {startMetad} from '../test/support/metad.js'
import {exampleSpec, freeServicePorts, zkMode, type SpecCopy} from '../test/support/real-services.js'
import {RedisLoadClient} from '../test/support/redis-load.js'
import {startSandbox, type TestSandbox} from '../test/support/sandbox.js'
import {describeResult, embeddedRegistry, registeredNodes, shoal, type Registry} from '../test/support/shoal-cli.js'
import {ZooKeeperLoadClient} from '../test/support/zookeeper-load.js'

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

interface Bench {
  sandbox: TestSandbox
  registry: Registry
  /** shoal with the bench's registry, failing with the command's output. */
  cli: (...args: string[]) => Promise<void>
}

/** Runs `bench` on a fresh sandbox of `hosts` and an embedded registry; removes them and the spec copies afterwards. */
async function onSandbox<T>(hosts: number, copies: readonly SpecCopy[], bench: (on: Bench) => Promise<T>): Promise<T> {
  const sandbox = await startSandbox(hosts)
  const registry = embeddedRegistry()
  const cli = async (...args: string[]): Promise<void> => {
    const result = await shoal([...args, ...registry.flags], {limitMs: LIMIT_MS})
    if (result.code !== 0) throw new Error(`shoal ${args.join(' ')}: ${describeResult(result)}`)
  }
  try {
    return await bench({sandbox, registry, cli})
  } finally {
    await sandbox.stop()
    registry.dispose()
    for (const copy of copies) copy.dispose()
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
  const [webPort, lbPort] = freeServicePorts(2)
  const copy = exampleSpec('haproxy', {web_port: webPort!, lb_port: lbPort!})
  return onSandbox(4, [copy], async ({sandbox, registry, cli}) => {
    const rows: ScalingRow[] = []
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
    return rows
  })
}

/** Redis Cluster (specs/redis-cluster.yaml) 3 → 4 → 3 masters, with SETs and GETs through ioredis's cluster client. */
export async function benchRedisScaling(): Promise<ScalingRow[]> {
  const [port] = freeServicePorts(1, {alsoPlus: 10000})
  const copy = exampleSpec('redis-cluster', {port: port!})
  return onSandbox(4, [copy], async ({sandbox, registry, cli}) => {
    const rows: ScalingRow[] = []
    await cli('create', copy.spec, '--hosts', sandbox.state.inventory)
    const client = new RedisLoadClient((await registeredNodes(registry, 'redis-main', 'redis')).map((n) => ({host: n.ip, port: port!})))
    try {
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
    } finally {
      await client.close()
    }
    await cli('destroy', 'redis-main', '--yes')
    return rows
  })
}

/**
 * MariaDB (specs/mariadb.yaml) replicas 1 → 3 → 1 behind the linked proxy with agents (specs/mariadb-proxy.yaml), with
 * reads through the proxy all along, each required to see every row written before.
 */
export async function benchMariadbScaling(): Promise<ScalingRow[]> {
  const [port, writePort, readPort] = freeServicePorts(3)
  const db = exampleSpec('mariadb', {port: port!})
  const proxy = exampleSpec('mariadb-proxy', {write_port: writePort!, read_port: readPort!})
  const secrets = mkdtempSync(path.join(tmpdir(), 'shoal-bench-mariadb-'))
  const password = 'bench-App-3k9v'
  writeFileSync(path.join(secrets, 'app'), password)
  writeFileSync(path.join(secrets, 'repl'), 'bench-Repl-7w2n')
  const ROWS = 1000
  try {
    return await onSandbox(5, [db, proxy], async ({sandbox, registry, cli}) => {
      const metad = await startMetad(registry.flags, [], await freePort(), sandbox.state.network!.gateway)
      try {
        const rows: ScalingRow[] = []
        await cli('create', db.spec, '--hosts', sandbox.state.inventory, '--set-file', `app_password=${path.join(secrets, 'app')}`, '--set-file', `repl_password=${path.join(secrets, 'repl')}`)
        await cli('create', proxy.spec, '--hosts', sandbox.state.inventory, '--metad', metad.url)
        const host = (await registeredNodes(registry, 'db-proxy', 'proxy'))[0]!.ip
        const login = {host, user: 'app', password, database: 'app'}
        await writeItems({...login, port: writePort!}, ROWS)
        const read = readAllItems(async () => ({...login, port: readPort!}), ROWS)
        // The one replica has caught up before the scale begins.
        for (let tries = 0; ; tries++) {
          try {
            await read()
            break
          } catch (error) {
            if (tries > 100) throw error
            await new Promise((resolve) => setTimeout(resolve, 200))
          }
        }
        for (const count of [3, 1]) {
          const clients = 3
          const pauseMs = 20
          const {report, scaleMs} = await scaleUnder(new Load(read, {clients, pauseMs}), () => cli('scale', 'db-main', '--role', 'replica', '--count', String(count)))
          rows.push({example: 'mariadb + proxy (agents)', change: `replicas ${count === 3 ? '1 → 3' : '3 → 1'}`, report, scaleMs,
            clients: `${clients} clients through the proxy's read port, a connection and a read of all ${ROWS} rows every ${pauseMs} ms each`})
        }
        await cli('destroy', 'db-proxy', '--yes')
        await cli('destroy', 'db-main', '--yes')
        return rows
      } finally {
        await metad.stop()
      }
    })
  } finally {
    rmSync(secrets, {recursive: true, force: true})
  }
}

/** A bench-only password for the example's secret parameter. */
const ZK_SUPER_PASSWORD = 'bench-zookeeper-super-password'

/**
 * ZooKeeper (specs/zookeeper.yaml) 3 → 5 → 3 members, then 3 → 4 and the leader itself removed, with one session's
 * clients writing and reading znodes.
 */
export async function benchZookeeperScaling(): Promise<ScalingRow[]> {
  const [client, peer, election] = freeServicePorts(3)
  const copy = exampleSpec('zookeeper', {client_port: client!, peer_port: peer!, election_port: election!, heap: '128m'})
  return onSandbox(5, [copy], async ({sandbox, registry, cli}) => {
    const rows: ScalingRow[] = []
    await cli('create', copy.spec, '--hosts', sandbox.state.inventory, '--set', `super_password=${ZK_SUPER_PASSWORD}`)
    const zk = new ZooKeeperLoadClient((await registeredNodes(registry, 'zk-main', 'zk')).map((n) => ({host: n.ip, port: client!})))
    try {
      const clients = 4
      await zk.connect(clients)
      const scaleRow = async (change: string, args: string[]): Promise<void> => {
        const pauseMs = 20
        const statesBefore = zk.states.length
        const {report, scaleMs} = await scaleUnder(new Load(zk.operation, {clients, pauseMs}), () => cli('scale', 'zk-main', '--role', 'zk', ...args))
        const kept = (await zk.values(clients)).filter((v) => v !== '').length
        rows.push({example: 'zookeeper (dynamic reconfiguration)', change, report, scaleMs,
          clients: `${clients} clients on one session (connect string: the 3 first members), a setData and a getData every ${pauseMs} ms each`,
          notes: `${kept} of ${clients} znodes kept; session states during the scale: ${zk.states.slice(statesBefore).join(', ') || 'none'}`})
      }
      await scaleRow('members 3 → 5', ['--count', '5'])
      await scaleRow('members 5 → 3', ['--count', '3'])
      // The case the default choice of leaving members (highest sids) avoids: the leader itself leaves.
      await cli('scale', 'zk-main', '--role', 'zk', '--count', '4')
      const nodes = await registeredNodes(registry, 'zk-main', 'zk')
      const modes = await Promise.all(nodes.map((n) => zkMode(n.ip, client!)))
      const leader = nodes[modes.indexOf('leader')]
      if (!leader) throw new Error(`no leader among ${modes.join(', ')}`)
      await scaleRow(`members 4 → 3, the leader (${leader.node_id}) removed`, ['--remove', leader.node_id])
    } finally {
      zk.close()
    }
    await cli('destroy', 'zk-main', '--yes')
    return rows
  })
}

export function printScaling(rows: readonly ScalingRow[]): void {
  for (const row of rows) {
    console.log(`${row.example} ${row.change} (scale ${(row.scaleMs / 1000).toFixed(1)} s; ${row.clients}): ${describeLoad(row.report)}${row.notes ? `; ${row.notes}` : ''}`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.argv[2]
  const benches = {haproxy: benchHaproxyScaling, redis: benchRedisScaling, mariadb: benchMariadbScaling, zookeeper: benchZookeeperScaling}
  for (const [name, bench] of Object.entries(benches)) if (!only || only === name) printScaling(await bench())
}
