// Planner benchmark: plan a 10,000-node create (one role, 10,000 hosts, one small template) and time it.
import {planCluster} from '../src/plan/plan.js'
import type {Inventory} from '../src/plan/inventory.js'
import type {ClusterSpec} from '../src/spec/types.js'

export const BENCH_TEMPLATE = 'id={{ self.sid }}\naddr={{ self.ip }}:{{ env.port }}\nbootstrap={{ self.bootstrap }}\n'

export function benchInput(nodes: number): {spec: ClusterSpec; templates: Map<string, string>; inventory: Inventory} {
  const spec: ClusterSpec = {
    apiVersion: 'shoal/v1',
    kind: 'Cluster',
    name: 'bench',
    env: {port: {type: 'integer', default: 7000}},
    roles: {
      app: {
        image: 'app', cpu: 1, memory: '1Gi', disk: '10Gi', count: nodes, server_id: {start: 1, upper_bound: nodes},
        files: [{template: 'app.conf.liquid', dest: 'conf/app.conf'}],
        services: {start: {cmd: 'bin/start'}},
      },
    },
  }
  const inventory: Inventory = {
    hosts: Array.from({length: nodes}, (_, i) => ({name: `host-${i}`, address: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, capacity: {cpu: 4, memory: '8Gi', disk: '100Gi'}})),
  }
  return {spec, templates: new Map([['app.conf.liquid', BENCH_TEMPLATE]]), inventory}
}

/** Plan `nodes` nodes from scratch; returns the node count and the wall time of the planCluster call in ms. */
export function benchPlan(nodes = 10_000): {nodes: number; ms: number} {
  const input = benchInput(nodes)
  const start = process.hrtime.bigint()
  const plan = planCluster({...input, operation: {kind: 'create'}})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (plan.errors.length) throw new Error(`bench plan failed: ${plan.errors[0]!.message}`)
  return {nodes: plan.nodes.length, ms}
}
