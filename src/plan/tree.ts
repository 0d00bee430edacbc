// The metadata tree: a cluster state as flat sorted key -> value pairs, back again, and the writes between two trees.
//
// Keys are relative to the registry prefix (the registry prepends its configurable prefix to every key):
//   clusters/<c>/cluster/{name,description,spec_hash,revision,spec,roles}   spec = canonical JSON, roles = declared order
//   clusters/<c>/cluster/templates/<template path>                           template sources
//   clusters/<c>/hosts/<role>/<node-id>/<HostView field | state>
//   clusters/<c>/adding-hosts/<role>/<node-id>/<HostView field>              only while an operation is in flight
//   clusters/<c>/deleting-hosts/<role>/<node-id>/<HostView field>            only while an operation is in flight
//   clusters/<c>/env/<name>, clusters/<c>/env-secret/<name> = "true"         secret values are stored, marked, redacted on output
//   clusters/<c>/env-source/<name>                                           where the value came from (`default` or what gave it)
//   clusters/<c>/links/<name> = <other cluster>
//   clusters/<c>/ids/<role>/{sid_high,node_seq,released}                     released = ascending comma-separated sids
//   clusters/<c>/files/<node-id>/<dest, URI-encoded so it is one key segment>
//   mapping/<ip>/<c>/<node-id> = <c>/<node-id>
// The mapping is one key per node, not per ip: an ip can hold several nodes (max_per_host > 1, several roles or
// clusters on one host), and each cluster's tree must own only its own keys so its writes never touch another's.
// All keys of one node share the prefix `.../<node-id>/`, so a registry can keep them in one transaction.
import {HOST_FIELDS, type HostView} from '../render/view.js'
import type {ClusterSpec, EnvValue} from '../spec/types.js'
import {canonicalJson} from './canonical.js'
import type {ClusterState, NodeRecord, RoleIds, TreeChanges} from './types.js'

export function clusterRoot(cluster: string): string {
  return `clusters/${cluster}/`
}

function fieldText(value: string | number | boolean): string {
  return typeof value === 'string' ? value : String(value)
}

/** Sorted [key, value] pairs: the planner's working form of a tree (diffs are one merge pass). */
export type TreeEntries = [string, string][]

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const NODE_FIELDS = [...HOST_FIELDS, 'state'].sort(byText) as (keyof HostView | 'state')[]
const MARKER_FIELDS = [...HOST_FIELDS].sort(byText)

/**
 * Key strings shared between the trees of one plan: the same key is then the same string object in every tree,
 * so building trees allocates less and diffing them compares most keys by identity.
 */
export class TreeKeys {
  private readonly nodeKeys = new Map<string, Map<string, string[]>>()
  private readonly fileKeys = new Map<string, Map<string, string>>()
  /** Entries already built for a node record object, per section: states sharing records share entries. */
  private readonly blocks = new WeakMap<object, Map<string, TreeEntries>>()

  block(node: object, top: string, build: () => TreeEntries): TreeEntries {
    let byTop = this.blocks.get(node)
    if (!byTop) this.blocks.set(node, (byTop = new Map()))
    let entries = byTop.get(top)
    if (!entries) byTop.set(top, (entries = build()))
    return entries
  }

  /** Keys `<prefix()><field>` of one node in one section; `prefix` is only called the first time. */
  node(top: string, nodeId: string, prefix: () => string, fields: readonly string[]): string[] {
    let byNode = this.nodeKeys.get(top)
    if (!byNode) this.nodeKeys.set(top, (byNode = new Map()))
    let keys = byNode.get(nodeId)
    if (!keys) {
      const head = prefix()
      byNode.set(nodeId, (keys = fields.map((f) => head + f)))
    }
    return keys
  }

  file(prefix: string, nodeId: string, dest: string): string {
    let byDest = this.fileKeys.get(nodeId)
    if (!byDest) this.fileKeys.set(nodeId, (byDest = new Map()))
    let key = byDest.get(dest)
    if (key === undefined) byDest.set(dest, (key = prefix + encodeURIComponent(dest)))
    return key
  }
}

