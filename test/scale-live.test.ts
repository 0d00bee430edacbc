// Scaling live clusters (issue 5) as real processes on sshd sandbox hosts, on the embedded store and on etcd: the order
// scripts run in and what each saw during scale out and in, scale bounds, --dry-run, apply of a changed spec, clusters
// that link to the scaled one following it, kill -9 mid-scale then rerun/resume, and two scales of one cluster at once.
import {readdirSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {openStore} from '../src/store/open.js'
import {eventually} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'
import {hold, membershipSeen, phases, readLog, writeFollowClusters, type FollowFixture, type LogLine} from './support/follow-clusters.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, etcdRegistry, readRegistered, shoal, spawnShoal, type CliResult, type Registry} from './support/shoal-cli.js'

let sandbox: TestSandbox
let etcd: EtcdCluster

beforeAll(async () => {
  assertCliBuilt()
  ;[sandbox, etcd] = await Promise.all([startSandbox(4), startEtcd()])
})
afterAll(async () => {
  await Promise.all([sandbox?.stop(), etcd?.stop()])
})

function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}

/** Every key, value and mod revision in the registry: a command that writes nothing leaves it identical. */
async function snapshot(registry: Registry): Promise<string[]> {
  const store = await openStore({...registry.store, env: {}})
  try {
    return (await store.range('')).kvs.map((kv) => `${kv.key}@${kv.modRevision}=${kv.value}`)
  } finally {
    await store.close()
  }
}

function lastIndex<T>(list: readonly T[], test: (item: T) => boolean): number {
  for (let i = list.length - 1; i >= 0; i--) if (test(list[i]!)) return i
  return -1
}

interface StatusJson {
  nodes: Array<{node_id: string; state: string}>
  last?: {kind: string; title: string; result: string}
  unfinished?: unknown
}

