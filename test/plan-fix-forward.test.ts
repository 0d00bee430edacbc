// Planning from what really stands after an operation stopped: registered pending and leaving nodes, and the facts of
// which scripts finished where, are planner inputs (one pure planner; no refusal, no second planner).
import {describe, expect, it} from 'vitest'
import {planCluster, type PlanInput} from '../src/plan/index.js'
import {stateFromTree, treeOf} from '../src/plan/tree.js'
import type {ClusterState, NodeFacts, Operation, Plan} from '../src/plan/types.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

function plan(overrides: Partial<PlanInput> = {}): Plan {
  return planCluster({spec: zkSpec(), templates: zkTemplates(), inventory: hosts(9), operation: {kind: 'create'}, ...overrides})
}
const ok = (p: Plan): Plan => {
  expect(p.errors).toEqual([])
  return p
}

/** What the registry holds when the plan stopped right after its first commit (nodes pending / leaving). */
function stoppedAfterRegister(before: ClusterState | undefined, p: Plan): ClusterState {
  const tree: Record<string, string> = before ? treeOf(before) : {}
  const register = p.steps.find((s) => s.kind === 'commit')!
  for (const key of register.changes!.deletes) delete tree[key]
  for (const [key, value] of register.changes!.puts) tree[key] = value
  return stateFromTree(p.cluster, tree)
}

const runs = (p: Plan, service: string): string[] => p.steps.filter((s) => s.service === service).flatMap((s) => s.nodes)
const facts = (entries: Record<string, Partial<NodeFacts>>): Record<string, NodeFacts> =>
  Object.fromEntries(Object.entries(entries).map(([id, f]) => [id, {done: [], touched: [], ...f}]))
const ids = (...n: number[]): string[] => n.map((i) => `zk-main-zk-${i}`)

describe('a create that stopped', () => {
  const created = ok(plan())
  const current = stoppedAfterRegister(undefined, created)

  it('is planned again from its pending nodes: same ids, every node still joining', () => {
    const p = ok(plan({current, operation: {kind: 'create'}}))
    expect(p.nodes.map((n) => [n.node_id, n.change])).toEqual(ids(1, 2, 3).map((id) => [id, 'create']))
    expect(p.desired!.nodes.map((n) => n.state)).toEqual(['active', 'active', 'active'])
  })

  it('keeps finished work: a node whose init finished is not initialised again, whose start finished (and health passed) not started again', () => {
    const p = ok(plan({current, facts: facts({'zk-main-zk-1': {done: ['init', 'start'], touched: ['init', 'start']}, 'zk-main-zk-2': {done: ['init'], touched: ['init', 'start']}})}))
    expect(runs(p, 'init')).toEqual(ids(3))
    expect(runs(p, 'start')).toEqual(ids(2, 3))
    expect(p.steps.filter((s) => s.kind === 'health').flatMap((s) => s.nodes)).toEqual(ids(1, 2, 3))
  })

  it('a fixed spec with fewer nodes lets the extra pending node leave, stopped only if it was started', () => {
    const p = ok(plan({spec: zkSpec({count: 2}), current, facts: facts({'zk-main-zk-3': {done: ['init'], touched: ['init']}})}))
    expect(p.nodes.filter((n) => n.change === 'remove').map((n) => n.node_id)).toEqual(ids(3))
    expect(runs(p, 'stop')).toEqual([])
    expect(runs(p, 'destroy')).toEqual(ids(3))
  })

  it('rolls back as a destroy that only undoes what ran: nothing stays registered', () => {
    const p = ok(plan({spec: current.spec!, current, operation: {kind: 'destroy'}, facts: facts({'zk-main-zk-1': {done: ['init'], touched: ['init', 'start']}})}))
    expect(runs(p, 'stop')).toEqual(ids(1))
    expect(runs(p, 'destroy')).toEqual(ids(1))
    expect(p.steps.filter((s) => s.kind === 'remove').flatMap((s) => s.nodes)).toEqual(ids(1, 2, 3))
    expect(p.tree).toEqual([])
  })

  it('without facts (an abandoned record) every script a node needs runs', () => {
    const p = ok(plan({spec: current.spec!, current, operation: {kind: 'destroy'}}))
    expect(runs(p, 'stop')).toEqual(ids(1, 2, 3))
  })
})

