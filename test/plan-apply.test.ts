// `apply` as its own operation kind: converge a cluster to a spec (creating it when not registered) through the same
// planner as create and scale, and the request digest that lets create and apply resume each other's operation.
import {describe, expect, it} from 'vitest'
import {describeOperation} from '../src/lifecycle/apply.js'
import {requestDigest} from '../src/operation/record.js'
import {planCluster} from '../src/plan/index.js'
import type {Operation} from '../src/plan/types.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

const inventory = hosts(9)
const apply: Operation = {kind: 'apply'}

describe('apply', () => {
  it('creates a cluster that is not registered, exactly as create does', () => {
    const viaApply = planCluster({spec: zkSpec(), templates: zkTemplates(), inventory, operation: apply})
    const viaCreate = planCluster({spec: zkSpec(), templates: zkTemplates(), inventory, operation: {kind: 'create'}})
    expect(viaApply.errors).toEqual([])
    expect({...viaApply, operation: null}).toEqual({...viaCreate, operation: null})
  })

  it('converges a registered cluster: a new env default and a higher count re-render, reload and add nodes', () => {
    const current = applied(planCluster({spec: zkSpec(), templates: zkTemplates(), inventory, operation: apply}))
    const spec = zkSpec({count: 4}, {env: {tick_time: {type: 'integer', default: 3000}}})
    const p = planCluster({spec, templates: zkTemplates(), inventory, current, operation: apply})
    expect(p.errors).toEqual([])
    expect(p.operation).toEqual(apply)
    expect(p.nodes.map((n) => [n.node_id, n.change])).toEqual([['zk-main-zk-1', 'keep'], ['zk-main-zk-2', 'keep'], ['zk-main-zk-3', 'keep'], ['zk-main-zk-4', 'create']])
    expect(p.steps.filter((s) => s.kind === 'install' && s.reload).flatMap((s) => s.nodes)).toEqual(['zk-main-zk-1', 'zk-main-zk-2', 'zk-main-zk-3'])
    expect(p.steps.filter((s) => s.service === 'init').flatMap((s) => s.nodes)).toEqual(['zk-main-zk-4'])
  })

  it('following a linked cluster needs the follower registered', () => {
    const p = planCluster({spec: zkSpec(), templates: zkTemplates(), inventory, operation: {kind: 'apply', follows: 'other'}})
    expect(p.errors.map((e) => e.code)).toEqual(['not-registered'])
  })

  it('is titled apply, and says which linked cluster it follows', () => {
    expect(describeOperation(apply)).toBe('apply')
    expect(describeOperation({kind: 'apply', follows: 'zk-main'})).toBe('apply (linked cluster zk-main changed)')
  })

  it('digests create and apply of one spec alike (either command resumes the other), and a follow apart', () => {
    const spec = zkSpec()
    const templates = zkTemplates()
    expect(requestDigest({operation: apply, spec, templates})).toBe(requestDigest({operation: {kind: 'create'}, spec, templates}))
    expect(requestDigest({operation: {kind: 'apply', follows: 'x'}, spec, templates})).not.toBe(requestDigest({operation: apply, spec, templates}))
    expect(requestDigest({operation: apply, spec: zkSpec({count: 4}), templates})).not.toBe(requestDigest({operation: apply, spec, templates}))
  })
})
