// The node view: what a template (and a script) sees of the metadata tree. Defined once; the planner builds it,
// the linter checks template variables against it, metad serves it.
import type {EnvValue} from '../spec/types.js'

/** One node as registered under `hosts/<role>/<node-id>/`. */
export interface HostView {
  node_id: string
  role: string
  sid: number
  ip: string
  /** Inventory name of the host the node is placed on. */
  host: string
  image: string
  cpu: number
  memory: string
  memory_bytes: number
  disk: string
  disk_bytes: number
  /** True for exactly one active node per role: the lowest sid. */
  bootstrap: boolean
  /** The node's home directory on its host; relative file destinations live under it. */
  home: string
}

export interface ClusterView {
  name: string
  description: string
  spec_hash: string
  revision: number
}

export interface LinkView {
  /** The linked cluster's name. */
  cluster: string
  env: Record<string, EnvValue>
  hosts: Record<string, HostView[]>
  /**
   * Its members joining or leaving in an operation now under way (as its own nodes see them): a cluster in front of
   * it (a load balancer) leaves them out until they are ready, and before they go.
   */
  adding_hosts: Record<string, HostView[]>
  deleting_hosts: Record<string, HostView[]>
}

/** Everything a template can reference. Host lists are sorted by sid. */
export interface NodeView {
  self: HostView
  /** Alias of `self`, as confd templates name it. */
  host: HostView
  cluster: ClusterView
  env: Record<string, EnvValue>
  hosts: Record<string, HostView[]>
  links: Record<string, LinkView>
  adding_hosts: Record<string, HostView[]>
  deleting_hosts: Record<string, HostView[]>
}

export const HOST_FIELDS: ReadonlyArray<keyof HostView> = [
  'node_id', 'role', 'sid', 'ip', 'host', 'image', 'cpu', 'memory', 'memory_bytes', 'disk', 'disk_bytes', 'bootstrap', 'home',
]
export const CLUSTER_FIELDS: ReadonlyArray<keyof ClusterView> = ['name', 'description', 'spec_hash', 'revision']
export const VIEW_ROOTS: ReadonlyArray<keyof NodeView> = ['self', 'host', 'cluster', 'env', 'hosts', 'links', 'adding_hosts', 'deleting_hosts']
