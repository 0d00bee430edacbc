// Builds registry trees shaped like the planner's output (≈15 keys per node + a mapping key), for tests and benchmarks.
import {clusterPrefix, clusterRevisionKey, mappingKey} from '../../src/registry/keys.js'

export const KEYS_PER_NODE = 15

export interface TreeNode {role: string; index: number; ip: string}

export function nodeId(cluster: string, role: string, index: number): string {
  return `${cluster}-${role}-${index}`
}

/** The store keys of one node: its host entry and its IP mapping. */
export function nodeKeys(cluster: string, node: TreeNode): Record<string, string> {
  const id = nodeId(cluster, node.role, node.index)
  const base = `${clusterPrefix(cluster)}hosts/${node.role}/${id}/`
  const fields: Record<string, string> = {
    ip: node.ip,
    sid: String(node.index),
    node_id: id,
    role: node.role,
    cpu: '1',
    memory: '1073741824',
    disk: '10737418240',
    image: 'zookeeper-3.8',
    status: 'active',
    created: '2024-01-01T00:00:00.000Z',
    home: `/srv/${id}`,
    host: `host-${node.index % 50}`,
    bootstrap: node.index === 1 ? 'true' : 'false',
    zone: `z${node.index % 3}`,
    version: '1',
  }
  const keys: Record<string, string> = {}
  for (const [field, value] of Object.entries(fields)) keys[`${base}${field}`] = value
  keys[mappingKey(node.ip)] = `${cluster}/${id}`
  return keys
}

export function nodeIp(index: number): string {
  return `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`
}

/** The full tree of a cluster with `count` nodes of one role, at cluster revision `revision`. */
export function clusterTree(cluster: string, count: number, revision = 1, role = 'zk'): Record<string, string> {
  const keys: Record<string, string> = {
    [`${clusterPrefix(cluster)}cluster/name`]: cluster,
    [`${clusterPrefix(cluster)}cluster/spec_hash`]: `hash-${revision}`,
    [clusterRevisionKey(cluster)]: String(revision),
  }
  for (let i = 1; i <= count; i++) Object.assign(keys, nodeKeys(cluster, {role, index: i, ip: nodeIp(i)}))
  return keys
}

/** One group per node (its host keys and its mapping key), so a commit never splits a node across transactions. */
export function nodeGroups(tree: Record<string, string>): string[][] {
  const groups = new Map<string, string[]>()
  for (const [key, value] of Object.entries(tree)) {
    const host = /^clusters\/[^/]+\/hosts\/[^/]+\/([^/]+)\//.exec(key)
    const id = host ? host[1]! : key.startsWith('mapping/') ? value.slice(value.indexOf('/') + 1) : undefined
    if (id) groups.set(id, [...(groups.get(id) ?? []), key])
  }
  return [...groups.values()]
}

/** The puts and deletes that turn `from` into `to`. */
export function treeDiff(from: Record<string, string>, to: Record<string, string>): {puts: Record<string, string>; deletes: string[]} {
  const puts: Record<string, string> = {}
  for (const [key, value] of Object.entries(to)) if (from[key] !== value) puts[key] = value
  const deletes = Object.keys(from).filter(key => !(key in to))
  return {puts, deletes}
}

/** The tree as readCluster returns it: keys relative to the cluster prefix, other clusters' and mapping keys left out. */
export function relativeTree(cluster: string, tree: Record<string, string>): Record<string, string> {
  const prefix = `clusters/${cluster}/`
  return Object.fromEntries(Object.entries(tree).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]))
}