/**
 * The tree of a cluster state as sorted entries. Big sections are emitted in order rather than sorted key by key:
 * a segment followed by `/` is ordered by `segment + '/'`, which is what comparing whole keys does.
 */
export function treeEntries(state: ClusterState, keys: TreeKeys = new TreeKeys()): TreeEntries {
  const root = clusterRoot(state.name)
  const sections = new Map<string, TreeEntries>()
  const small = (top: string, pairs: [string, string][]): void => {
    sections.set(top, pairs.map(([rest, value]) => [`${root}${top}/${rest}`, value] as [string, string]).sort((a, b) => byText(a[0], b[0])))
  }
  small('cluster', [
    ['name', state.name],
    ['description', state.description],
    ['spec_hash', state.specHash],
    ['revision', String(state.revision)],
    ...(state.spec ? [['spec', canonicalJson(state.spec)], ['roles', Object.keys(state.spec.roles).join(',')]] as [string, string][] : []),
    ...Object.entries(state.templates).map(([path, source]) => [`templates/${path}`, source] as [string, string]),
  ])
  small('env', Object.entries(state.env).map(([name, value]) => [name, fieldText(value)]))
  small('env-secret', state.secretEnv.map((name) => [name, 'true']))
  small('env-source', Object.entries(state.envSources ?? {}))
  small('links', Object.entries(state.links))
  small('ids', Object.entries(state.ids).flatMap(([role, ids]) => [
    [`${role}/sid_high`, String(ids.sidHigh)],
    [`${role}/node_seq`, String(ids.nodeSeq)],
    [`${role}/released`, ids.released.join(',')],
  ]))

  // Nodes ordered as their keys sort: by `role/`, then by `node-id/`.
  const ordered = state.nodes.map((node) => ({node, sortKey: `${node.role}/${node.node_id}/`})).sort((a, b) => byText(a.sortKey, b.sortKey))
  const nodeSection = (top: string, fields: readonly (keyof HostView | 'state')[], include: (n: NodeRecord) => boolean): void => {
    const out: TreeEntries = []
    for (const {node, sortKey} of ordered) {
      if (!include(node)) continue
      const block = keys.block(node, top, () => {
        const nodeKeys = keys.node(top, node.node_id, () => `${root}${top}/${sortKey}`, fields)
        return fields.map((field, i) => [nodeKeys[i]!, fieldText(node[field])] as [string, string])
      })
      for (const entry of block) out.push(entry)
    }
    sections.set(top, out)
  }
  const adding = new Set(state.adding)
  const deleting = new Set(state.deleting)
  nodeSection('hosts', NODE_FIELDS, () => true)
  nodeSection('adding-hosts', MARKER_FIELDS, (n) => adding.has(n.node_id))
  nodeSection('deleting-hosts', MARKER_FIELDS, (n) => deleting.has(n.node_id))

  const files: TreeEntries = []
  for (const node of Object.keys(state.files).map((id) => `${id}/`).sort(byText)) {
    const prefix = `${root}files/${node}`
    const id = node.slice(0, -1)
    const dests = Object.entries(state.files[id]!).map(([dest, content]) => [keys.file(prefix, id, dest), content] as [string, string])
    for (const entry of dests.sort((a, b) => byText(a[0], b[0]))) files.push(entry)
  }
  sections.set('files', files)

  const mapping: TreeEntries = state.nodes.map((n) => [keys.node('mapping', n.node_id, () => `mapping/${n.ip}/${state.name}/`, [n.node_id])[0]!, `${state.name}/${n.node_id}`])
  const out: TreeEntries = []
  for (const top of [...sections.keys()].sort((a, b) => byText(`${a}/`, `${b}/`))) for (const entry of sections.get(top)!) out.push(entry)
  for (const entry of mapping.sort((a, b) => byText(a[0], b[0]))) out.push(entry)
  return out
}

/** The tree of a cluster state, keys sorted. */
export function treeOf(state: ClusterState): Record<string, string> {
  return Object.fromEntries(treeEntries(state))
}

