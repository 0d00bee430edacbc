// Properties of the planner over random scale-out/scale-in sequences, each plan applied through the metadata tree.
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {planCluster} from '../src/plan/index.js'
import {parseSize} from '../src/util/units.js'
import type {ClusterState, Operation, Plan} from '../src/plan/types.js'
import type {ClusterSpec} from '../src/spec/types.js'
import {applied, hosts, role} from './support/plan-fixtures.js'

const spec: ClusterSpec = {
  apiVersion: 'shoal/v1',
  kind: 'Cluster',
  name: 'prop',
  roles: {
    zk: role({cpu: 1, memory: '2Gi', count: 3, server_id: {start: 1, upper_bound: 6}, placement: {max_per_host: 2}, files: [{template: 'm', dest: 'members'}]}),
    app: role({cpu: 2, memory: '1Gi', count: 2, server_id: {start: 100, upper_bound: 400}, placement: {labels: {tier: 'app'}}, files: [{template: 'm', dest: 'members'}]}),
  },
}
const templates = new Map([['m', '{% for h in hosts.zk %}{{ h.sid }}@{{ h.ip }} {% endfor %}{{ self.bootstrap }}\n']])
const inventory = {hosts: hosts(6, {cpu: 4, memory: '8Gi', disk: '100Gi'}).hosts.map((h, i) => (i % 2 ? {...h, labels: {tier: 'app'}} : h))}
const otherUsage = {h1: {cpu: 1, memory: 0, disk: 0}}
const ALLOWED_FAILURES = new Set(['placement-failed', 'sid-exhausted', 'scale-bounds'])

type Step = {type: 'add' | 'count' | 'remove'; role: 'zk' | 'app'; n: number; pick: number[]}

const stepArb: fc.Arbitrary<Step> = fc.record({
  type: fc.constantFrom('add', 'count', 'remove'),
  role: fc.constantFrom('zk', 'app'),
  n: fc.integer({min: 0, max: 6}),
  pick: fc.array(fc.nat({max: 9}), {minLength: 1, maxLength: 3}),
}) as fc.Arbitrary<Step>

/** The operation a step stands for against the current state (removal picks among the role's present nodes). */
function operationOf(step: Step, current: ClusterState): Operation {
  if (step.type === 'add') return {kind: 'scale', role: step.role, add: Math.max(1, step.n % 4)}
  if (step.type === 'count') return {kind: 'scale', role: step.role, count: step.n}
  const ids = current.nodes.filter((n) => n.role === step.role).map((n) => n.node_id)
  const chosen = [...new Set(step.pick.map((i) => ids[i % Math.max(ids.length, 1)]).filter((id): id is string => id !== undefined))]
  return chosen.length ? {kind: 'scale', role: step.role, remove: chosen} : {kind: 'scale', role: step.role, add: 1}
}

function planFor(current: ClusterState | undefined, operation: Operation): Plan {
  return planCluster({spec: current?.spec ?? spec, templates, inventory, current, operation, otherUsage})
}

function checkInvariants(state: ClusterState): void {
  for (const [name, roleSpec] of Object.entries(spec.roles)) {
    const nodes = state.nodes.filter((n) => n.role === name)
    const sids = nodes.map((n) => n.sid)
    expect(new Set(sids).size).toBe(sids.length)
    for (const sid of sids) {
      expect(sid).toBeGreaterThanOrEqual(roleSpec.server_id!.start!)
      expect(sid).toBeLessThanOrEqual(roleSpec.server_id!.upper_bound!)
    }
    if (nodes.length) {
      const boots = nodes.filter((n) => n.bootstrap)
      expect(boots).toHaveLength(1)
      expect(boots[0]!.sid).toBe(Math.min(...sids))
    }
  }
  for (const host of inventory.hosts) {
    const on = state.nodes.filter((n) => n.host === host.name)
    const other = otherUsage[host.name as keyof typeof otherUsage]
    expect(on.reduce((s, n) => s + n.cpu, other?.cpu ?? 0)).toBeLessThanOrEqual(host.capacity!.cpu!)
    expect(on.reduce((s, n) => s + n.memory_bytes, 0)).toBeLessThanOrEqual(parseSize(host.capacity!.memory!)!)
    for (const [name, roleSpec] of Object.entries(spec.roles)) {
      expect(on.filter((n) => n.role === name).length).toBeLessThanOrEqual(roleSpec.placement?.max_per_host ?? 1)
      if (roleSpec.placement?.labels && on.some((x) => x.role === name)) expect(host.labels).toMatchObject(roleSpec.placement.labels)
    }
  }
}

describe('planner properties', () => {
  it('keeps ids unique and never reused, one bootstrap per role, capacity and max_per_host, and is deterministic', () => {
    fc.assert(
      fc.property(fc.array(stepArb, {minLength: 1, maxLength: 10}), (steps) => {
        let current = applied(planFor(undefined, {kind: 'create'}))
        checkInvariants(current)
        const everSeen = new Set(current.nodes.map((n) => n.node_id))
        for (const step of steps) {
          const operation = operationOf(step, current)
          const plan = planFor(current, operation)
          expect(planFor(current, operation)).toEqual(plan)
          if (plan.errors.length) {
            for (const e of plan.errors) expect(ALLOWED_FAILURES.has(e.code), e.message).toBe(true)
            continue
          }
          for (const n of plan.nodes.filter((x) => x.change === 'create')) {
            expect(everSeen.has(n.node_id)).toBe(false)
            everSeen.add(n.node_id)
            // A sid handed out before is reused only once the high-water mark reached the bound (in this plan or earlier).
            const before = current.ids[n.role]
            if (before && n.sid <= before.sidHigh) expect(plan.desired!.ids[n.role]!.sidHigh).toBe(spec.roles[n.role]!.server_id!.upper_bound)
          }
          const next = applied(plan)
          expect(next).toEqual(plan.desired)
          checkInvariants(next)
          current = next
        }
      }),
      {numRuns: 150},
    )
  })
})