describe('a scale out that stopped', () => {
  const running = applied(ok(plan()))
  const scaling = ok(plan({spec: running.spec!, current: running, operation: {kind: 'scale', role: 'zk', add: 2}}))
  const current = stoppedAfterRegister(running, scaling)

  it('run again with the same --add joins the same pending nodes, no third one', () => {
    const p = ok(plan({spec: current.spec!, current, operation: {kind: 'scale', role: 'zk', add: 2}, facts: facts({'zk-main-zk-4': {done: ['init', 'start'], touched: ['init', 'start']}})}))
    expect(p.nodes.filter((n) => n.change === 'create').map((n) => n.node_id)).toEqual(ids(4, 5))
    expect(runs(p, 'init')).toEqual(ids(5))
    expect(runs(p, 'scale_out')).toEqual(ids(1, 2, 3))
  })

  it('rolls back: the joiners leave (stopped where started), the members stay, adding-hosts is cleared', () => {
    const p = ok(plan({spec: running.spec!, current, operation: {kind: 'rollback', of: 'x'}, facts: facts({'zk-main-zk-4': {done: ['init', 'start'], touched: ['init', 'start']}})}))
    expect(p.nodes.map((n) => [n.node_id, n.change])).toEqual([...ids(1, 2, 3).map((id) => [id, 'keep']), ...ids(4, 5).map((id) => [id, 'remove'])])
    expect(runs(p, 'stop')).toEqual(ids(4))
    expect(runs(p, 'destroy')).toEqual(ids(4))
    expect(p.desired!.adding).toEqual([])
    expect(p.desired!.nodes.map((n) => n.node_id)).toEqual(ids(1, 2, 3))
    expect(p.desired!.files['zk-main-zk-1']!['conf/zoo.cfg']).toBe(running.files['zk-main-zk-1']!['conf/zoo.cfg'])
  })

  it('rolls back after its last commit marked the joiners active (the members\' files not re-rendered yet): they leave too', () => {
    const committed = applied(scaling)
    expect(committed.nodes.map((n) => n.state)).toEqual(Array(5).fill('active'))
    const joined = scaling.nodes.filter((n) => n.change === 'create').map((n) => n.node_id)
    const started: Partial<NodeFacts> = {done: ['init', 'start'], touched: ['init', 'start']}
    const p = ok(plan({spec: running.spec!, current: committed, operation: {kind: 'rollback', of: 'x', joined}, facts: facts({'zk-main-zk-4': started, 'zk-main-zk-5': started})}))
    expect(p.nodes.map((n) => [n.node_id, n.change])).toEqual([...ids(1, 2, 3).map((id) => [id, 'keep']), ...ids(4, 5).map((id) => [id, 'remove'])])
    expect(runs(p, 'stop')).toEqual(ids(4, 5))
    expect(p.desired!.nodes.map((n) => n.node_id)).toEqual(ids(1, 2, 3))
    expect(p.desired!.files['zk-main-zk-1']!['conf/zoo.cfg']).toBe(running.files['zk-main-zk-1']!['conf/zoo.cfg'])
  })

  it('after its rollback stopped too (the joiners registered leaving), scaling again joins them again: the members run scale_out, finished init and start are kept', () => {
    const started: Partial<NodeFacts> = {done: ['init', 'start'], touched: ['init', 'start']}
    const rollback = ok(plan({spec: running.spec!, current, operation: {kind: 'rollback', of: 'x'}, facts: facts({'zk-main-zk-4': started, 'zk-main-zk-5': started})}))
    const stopped = stoppedAfterRegister(current, rollback)
    expect(stopped.nodes.filter((n) => n.state === 'leaving').map((n) => n.node_id)).toEqual(ids(4, 5))
    const chainFacts = facts({'zk-main-zk-4': started, 'zk-main-zk-5': started, 'zk-main-zk-1': {done: ['scale_out'], touched: ['scale_out']}})
    for (const operation of [{kind: 'scale', role: 'zk', count: 5}, {kind: 'scale', role: 'zk', add: 2}] as const) {
      const p = ok(plan({spec: stopped.spec!, current: stopped, operation, facts: chainFacts, joinedUnfinished: ids(4, 5)}))
      expect(p.nodes.map((n) => [n.node_id, n.change])).toEqual([...ids(1, 2, 3).map((id) => [id, 'keep']), ...ids(4, 5).map((id) => [id, 'create'])])
      expect(runs(p, 'scale_out')).toEqual(ids(1, 2, 3))
      expect(runs(p, 'init')).toEqual([])
      expect(runs(p, 'start')).toEqual([])
      expect(p.desired!.nodes.map((n) => [n.node_id, n.state])).toEqual(ids(1, 2, 3, 4, 5).map((id) => [id, 'active']))
    }
    // Had the rollback stopped them already, they start again.
    const stoppedFacts = facts({'zk-main-zk-4': {done: ['init', 'start', 'stop'], touched: ['init', 'start', 'stop']}})
    expect(runs(ok(plan({spec: stopped.spec!, current: stopped, operation: {kind: 'scale', role: 'zk', count: 5}, facts: stoppedFacts, joinedUnfinished: ids(4, 5)})), 'start')).toEqual(ids(4, 5))
  })
})

