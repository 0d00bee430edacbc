// Builders for planner tests: small specs, inventories and template sets, and "apply" = round-trip through the tree.
import {stateFromTree, treeOf} from '../../src/plan/tree.js'
import type {Inventory, InventoryHost} from '../../src/plan/inventory.js'
import type {ClusterState, Plan} from '../../src/plan/types.js'
import type {ClusterSpec, RoleSpec} from '../../src/spec/types.js'

export const ZOO_CFG = `tickTime={{ env.tick_time }}
{% for m in hosts.zk -%}
server.{{ m.sid }}={{ m.ip }}:2888:3888
{% endfor -%}
`
export const MYID = '{{ self.sid }}\n'

export function role(overrides: Partial<RoleSpec> = {}): RoleSpec {
  return {image: 'zk-3.8', cpu: 1, memory: '1Gi', disk: '10Gi', count: 3, ...overrides}
}

/** A ZooKeeper-shaped cluster: one role `zk` with zoo.cfg (lists every member) and myid. */
export function zkSpec(overrides: Partial<RoleSpec> = {}, extra: Partial<ClusterSpec> = {}): ClusterSpec {
  return {
    apiVersion: 'shoal/v1',
    kind: 'Cluster',
    name: 'zk-main',
    env: {tick_time: {type: 'integer', default: 2000}},
    roles: {
      zk: role({
        files: [
          {template: 'zk/zoo.cfg.liquid', dest: 'conf/zoo.cfg', reload: 'bin/reload'},
          {template: 'zk/myid.liquid', dest: 'data/myid'},
        ],
        services: {init: {cmd: 'bin/init'}, start: {cmd: 'bin/start'}, stop: {cmd: 'bin/stop'}, destroy: {cmd: 'bin/destroy'}, scale_out: {cmd: 'bin/wait', on: 'existing'}, scale_in: {cmd: 'bin/wait', on: 'existing'}},
        health_check: {cmd: 'bin/health'},
        ...overrides,
      }),
    },
    ...extra,
  }
}

export function zkTemplates(): Map<string, string> {
  return new Map([
    ['zk/zoo.cfg.liquid', ZOO_CFG],
    ['zk/myid.liquid', MYID],
  ])
}

/** `count` hosts h01.. with addresses 10.0.<i/250>.<i%250+1>, each with the given capacity and labels. */
export function hosts(count: number, capacity: InventoryHost['capacity'] = {cpu: 8, memory: '32Gi', disk: '500Gi'}, labels?: Record<string, string>): Inventory {
  const width = String(count).length
  return {
    hosts: Array.from({length: count}, (_, i) => ({
      name: `h${String(i + 1).padStart(width, '0')}`,
      address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      ...(capacity ? {capacity} : {}),
      ...(labels ? {labels} : {}),
    })),
  }
}

/** What the registry holds after the plan ran to completion: its desired state, written to a tree and read back. */
export function applied(plan: Plan): ClusterState {
  if (plan.errors.length) throw new Error(`plan failed: ${plan.errors.map((e) => e.message).join('; ')}`)
  if (!plan.desired) throw new Error('plan has no desired state (destroy)')
  return stateFromTree(plan.cluster, treeOf(plan.desired))
}