/** Writes turning one sorted tree into another, in one merge pass. */
export function diffEntries(before: TreeEntries, after: TreeEntries): TreeChanges {
  const puts: [string, string][] = []
  const deletes: string[] = []
  let i = 0
  let j = 0
  while (i < before.length && j < after.length) {
    const b = before[i]!
    const a = after[j]!
    if (a === b) {
      i++
      j++
    } else if (a[0] === b[0]) {
      if (a[1] !== b[1]) puts.push(a)
      i++
      j++
    } else if (a[0] < b[0]) {
      puts.push(a)
      j++
    } else {
      deletes.push(b[0])
      i++
    }
  }
  for (; j < after.length; j++) puts.push(after[j]!)
  for (; i < before.length; i++) deletes.push(before[i]![0])
  return {puts, deletes}
}

/** Raised when a registered tree cannot be decoded: the registry holds something shoal did not write. */
export class TreeDecodeError extends Error {
  readonly code = 'tree-corrupt'
  constructor(message: string) {
    super(message)
    this.name = 'TreeDecodeError'
  }
}

const NUMBER_FIELDS = new Set<string>(['sid', 'cpu', 'memory_bytes', 'disk_bytes'])
const NODE_STATES = new Set<string>(['pending', 'active', 'leaving'])

function decodeNumber(key: string, text: string): number {
  const n = Number(text)
  if (text === '' || !Number.isFinite(n)) throw new TreeDecodeError(`${key}: expected a number, found ${JSON.stringify(text)}`)
  return n
}

/**
 * Decode a cluster's tree (keys as `treeOf` writes them; keys of other clusters and `mapping/` are ignored).
 * `stateFromTree(name, treeOf(state))` deep-equals `state`.
 */
export function stateFromTree(clusterName: string, kvs: Record<string, string>): ClusterState {
  const root = clusterRoot(clusterName)
  const cluster: Record<string, string> = {}
  const templates: Record<string, string> = {}
  const rawEnv: Record<string, string> = {}
  const secretEnv: string[] = []
  const envSources: Record<string, string> = {}
  const links: Record<string, string> = {}
  const hostFields = new Map<string, Record<string, string>>()
  const adding = new Set<string>()
  const deleting = new Set<string>()
  const ids: Record<string, RoleIds> = {}
  const files: Record<string, Record<string, string>> = {}

  for (const [key, value] of Object.entries(kvs)) {
    if (!key.startsWith(root)) continue
    const parts = key.slice(root.length).split('/')
    const [top, a, b, c] = parts
    if (top === 'cluster' && a === 'templates' && parts.length > 2) templates[parts.slice(2).join('/')] = value
    else if (top === 'cluster' && parts.length === 2) cluster[a!] = value
    else if (top === 'env' && parts.length === 2) rawEnv[a!] = value
    else if (top === 'env-secret' && parts.length === 2) {
      if (value === 'true') secretEnv.push(a!)
    } else if (top === 'env-source' && parts.length === 2) envSources[a!] = value
    else if (top === 'links' && parts.length === 2) links[a!] = value
    else if (top === 'hosts' && parts.length === 4) {
      const fields = hostFields.get(b!) ?? {}
      fields[c!] = value
      hostFields.set(b!, fields)
    } else if (top === 'adding-hosts' && parts.length === 4) adding.add(b!)
    else if (top === 'deleting-hosts' && parts.length === 4) deleting.add(b!)
    else if (top === 'ids' && parts.length === 3) {
      const rec = (ids[a!] ??= {sidHigh: 0, nodeSeq: 0, released: []})
      if (b === 'sid_high') rec.sidHigh = decodeNumber(key, value)
      else if (b === 'node_seq') rec.nodeSeq = decodeNumber(key, value)
      else if (b === 'released') rec.released = value === '' ? [] : value.split(',').map((s) => decodeNumber(key, s))
    } else if (top === 'files' && parts.length === 3) {
      ;(files[a!] ??= {})[decodeURIComponent(b!)] = value
    }
  }

  let spec: ClusterSpec | undefined
  if (cluster.spec !== undefined) {
    try {
      spec = JSON.parse(cluster.spec) as ClusterSpec
    } catch {
      throw new TreeDecodeError(`${root}cluster/spec: not JSON`)
    }
    // Canonical JSON sorts keys; the declared role order drives lifecycle order, so restore it.
    const roles = spec.roles
    const order = cluster.roles ? cluster.roles.split(',').filter((r) => r in roles) : []
    spec.roles = Object.fromEntries([...order, ...Object.keys(roles).filter((r) => !order.includes(r))].map((r) => [r, roles[r]!]))
  }

  const env: Record<string, EnvValue> = {}
  for (const [name, text] of Object.entries(rawEnv)) {
    const type = spec?.env?.[name]?.type
    env[name] = type === 'integer' || type === 'number' ? decodeNumber(`${root}env/${name}`, text) : type === 'boolean' ? text === 'true' : text
  }

  const nodes: NodeRecord[] = []
  for (const [id, fields] of hostFields) {
    const node: Record<string, string | number | boolean> = {}
    for (const field of NODE_FIELDS) {
      const text = fields[field]
      if (text === undefined) throw new TreeDecodeError(`${root}hosts/.../${id}: missing field ${field}`)
      node[field] = NUMBER_FIELDS.has(field) ? decodeNumber(`${root}hosts/.../${id}/${field}`, text) : field === 'bootstrap' ? text === 'true' : text
    }
    if (!NODE_STATES.has(node.state as string)) throw new TreeDecodeError(`${root}hosts/.../${id}/state: unknown state ${JSON.stringify(node.state)}`)
    nodes.push(node as unknown as NodeRecord)
  }
  nodes.sort(byRoleThenSid)

  return {
    name: cluster.name ?? clusterName,
    description: cluster.description ?? '',
    specHash: cluster.spec_hash ?? '',
    revision: cluster.revision === undefined ? 0 : decodeNumber(`${root}cluster/revision`, cluster.revision),
    ...(spec ? {spec} : {}),
    templates,
    env,
    secretEnv: secretEnv.sort(),
    ...(Object.keys(envSources).length ? {envSources} : {}),
    links,
    nodes,
    adding: [...adding].sort(),
    deleting: [...deleting].sort(),
    ids,
    files,
  }
}