describe('a scale in that stopped', () => {
  const running = applied(ok(plan({spec: zkSpec({count: 5})})))
  const shrinking = ok(plan({spec: running.spec!, current: running, operation: {kind: 'scale', role: 'zk', count: 3}}))
  const current = stoppedAfterRegister(running, shrinking)

  it('run again: the leaving nodes leave, skipping the stop that finished', () => {
    const p = ok(plan({spec: current.spec!, current, operation: {kind: 'scale', role: 'zk', count: 3}, facts: facts({'zk-main-zk-5': {done: ['stop'], touched: ['stop']}})}))
    expect(p.nodes.filter((n) => n.change === 'remove').map((n) => n.node_id)).toEqual(ids(4, 5))
    expect(runs(p, 'stop')).toEqual(ids(4))
  })

  it('rolls back: a node not destroyed yet stays (started again if it was stopped); a destroyed one cannot be restored', () => {
    const op: Operation = {kind: 'rollback', of: 'x'}
    const p = ok(plan({spec: running.spec!, current, operation: op, facts: facts({'zk-main-zk-4': {done: ['stop'], touched: ['stop']}, 'zk-main-zk-5': {done: ['stop', 'destroy'], touched: ['stop', 'destroy']}})}))
    expect(p.nodes.filter((n) => n.change === 'remove').map((n) => [n.node_id, n.reason])).toEqual([['zk-main-zk-5', 'its destroy already ran: it cannot be restored']])
    expect(runs(p, 'start')).toEqual(ids(4))
    expect(runs(p, 'stop')).toEqual([])
    expect(p.desired!.nodes.map((n) => n.node_id)).toEqual(ids(1, 2, 3, 4))
  })
})

describe('membership is stated once', () => {
  it('during create, templates see the joiners in adding_hosts, as scripts do in SHOAL_JOINING', () => {
    const templates = new Map([...zkTemplates(), ['zk/zoo.cfg.liquid', 'joining={% for m in adding_hosts.zk %}{{ m.sid }} {% endfor %}\n']])
    const p = ok(plan({templates}))
    const node = p.nodes[0]!
    expect(node.interim?.find((f) => f.dest === 'conf/zoo.cfg')?.content).toBe('joining=1 2 3 \n')
    expect(node.files.find((f) => f.dest === 'conf/zoo.cfg')?.content).toBe('joining=\n')
  })

  it('pre_scale_out runs on the existing members before the joiners init; pre_scale_in on the leaving ones before scale_in', () => {
    const spec = zkSpec({services: {init: {cmd: 'i'}, start: {cmd: 's'}, stop: {cmd: 'x'}, pre_scale_out: {cmd: 'add'}, pre_scale_in: {cmd: 'hand-over'}, scale_in: {cmd: 'w', on: 'existing'}}})
    const running = applied(ok(plan({spec})))
    const out = ok(plan({spec, current: running, operation: {kind: 'scale', role: 'zk', add: 1}}))
    const order = out.steps.map((s) => s.service).filter(Boolean)
    expect(order.indexOf('pre_scale_out')).toBeLessThan(order.indexOf('init'))
    expect(runs(out, 'pre_scale_out')).toEqual(ids(1, 2, 3))
    const inward = ok(plan({spec, current: running, operation: {kind: 'scale', role: 'zk', count: 2}}))
    expect([...new Set(inward.steps.map((s) => s.service).filter(Boolean))]).toEqual(['pre_scale_in', 'scale_in', 'stop'])
    expect(runs(inward, 'pre_scale_in')).toEqual(ids(3))
  })
})