describe.each(['embedded', 'etcd'] as const)('scaling a live cluster on the %s registry', (kind) => {
  let fx: FollowFixture
  let registry: Registry
  let run: (...args: string[]) => Promise<CliResult>
  let id: (n: number) => string
  /** Log lines written since the last call, per cluster. */
  const seen = new Map<string, number>()
  const fresh = (cluster: string): LogLine[] => {
    const lines = readLog(fx.out, cluster)
    const from = seen.get(cluster) ?? 0
    seen.set(cluster, lines.length)
    return lines.slice(from)
  }
  const status = async (cluster: string): Promise<StatusJson> => {
    const result = await run('status', cluster, '--json')
    expectExit(result, 0)
    return JSON.parse(result.stdout) as StatusJson
  }
  const sids = async (cluster: string): Promise<number[]> => (await readRegistered(registry, cluster)).nodes.map((n) => n.sid)

  beforeAll(async () => {
    fx = writeFollowClusters(kind)
    registry = kind === 'embedded' ? embeddedRegistry() : etcdRegistry(etcd.endpoints)
    run = (...args) => shoal([...args, ...registry.flags])
    id = (n) => `${fx.svc}-node-${n}`
    expectExit(await run('create', `${fx.dir}/svc.yaml`, '--hosts', sandbox.state.inventory), 0)
    expectExit(await run('create', `${fx.dir}/consumer.yaml`, '--hosts', sandbox.state.inventory), 0)
    expectExit(await run('create', `${fx.dir}/bystander.yaml`, '--hosts', sandbox.state.inventory), 0)
    for (const cluster of [fx.svc, fx.consumer, fx.bystander]) fresh(cluster)
  })
  afterAll(() => {
    fx?.dispose()
    registry?.dispose()
  })

  it('scale out: existing members re-render and reload → the new member inits and starts → scale_out on the existing → adding-hosts cleared and re-rendered', async () => {
    const result = await run('scale', fx.svc, '--role', 'node', '--add', '1')
    expectExit(result, 0)
    const lines = fresh(fx.svc)
    expect(phases(lines)).toEqual([
      `reload-members ${id(1)},${id(2)},${id(3)}`,
      `init ${id(4)}`,
      `start ${id(4)}`,
      `scale_out ${id(1)},${id(2)},${id(3)}`,
      `reload-members ${id(1)},${id(2)},${id(3)},${id(4)}`,
    ])
    const at = (what: string, node: string): LogLine => lines.find((l) => l.what === what && l.node === node)!
    // Existing members already list the joiner when they reload, and see it as joining.
    expect(at('reload-members', id(1))).toMatchObject({joining: id(4), leaving: '', members: '1 2 3 4', backends: '1 2 3 4 | joining 4'})
    expect(at('init', id(4))).toMatchObject({joining: id(4), members: '1 2 3 4'})
    expect(at('scale_out', id(2))).toMatchObject({joining: id(4), leaving: '', members: '1 2 3 4'})
    // Once adding-hosts is cleared, every member is re-rendered without the joining list.
    expect(lines.filter((l) => l.what === 'reload-members').slice(3).map((l) => l.backends)).toEqual(Array(4).fill('1 2 3 4 | joining'))
    expect(membershipSeen(fx.out, id(1), 'scale_out')).toEqual({before: {node: [id(1), id(2), id(3)]}, after: {node: [id(1), id(2), id(3), id(4)]}, joining: {node: [id(4)]}, leaving: {}})
    expect((await status(fx.svc)).nodes.map((n) => n.state)).toEqual(['active', 'active', 'active', 'active'])
    expect(result.stdout).toContain(`${fx.consumer} (links to ${fx.svc}): re-rendered and reloaded`)
    expect(result.stdout).toContain(`${fx.bystander} (links to ${fx.svc}): unchanged`)
  })

  it('a cluster linking to the scaled one is re-rendered and reloaded; one whose files do not change is left alone', async () => {
    const consumer = await readRegistered(registry, fx.consumer)
    const svc = await readRegistered(registry, fx.svc)
    const expected = `${svc.nodes.map((n) => `${n.ip}:7000/${n.sid}`).join(' ')} `
    for (const node of consumer.nodes) expect(consumer.files[node.node_id]!['conf/deps']).toBe(`${expected}\n`)
    expect(phases(fresh(fx.consumer))).toEqual([`reload ${fx.consumer}-c-1,${fx.consumer}-c-2`])
    expect(consumer.revision).toBe('2')
    expect((await status(fx.consumer)).last).toMatchObject({kind: 'apply', title: `apply (linked cluster ${fx.svc} changed)`, result: 'ok'})
    expect(fresh(fx.bystander)).toEqual([])
    expect((await readRegistered(registry, fx.bystander)).revision).toBe('1')
    expect((await status(fx.bystander)).last).toMatchObject({kind: 'create'})
  })

  it('--dry-run prints the plan and changes nothing: registry identical, no script ran', async () => {
    const before = await snapshot(registry)
    const result = await run('scale', fx.svc, '--role', 'node', '--add', '1', '--dry-run')
    expectExit(result, 0)
    expect(result.stdout).toMatch(/Plan: scale cluster/)
    expect(result.stdout).toContain(id(5))
    expect(await snapshot(registry)).toEqual(before)
    expect([fresh(fx.svc), fresh(fx.consumer)]).toEqual([[], []])
  })

  it('a count outside the role\'s scale bounds is refused with the bounds named; nothing changes', async () => {
    const before = await snapshot(registry)
    const result = await run('scale', fx.svc, '--role', 'node', '--count', '6')
    expectExit(result, 1)
    expect(result.stderr).toMatch(/\[scale-bounds\] role node: count 6 is outside its scale bounds \[1, 5\] \(roles\.node\.scale\)/)
    expect(await snapshot(registry)).toEqual(before)
    expect(fresh(fx.svc)).toEqual([])
  })

  it('scale in of a named node: it is dropped from the rest\'s files → scale_in on the rest → it stops and is destroyed → removed and re-rendered', async () => {
    const result = await run('scale', fx.svc, '--role', 'node', '--remove', id(2))
    expectExit(result, 0)
    const lines = fresh(fx.svc)
    expect(phases(lines)).toEqual([
      `reload-members ${id(1)},${id(3)},${id(4)}`,
      `scale_in ${id(1)},${id(3)},${id(4)}`,
      `stop ${id(2)}`,
      `destroy ${id(2)}`,
      `reload-members ${id(1)},${id(3)},${id(4)}`,
    ])
    const scaleIn = lines.find((l) => l.what === 'scale_in' && l.node === id(1))!
    // While it leaves it is still a member (in hosts, and in deleting-hosts), but no longer a backend.
    expect(scaleIn).toMatchObject({joining: '', leaving: id(2), members: '1 2 3 4', backends: '1 3 4 | joining'})
    expect(lines.find((l) => l.what === 'stop')).toMatchObject({node: id(2), leaving: id(2)})
    expect(lines.at(-1)).toMatchObject({members: '1 3 4', backends: '1 3 4 | joining'})
    expect(membershipSeen(fx.out, id(3), 'scale_in')).toEqual({before: {node: [id(1), id(2), id(3), id(4)]}, after: {node: [id(1), id(3), id(4)]}, joining: {}, leaving: {node: [id(2)]}})
    expect(await sids(fx.svc)).toEqual([1, 3, 4])
    expect(readdirSync(fx.out).some((f) => f.startsWith('hold-'))).toBe(false)
    expect(phases(fresh(fx.consumer))).toEqual([`reload ${fx.consumer}-c-1,${fx.consumer}-c-2`])
  })

  it('kill -9 mid scale-in; a second scale meanwhile is refused naming the holder; shoal resume converges and the consumer follows', {timeout: 180_000}, async () => {
    hold(fx.out, 'scale_in', true)
    const first = spawnShoal(['scale', fx.svc, '--role', 'node', '--count', '2', ...registry.flags])
    try {
      await eventually('a new scale_in line in the service log', async () => readLog(fx.out, fx.svc).some((l, i) => i >= (seen.get(fx.svc) ?? 0) && l.what === 'scale_in'), 60_000)
      const second = await run('scale', fx.svc, '--role', 'node', '--add', '1')
      expectExit(second, 1)
      expect(second.stderr).toMatch(new RegExp(`cluster ${fx.svc} is locked by .* running "scale node \\(count 2\\)"`))
      first.child.kill('SIGKILL')
      expect((await first.exited).signal).toBe('SIGKILL')
    } finally {
      hold(fx.out, 'scale_in', false)
    }
    // Not converged yet: the leaving node is still registered, the operation unfinished.
    expect(await sids(fx.svc)).toEqual([1, 3, 4])
    const resumed = await run('resume', fx.svc, '--lock-wait', '60s')
    expectExit(resumed, 0)
    expect(resumed.stdout).toMatch(/scale node \(count 2\) of .* finished \(resumed\)/)
    expect(resumed.stdout).toContain(`${fx.consumer} (links to ${fx.svc}): re-rendered and reloaded`)
    const lines = fresh(fx.svc)
    expect(lines.filter((l) => l.what === 'stop' || l.what === 'destroy').map((l) => `${l.what} ${l.node}`)).toEqual([`stop ${id(4)}`, `destroy ${id(4)}`])
    expect(await sids(fx.svc)).toEqual([1, 3])
    expect((await status(fx.svc)).unfinished).toBeUndefined()
    expect(phases(fresh(fx.consumer))).toEqual([`reload ${fx.consumer}-c-1,${fx.consumer}-c-2`])
  })

  it('apply of a changed spec (env default and count) reloads only the files that changed and adds nodes, titled apply', async () => {
    const result = await run('apply', fx.variant({port: 7001, count: 4}), '--hosts', sandbox.state.inventory)
    expectExit(result, 0)
    expect(result.stdout).toMatch(new RegExp(`^apply of ${fx.svc} finished`, 'm'))
    const lines = fresh(fx.svc)
    // The port is in the bootstrap node's file only; the member list changes on every member.
    expect(lines.filter((l) => l.what === 'reload-boot').map((l) => l.node)).toEqual([id(1)])
    expect(lines.filter((l) => l.what === 'reload-members' && l.backends === '1 3 5 6 | joining 5 6').map((l) => l.node).sort()).toEqual([id(1), id(3)])
    expect(lines.filter((l) => l.what === 'init').map((l) => l.node).sort()).toEqual([id(5), id(6)])
    expect(lines.filter((l) => l.what === 'start').map((l) => l.node)).toEqual([id(5), id(6)])
    expect(lines.findIndex((l) => l.what === 'init')).toBeGreaterThan(lastIndex(lines, (l) => l.what === 'reload-boot'))
    expect(await sids(fx.svc)).toEqual([1, 3, 5, 6])
    expect((await status(fx.svc)).last).toMatchObject({kind: 'apply', title: 'apply', result: 'ok'})
    // The consumer reads the port too.
    const consumer = await readRegistered(registry, fx.consumer)
    expect(consumer.files[`${fx.consumer}-c-1`]!['conf/deps']).toMatch(/^(\S+:7001\/\d+ ){4}\n$/)
    expect(phases(fresh(fx.consumer))).toEqual([`reload ${fx.consumer}-c-1,${fx.consumer}-c-2`])
    const again = await run('apply', fx.variant({port: 7001, count: 4}), '--hosts', sandbox.state.inventory)
    expectExit(again, 0)
    expect(again.stdout).toMatch(/nothing to do/)
    expect([fresh(fx.svc), fresh(fx.consumer)]).toEqual([[], []])
  })

  it('kill -9 while the new node starts; rerunning the same command fixes it forward: init ran once, the begun start again, the consumer follows', {timeout: 180_000}, async () => {
    hold(fx.out, 'start', true)
    const first = spawnShoal(['scale', fx.svc, '--role', 'node', '--count', '5', ...registry.flags])
    try {
      await eventually(`the start of ${id(7)} in the service log`, async () => readLog(fx.out, fx.svc).some((l) => l.what === 'start' && l.node === id(7)), 60_000)
      first.child.kill('SIGKILL')
      await first.exited
    } finally {
      hold(fx.out, 'start', false)
    }
    const again = await run('scale', fx.svc, '--role', 'node', '--count', '5', '--lock-wait', '60s')
    expectExit(again, 0)
    // Planned from what stands (issue 9), not the recorded plan resumed: the killed operation is recorded as superseded.
    expect(again.stdout).toMatch(/finished: \d+ steps? run/)
    const history = await run('logs', fx.svc, '--list')
    expectExit(history, 0)
    expect(history.stdout).toMatch(/ scale node \(count 5\) \(superseded by /)
    const lines = fresh(fx.svc)
    expect(lines.filter((l) => l.what === 'init').map((l) => l.node)).toEqual([id(7)])
    // start was running when shoal died: it runs again (start scripts must be idempotent), then scale_out once each.
    expect(lines.filter((l) => l.what === 'start').map((l) => l.node)).toEqual([id(7), id(7)])
    expect(lines.filter((l) => l.what === 'scale_out').map((l) => l.node).sort()).toEqual([id(1), id(3), id(5), id(6)])
    expect(await sids(fx.svc)).toEqual([1, 3, 5, 6, 7])
    expect((await status(fx.svc)).nodes.every((n) => n.state === 'active')).toBe(true)
    expect(phases(fresh(fx.consumer))).toEqual([`reload ${fx.consumer}-c-1,${fx.consumer}-c-2`])
  })

  it('two scales of one cluster at once with --lock-wait: the second waits for the first and then plans from its result', {timeout: 180_000}, async () => {
    hold(fx.out, 'scale_in', true)
    const first = spawnShoal(['scale', fx.svc, '--role', 'node', '--remove', id(3), ...registry.flags])
    let second: ReturnType<typeof spawnShoal> | undefined
    try {
      await eventually('a new scale_in line in the service log', async () => readLog(fx.out, fx.svc).some((l, i) => i >= (seen.get(fx.svc) ?? 0) && l.what === 'scale_in'), 60_000)
      second = spawnShoal(['scale', fx.svc, '--role', 'node', '--count', '3', '--lock-wait', '60s', ...registry.flags])
      // Give the second a moment to reach the lock while the first still holds it (the checks below hold either way).
      await new Promise((resolve) => setTimeout(resolve, 1500))
    } finally {
      hold(fx.out, 'scale_in', false)
    }
    const [a, b] = await Promise.all([first.exited, second!.exited])
    expectExit(a, 0)
    expectExit(b, 0)
    const lines = fresh(fx.svc)
    const stops = lines.filter((l) => l.what === 'stop').map((l) => l.node)
    // The first removes sid 3; the second then removes the highest sid of what is left (7).
    expect(stops).toEqual([id(3), id(7)])
    // Nothing of the second ran before the first was done.
    expect(lastIndex(lines, (l) => l.leaving === id(3))).toBeLessThan(lines.findIndex((l) => l.leaving === id(7)))
    expect(b.stdout).toMatch(/scale node \(count 3\) of .* finished: /)
    expect(await sids(fx.svc)).toEqual([1, 5, 6])
  })
})
