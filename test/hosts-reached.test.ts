// Which hosts an operation reaches over the transport (lifecycle/execute.ts hostsReached): what `warm` connects to
// while the operation is recorded, so no connection is set up for a host no step needs.
import {describe, expect, it} from 'vitest'
import {hostsReached} from '../src/lifecycle/execute.js'
import {reachesRunningNodes} from '../src/lifecycle/operation.js'
import {hostLookup} from '../src/lifecycle/hosts.js'
import type {OperationData} from '../src/operation/record.js'
import {planCluster} from '../src/plan/index.js'
import type {Step} from '../src/plan/steps.js'
import {hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

const inventory = hosts(5)
const lookup = hostLookup(inventory.hosts, 'zk-main')
const plan = planCluster({spec: zkSpec(), templates: zkTemplates(), inventory, operation: {kind: 'create'}})
const ids = plan.nodes.map((n) => n.node_id)
const data = (steps: Array<Omit<Step, 'id' | 'title'>>, agent = false): OperationData =>
  ({plan: {...plan, steps: steps.map((s, i) => ({id: String(i), title: '', ...s}))}, specAfter: {...zkSpec(), ...(agent ? {agent: true} : {})}, env: {}}) as unknown as OperationData
const addresses = (d: OperationData): string[] => hostsReached(d, lookup).map((h) => h.address)
const addressOf = (id: string): string => inventory.hosts.find((h) => h.name === plan.nodes.find((n) => n.node_id === id)!.host)!.address

describe('hosts an operation reaches', () => {
  it("a create: every new node's host once, in the order the steps first need them; commits reach none", () => {
    expect(addresses({...data([]), plan})).toEqual(ids.map(addressOf))
    expect(addresses(data([{kind: 'commit', nodes: []}]))).toEqual([])
  })

  it('scripts, health checks and removals reach their nodes; a node in several steps counts once', () => {
    expect(addresses(data([{kind: 'run', nodes: [ids[2]!]}, {kind: 'health', nodes: [ids[0]!, ids[2]!]}, {kind: 'remove', nodes: [ids[1]!]}]))).toEqual([ids[2]!, ids[0]!, ids[1]!].map(addressOf))
  })

  it('with agents, installs that wait for reports reach no host; a new node (its agent started over SSH) does', () => {
    const steps: Array<Omit<Step, 'id' | 'title'>> = [{kind: 'install', nodes: [ids[0]!], files: 'interim', reload: true}, {kind: 'install', nodes: [ids[1]!], files: 'interim', reload: false}]
    expect(addresses(data(steps, true))).toEqual([addressOf(ids[1]!)])
    expect(addresses(data(steps, false))).toEqual([ids[0]!, ids[1]!].map(addressOf))
  })

  it('leaves a node placed on a host the inventory does not list to the step that reaches it', () => {
    const lost = {...plan, nodes: plan.nodes.map((n, i) => (i === 0 ? {...n, host: 'not-in-inventory'} : n))}
    expect(hostsReached({...data([]), plan: lost}, lookup).map((h) => h.address)).toEqual(ids.slice(1).map(addressOf))
  })
})

describe('whether connections begin ahead of the first step, which waits for them (only when steps reach nodes that may run)', () => {
  const kept = {...plan, nodes: plan.nodes.map((n, i) => (i === 0 ? {...n, change: 'keep' as const} : n))}
  const withSteps = (p: typeof plan, steps: Array<Omit<Step, 'id' | 'title'>>): typeof plan => ({...p, steps: steps.map((s, i) => ({id: String(i), title: '', ...s}))}) as typeof plan
  it('a create reaches only new nodes: it does not wait', () => {
    expect(plan.steps.length).toBeGreaterThan(2)
    expect(reachesRunningNodes(plan)).toBe(false)
  })

  it('a step on a kept node (a reload, a scale_out script, a removal) waits; a commit naming it does not', () => {
    expect(reachesRunningNodes(withSteps(kept, [{kind: 'commit', nodes: [ids[0]!]}, {kind: 'run', nodes: [ids[1]!]}]))).toBe(false)
    expect(reachesRunningNodes(withSteps(kept, [{kind: 'commit', nodes: []}, {kind: 'install', nodes: [ids[0]!], files: 'final', reload: true}]))).toBe(true)
    expect(reachesRunningNodes(withSteps(kept, [{kind: 'run', nodes: [ids[0]!, ids[1]!]}]))).toBe(true)
  })
})
