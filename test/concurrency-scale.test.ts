// 20 `shoal scale --add 1` processes released at the same moment against one cluster, on both registries: with
// --lock-wait they queue and all land (distinct new sids, nothing lost); without it the losers fail naming the holder.
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {eventually} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'
import {
  assertCliBuilt,
  describeResult,
  embeddedRegistry,
  etcdRegistry,
  readRegistered,
  shoal,
  spawnShoal,
  type CliResult,
  type RegisteredCluster,
  type Registry,
  type RegistryKind,
} from './support/shoal-cli.js'
import {memberLines, ROLE, writeTmpCluster, type TmpCluster} from './support/tmp-cluster.js'

const PROCESSES = 20
const INITIAL = 3

let etcd: EtcdCluster | undefined
beforeAll(async () => {
  assertCliBuilt()
  etcd = await startEtcd()
})
afterAll(async () => {
  await etcd?.stop()
})

/** Start PROCESSES scale commands held at a start gate, wait until every one has loaded, then release them together. */
async function raceScale(registry: Registry, cluster: TmpCluster, extra: string[]): Promise<CliResult[]> {
  const gateDir = mkdtempSync(path.join(tmpdir(), 'shoal-gate-'))
  try {
    const gate = path.join(gateDir, 'go')
    const runs = Array.from({length: PROCESSES}, () =>
      spawnShoal(['scale', cluster.name, '--role', ROLE, '--add', '1', '--hosts', cluster.hosts, '--registry-only', ...extra, ...registry.flags], {gate}),
    )
    await eventually(`all ${PROCESSES} processes to reach the start gate`, async () => readdirSync(gateDir).filter(f => f.startsWith('ready.')).length === PROCESSES, 60_000, 20)
    writeFileSync(gate, '')
    return await Promise.all(runs.map(r => r.exited))
  } finally {
    rmSync(gateDir, {recursive: true, force: true})
  }
}

/** The invariants after any number of completed scale-outs: ids as allocated one by one, every file lists everyone. */
function expectConsistent(after: RegisteredCluster, before: RegisteredCluster, added: number): void {
  const total = INITIAL + added
  expect(after.nodes.map(n => n.sid)).toEqual(Array.from({length: total}, (_, i) => i + 1))
  expect(after.nodes.map(n => n.node_id).sort()).toEqual(Array.from({length: total}, (_, i) => `${before.nodes[0]!.node_id.replace(/-\d+$/, '')}-${i + 1}`).sort())
  expect(after.nodes.slice(0, INITIAL)).toEqual(before.nodes)
  expect(new Set(after.nodes.map(n => n.ip)).size).toBe(total)
  expect(after.nodes.every(n => n.state === 'active')).toBe(true)
  expect(after.revision).toBe(String(1 + added))
  // No operation left half-done: no joining/leaving markers, no pending multi-transaction record.
  expect(after.sections).toEqual(['cluster', 'env', 'env-source', 'files', 'hosts', 'ids'])
  const everyone = after.nodes.map(n => `${n.sid}=${n.ip}`)
  expect(Object.keys(after.files).sort()).toEqual(after.nodes.map(n => n.node_id).sort())
  for (const [node, files] of Object.entries(after.files)) expect(memberLines(files['conf/members.cfg'] ?? ''), node).toEqual(everyone)
}

describe.each<RegistryKind>(['embedded', 'etcd'])('20 simultaneous scale-outs on the %s registry', (kind) => {
  const cleanup: Array<() => void> = []
  afterEach(() => {
    for (const dispose of cleanup.splice(0)) dispose()
  })

  async function registered(name: string): Promise<{registry: Registry; cluster: TmpCluster; before: RegisteredCluster}> {
    const registry = kind === 'embedded' ? embeddedRegistry() : etcdRegistry(etcd!.endpoints)
    const cluster = writeTmpCluster({name, count: INITIAL, max: 40, upperBound: 255, hosts: 30})
    cleanup.push(() => registry.dispose(), () => cluster.dispose())
    const created = await shoal(['apply', cluster.spec, '--hosts', cluster.hosts, '--registry-only', ...registry.flags])
    expect(created.code, describeResult(created)).toBe(0)
    return {registry, cluster, before: await readRegistered(registry, name)}
  }

  it('with --lock-wait every process waits its turn: 20 new nodes with 20 distinct new sids, none lost', async () => {
    const {registry, cluster, before} = await registered('race')
    const results = await raceScale(registry, cluster, ['--lock-wait', '120s'])
    for (const r of results) expect(r.code, describeResult(r)).toBe(0)
    // Each process committed its own revision: 2..21, each once.
    const revisions = results.map(r => Number(/Registered race at revision (\d+)/.exec(r.stdout)?.[1])).sort((a, b) => a - b)
    expect(revisions).toEqual(Array.from({length: PROCESSES}, (_, i) => i + 2))
    expectConsistent(await readRegistered(registry, 'race'), before, PROCESSES)
  })

  it('without --lock-wait the losers fail naming the holder, and every winner’s node is registered whole', async () => {
    const {registry, cluster, before} = await registered('nowait')
    const results = await raceScale(registry, cluster, [])
    const winners = results.filter(r => r.code === 0)
    const losers = results.filter(r => r.code !== 0)
    expect(winners.length).toBeGreaterThan(0)
    expect(losers.length, 'released together, some must find the cluster locked').toBeGreaterThan(0)
    for (const r of losers) {
      expect(r.code, describeResult(r)).toBe(1)
      expect(r.stderr).toMatch(/^shoal: cluster nowait is locked by \S+ pid \d+, running "scale zk \(add 1\)" since \S+\. .*shoal unlock nowait --force --id [0-9a-f-]{36}\n$/)
    }
    expectConsistent(await readRegistered(registry, 'nowait'), before, winners.length)
  })
})
