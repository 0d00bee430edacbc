// Node views from registered states: the planner builds links with these, metad builds what it serves with them.
import type {ClusterView, HostView, LinkView, NodeView} from '../render/view.js'
import {byRole, sharedView, type SharedView} from './render.js'
import type {ClusterState, NodeRecord} from './types.js'

export function hostView(node: NodeRecord, bootstrap: boolean): HostView {
  return {node_id: node.node_id, role: node.role, sid: node.sid, ip: node.ip, host: node.host, image: node.image, cpu: node.cpu, memory: node.memory, memory_bytes: node.memory_bytes, disk: node.disk, disk_bytes: node.disk_bytes, bootstrap, home: node.home}
}

/** Declared roles in spec order, then roles that only registered nodes still have (sorted). */
export function rolesOf(state: ClusterState): string[] {
  const declared = state.spec ? Object.keys(state.spec.roles) : []
  const extra = [...new Set(state.nodes.map((n) => n.role))].filter((r) => !declared.includes(r)).sort()
  return [...declared, ...extra]
}

/**
 * What a cluster that links to `state` sees of it. Its secret parameters are left out: a node sees its own cluster's
 * secrets, never another cluster's (its rendered files would otherwise carry them).
 */
export function linkView(state: ClusterState): LinkView {
  const secret = new Set(state.secretEnv)
  const env = Object.fromEntries(Object.entries(state.env).filter(([name]) => !secret.has(name)))
  const members = membersOf(state)
  return {cluster: state.name, env, hosts: members.hosts, adding_hosts: members.adding, deleting_hosts: members.deleting}
}

/** A registered cluster's nodes by role, sid order: all of them, and those joining and leaving in an operation. */
function membersOf(state: ClusterState): {hosts: Record<string, HostView[]>; adding: Record<string, HostView[]>; deleting: Record<string, HostView[]>} {
  const roles = rolesOf(state)
  const views = new Map(state.nodes.map((n) => [n.node_id, hostView(n, n.bootstrap)]))
  const listed = (ids: readonly string[]): HostView[] => ids.flatMap((id) => views.get(id) ?? [])
  return {hosts: byRole([...views.values()], roles), adding: byRole(listed(state.adding), roles), deleting: byRole(listed(state.deleting), roles)}
}

/**
 * What every node of a registered cluster sees alike, as the registry holds it now: during an operation that is the
 * plan's in-flight state (joining nodes in `hosts` and `adding_hosts`, leaving ones in `hosts` and `deleting_hosts`).
 * `links` holds the linked clusters that are registered (by link name).
 */
export function registeredView(state: ClusterState, links: Readonly<Record<string, LinkView>>): SharedView {
  const members = membersOf(state)
  const cluster: ClusterView = {name: state.name, description: state.description, spec_hash: state.specHash, revision: state.revision}
  return sharedView(cluster, state.env, {...links}, members.hosts, members.adding, members.deleting)
}

/** One node's view: the shared part plus itself as `self` and `host`; undefined when the node is not in `hosts`. */
export function nodeView(shared: SharedView, nodeId: string): NodeView | undefined {
  for (const list of Object.values(shared.hosts)) {
    const self = list.find((h) => h.node_id === nodeId)
    if (self) return {self, host: self, ...shared}
  }
  return undefined
}
