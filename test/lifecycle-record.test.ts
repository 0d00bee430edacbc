// The executor's pure parts and its registry record, without hosts: home safety, script env, the health wait, the
// action planner, and the operation record (a plan larger than one etcd request, progress, finish) on the embedded store.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {planAction} from '../src/lifecycle/action.js'
import {assertHome} from '../src/lifecycle/execute.js'
import {waitHealthy} from '../src/lifecycle/health.js'
import {membershipOf, scriptEnv} from '../src/lifecycle/membership.js'
import {
  beginOperation, finishOperation, markNode, operationsPrefix, planParts, readCurrent, readLast, readOperationData, readProgress, requestDigest, type OperationData,
} from '../src/operation/record.js'
import type {ClusterState, Plan, PlannedNode} from '../src/plan/types.js'
import type {ClusterSpec} from '../src/spec/types.js'
import {openStore} from '../src/store/open.js'
import type {Store} from '../src/store/store.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})
async function freshStore(): Promise<Store> {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-record-'))
  dirs.push(dir)
  return openStore({state: dir})
}

function node(role: string, sid: number, change: PlannedNode['change']): PlannedNode {
  const id = `c-${role}-${sid}`
  return {
    node_id: id, role, sid, ip: `10.0.0.${sid}`, host: `h${sid}`, image: 'x', cpu: 1, memory: '1Gi', memory_bytes: 1, disk: '1Gi', disk_bytes: 1,
    bootstrap: sid === 1, home: `/srv/shoal/c/${id}`, state: 'active', change, reason: '', files: [], fileChanges: [],
  }
}

function plan(nodes: PlannedNode[], extra: Partial<Plan> = {}): Plan {
  return {cluster: 'c', operation: {kind: 'create'}, baseRevision: 0, revision: 1, specHash: 'h', nodes, desired: null, tree: [], changes: {puts: [], deletes: []}, steps: [], errors: [], secrets: [], ...extra}
}

describe('node homes', () => {
  it('accepts exactly /srv/shoal/<cluster>/<node-id>', () => {
    expect(assertHome('c', {node_id: 'c-a-1', home: '/srv/shoal/c/c-a-1'})).toBe('/srv/shoal/c/c-a-1')
  })
  it.each(['/', '/srv/shoal/c', '/srv/shoal/c/c-a-1/..', '/srv/shoal/other/c-a-1', '/srv/shoal/c/c-a-1/', '/srv/shoal/c//c-a-1'])('refuses %s', (home) => {
    expect(() => assertHome('c', {node_id: 'c-a-1', home})).toThrow(/refusing to touch it/)
  })
  it('refuses a node id that is a path', () => {
    expect(() => assertHome('c', {node_id: '..', home: '/srv/shoal/c/..'})).toThrow(/refusing/)
  })
})

describe('what scripts are told', () => {
  const p = plan([node('a', 1, 'keep'), node('a', 2, 'remove'), node('a', 3, 'create'), node('b', 1, 'keep')])
  it('membership splits nodes into before / after / joining / leaving, per role in sid order', () => {
    const m = membershipOf(p)
    const ids = (r: Record<string, Array<{node_id: string}>>): Record<string, string[]> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.map((n) => n.node_id)]))
    expect(ids(m.before)).toEqual({a: ['c-a-1', 'c-a-2'], b: ['c-b-1']})
    expect(ids(m.after)).toEqual({a: ['c-a-1', 'c-a-3'], b: ['c-b-1']})
    expect(ids(m.joining)).toEqual({a: ['c-a-3']})
    expect(ids(m.leaving)).toEqual({a: ['c-a-2']})
    expect(Object.keys(m.before.a![0]!)).not.toContain('change')
  })
  it('env names the node, the joining and leaving ids, and every env parameter', () => {
    const env = scriptEnv(p, {tick_time: 2000, 'odd-name': 'x y'}, p.nodes[2]!)
    expect(env).toMatchObject({SHOAL_NODE_ID: 'c-a-3', SHOAL_SID: '3', SHOAL_BOOTSTRAP: 'false', SHOAL_JOINING: 'c-a-3', SHOAL_LEAVING: 'c-a-2', SHOAL_ENV_TICK_TIME: '2000', SHOAL_ENV_ODD_NAME: 'x y'})
  })
})

describe('the health wait', () => {
  const ok = {exitCode: 0, signal: null, timedOut: false}
  const bad = {exitCode: 1, signal: null, timedOut: false, stderr: 'down\n'}
  it('needs healthy_threshold passes in a row', async () => {
    const answers = [ok, bad, ok, ok]
    const outcome = await waitHealthy(async () => answers.shift() ?? bad, {intervalMs: 1, timeoutMs: 1000, threshold: 2, startPeriodMs: 60_000})
    expect(outcome).toEqual({healthy: true, tries: 4})
  })
  it('gives up after start_period with the last answer', async () => {
    const outcome = await waitHealthy(async () => bad, {intervalMs: 5, timeoutMs: 1000, threshold: 1, startPeriodMs: 30})
    expect(outcome.healthy).toBe(false)
    expect(!outcome.healthy && outcome.last).toEqual(bad)
  })
})

