// The node view built from registered states (src/plan/node-view.ts), which the planner renders and metad serves.
import {describe, expect, it} from 'vitest'
import {linkView, nodeView, planCluster, registeredView} from '../src/plan/index.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

const secretEnv = {tick_time: {type: 'integer' as const, default: 2000}, password: {type: 'string' as const, default: 's3cr3t-zk', secret: true}}
const zk = applied(planCluster({spec: zkSpec({}, {env: secretEnv}), templates: zkTemplates(), inventory: hosts(3), operation: {kind: 'create'}}))

describe('node view of a registered cluster', () => {
  it("leaves a linked cluster's secret parameters out of the link", () => {
    expect(linkView(zk).env).toEqual({tick_time: 2000})
  })

  it("shows a linked cluster's members joining and leaving in an operation under way, and none otherwise", () => {
    expect(linkView(zk)).toMatchObject({adding_hosts: {zk: []}, deleting_hosts: {zk: []}})
    const [first, , third] = zk.nodes
    const moving = linkView({...zk, adding: [third!.node_id], deleting: [first!.node_id]})
    expect(moving.adding_hosts.zk!.map((h) => h.node_id)).toEqual([third!.node_id])
    expect(moving.deleting_hosts.zk!.map((h) => h.node_id)).toEqual([first!.node_id])
    expect(moving.hosts.zk!.map((h) => h.sid)).toEqual([1, 2, 3])
  })

  it("keeps the cluster's own secrets in its own view", () => {
    expect(registeredView(zk, {}).env).toEqual({tick_time: 2000, password: 's3cr3t-zk'})
  })

  it("cannot be made to render a linked cluster's secret into a template", () => {
    const spec = zkSpec({count: 1, files: [{template: 'k.liquid', dest: 'conf/k'}]}, {name: 'kafka', links: {zookeeper: 'zk-main'}})
    const p = planCluster({spec, templates: new Map([['k.liquid', 'pw={{ links.zookeeper.env.password }}\n']]), inventory: hosts(1), operation: {kind: 'create'}, linked: {'zk-main': zk}})
    expect(p.errors.map((e) => e.code)).toEqual(['template-render'])
  })

  it('gives every registered node itself as self and host, and the members in sid order', () => {
    const shared = registeredView(zk, {})
    for (const node of zk.nodes) {
      const view = nodeView(shared, node.node_id)!
      expect(view.self.node_id).toBe(node.node_id)
      expect(view.host).toBe(view.self)
      expect(view.hosts.zk!.map((h) => h.sid)).toEqual([1, 2, 3])
    }
    expect(nodeView(shared, 'zk-main-zk-99')).toBeUndefined()
  })
})
