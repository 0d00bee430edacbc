// Planning at scale: a 10,000-node create and a one-node scale out of it (correctness only; timing lives in bench/plan.ts).
import {describe, expect, it} from 'vitest'
import {benchInput} from '../bench/plan.js'
import {planCluster} from '../src/plan/index.js'
import {nodeOfKey, stateFromTree, treeOf} from '../src/plan/tree.js'

describe('10,000 nodes', () => {
  const input = benchInput(10_000)
  const created = planCluster({...input, operation: {kind: 'create'}})

  it('places every node on its own host with unique sids and one bootstrap', () => {
    expect(created.errors).toEqual([])
    expect(created.nodes).toHaveLength(10_000)
    expect(new Set(created.nodes.map((n) => n.host)).size).toBe(10_000)
    expect(new Set(created.nodes.map((n) => n.sid)).size).toBe(10_000)
    expect(created.nodes.filter((n) => n.bootstrap).map((n) => n.sid)).toEqual([1])
    expect(created.nodes[9_999]!.files[0]!.content).toBe('id=10000\naddr=10.0.39.15:7000\nbootstrap=false\n')
  })

  it('scales out by one writing only the new node\'s keys and a few cluster keys', () => {
    const current = stateFromTree('bench', treeOf(created.desired!))
    const spec = {...current.spec!, roles: {app: {...current.spec!.roles.app!, server_id: {start: 1, upper_bound: 10_001}}}}
    const inventory = {hosts: [...input.inventory.hosts, {name: 'host-extra', address: '10.99.0.1'}]}
    const p = planCluster({spec, templates: input.templates, inventory, current, operation: {kind: 'scale', role: 'app', add: 1}})
    expect(p.errors).toEqual([])
    expect(p.nodes.filter((n) => n.change === 'create').map((n) => [n.node_id, n.host])).toEqual([['bench-app-10001', 'host-extra']])
    expect(new Set(p.changes.puts.map(([k]) => nodeOfKey(k)).filter(Boolean))).toEqual(new Set(['bench-app-10001']))
    expect(p.changes.puts.length).toBeLessThan(40)
  })
})