describe('shoal run as a plan', () => {
  const spec = {
    apiVersion: 'shoal/v1', kind: 'Cluster', name: 'c',
    roles: {
      a: {image: 'x', cpu: 1, memory: '1Gi', disk: '1Gi', count: 3, actions: {snap: {cmd: 'snap', on: 'bootstrap'}, each: {cmd: 'e', order: 'serial'}}, services: {restart: {cmd: 'r'}}, health_check: {cmd: 'h'}},
      b: {image: 'x', cpu: 1, memory: '1Gi', disk: '1Gi', count: 1},
    },
    update: {canaries: 1, max_in_flight: 2},
  } as ClusterSpec
  const state = {
    name: 'c', description: '', specHash: 'h', revision: 4, spec, templates: {}, env: {pw: 's3cret'}, secretEnv: ['pw'], links: {}, adding: [], deleting: [], ids: {}, files: {},
    nodes: [node('a', 1, 'keep'), node('a', 2, 'keep'), node('a', 3, 'keep'), node('b', 1, 'keep')].map((n) => ({...n, state: 'active' as const})),
  } as unknown as ClusterState
  it('on: bootstrap runs on the bootstrap node only', () => {
    const p = planAction(state, {action: 'snap'})
    expect(p.steps.map((s) => [s.id, s.nodes])).toEqual([['1-run-snap-a', ['c-a-1']]])
    expect(p.secrets).toEqual(['s3cret'])
  })
  it('order: serial runs one node per step', () => {
    expect(planAction(state, {action: 'each'}).steps.map((s) => s.nodes)).toEqual([['c-a-1'], ['c-a-2'], ['c-a-3']])
  })
  it('restart uses the restart service, canaries first, and waits for health after each batch', () => {
    const steps = planAction(state, {action: 'restart'}).steps
    expect(steps.map((s) => [s.kind, s.service, s.nodes])).toEqual([
      ['run', 'restart', ['c-a-1']], ['health', undefined, ['c-a-1']], ['run', 'restart', ['c-a-2', 'c-a-3']], ['health', undefined, ['c-a-2', 'c-a-3']],
    ])
  })
  it('--node narrows the targets; an unknown action names the available ones', () => {
    expect(planAction(state, {action: 'each', node: 'c-a-2'}).steps.map((s) => s.nodes)).toEqual([['c-a-2']])
    expect(() => planAction(state, {action: 'nope'})).toThrow(/available: each, restart, snap/)
  })
})

describe('the operation record', () => {
  it('cuts a large plan into parts never inside a secret, so a sealed store seals every part that holds one', () => {
    const secret = 'pw-' + 'x'.repeat(40)
    const part = 512 * 1024
    for (const offset of [1, 20, secret.length - 1]) {
      const text = `${'a'.repeat(part - offset)}${secret}${'b'.repeat(part)}${secret}`
      const parts = planParts(text, [secret])
      expect(parts.join('')).toBe(text)
      expect(parts.every((p) => p.length <= part)).toBe(true)
      expect(parts.filter((p) => p.includes(secret))).toHaveLength(2)
    }
    expect(planParts('a'.repeat(part * 2), []).map((p) => p.length)).toEqual([part, part])
  })

  it('keeps a plan larger than one etcd request in parts, reads it back intact, tracks progress, and finishing clears it', async () => {
    const store = await freshStore()
    try {
      const big = 'x'.repeat(1_300_000)
      const data: OperationData = {plan: plan([node('a', 1, 'create')], {specHash: big}), env: {}}
      const current = await beginOperation(store, data, {id: 'op1', title: 'create', requestDigest: requestDigest({operation: {kind: 'create'}}), baseModRevision: 0})
      expect(current.planParts).toBe(3)
      expect(await readCurrent(store, 'c')).toEqual(current)
      expect((await readOperationData(store, 'c', current)).plan.specHash).toBe(big)
      await markNode(store, 'c', '03-run-init-a', 'c-a-1', 'done')
      await markNode(store, 'c', '02-install-a', 'c-a-1', 'started')
      const progress = await readProgress(store, 'c')
      expect(progress.nodes.get('03-run-init-a')?.get('c-a-1')).toBe('done')
      expect(progress.nodes.get('02-install-a')?.get('c-a-1')).toBe('started')
      await expect(beginOperation(store, data, {id: 'op2', title: 'create', requestDigest: 'd', baseModRevision: 0})).rejects.toThrow(/unfinished operation/)
      await finishOperation(store, 'c', current, false)
      expect(await readCurrent(store, 'c')).toBeUndefined()
      expect(await readLast(store, 'c')).toMatchObject({id: 'op1', result: 'ok'})
      // What stays: the last result, and the operation's summary among the kept history (shoal logs --list).
      const left = (await store.range(operationsPrefix('c'))).kvs.map((kv) => kv.key)
      expect(left).toHaveLength(2)
      expect(left[0]).toMatch(/^operations\/c\/history\/\S+-op1$/)
      expect(left[1]).toBe('operations/c/last')
    } finally {
      await store.close()
    }
  })
  it('a recorded plan that was altered is refused', async () => {
    const store = await freshStore()
    try {
      const current = await beginOperation(store, {plan: plan([]), env: {}}, {id: 'op1', title: 'create', requestDigest: 'd', baseModRevision: 0})
      await store.txn([], [{type: 'put', key: 'operations/c/plan/0000', value: JSON.stringify({plan: plan([]), env: {evil: 1}})}])
      await expect(readOperationData(store, 'c', current)).rejects.toThrow(/altered/)
    } finally {
      await store.close()
    }
  })
})