export function byRoleThenSid(a: NodeRecord, b: NodeRecord): number {
  return a.role < b.role ? -1 : a.role > b.role ? 1 : a.sid - b.sid
}

/** Registry writes turning `before` into `after` (any key order): changed or new keys, and keys that disappear, sorted. */
export function diffTrees(before: Record<string, string>, after: Record<string, string>): TreeChanges {
  const sorted = (tree: Record<string, string>): TreeEntries => Object.entries(tree).sort((a, b) => byText(a[0], b[0]))
  return diffEntries(sorted(before), sorted(after))
}

/** The node a key belongs to (hosts, adding/deleting-hosts, files, mapping), or undefined for cluster-wide keys. */
export function nodeOfKey(key: string): string | undefined {
  const parts = key.split('/')
  if (parts[0] === 'mapping') return parts[3]
  if (parts[0] !== 'clusters') return undefined
  const top = parts[2]
  if (top === 'hosts' || top === 'adding-hosts' || top === 'deleting-hosts') return parts[4]
  if (top === 'files') return parts[3]
  return undefined
}

export type TreeOp = {type: 'put'; key: string; value: string} | {type: 'delete'; key: string}

/**
 * Split changes into chunks of at most `maxOps` operations (etcd allows 128 per transaction) without splitting
 * one node's keys across chunks (a node with more keys than `maxOps` gets a chunk of its own, over the limit).
 */
export function chunkChanges(changes: TreeChanges, maxOps: number): TreeOp[][] {
  const groups = new Map<string, TreeOp[]>()
  const add = (op: TreeOp): void => {
    const node = nodeOfKey(op.key)
    const group = node === undefined ? `key:${op.key}` : `node:${node}`
    const list = groups.get(group)
    if (list) list.push(op)
    else groups.set(group, [op])
  }
  for (const [key, value] of changes.puts) add({type: 'put', key, value})
  for (const key of changes.deletes) add({type: 'delete', key})
  const chunks: TreeOp[][] = []
  let current: TreeOp[] = []
  for (const ops of groups.values()) {
    if (current.length > 0 && current.length + ops.length > maxOps) {
      chunks.push(current)
      current = []
    }
    current.push(...ops)
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}
