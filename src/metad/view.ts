// What metad serves under /self: a node's view (the planner's, src/plan/node-view.ts) laid out as QingCloud metad paths.
//
// The layout: host, hosts/<role>/<node-id>, cluster, env, links/<name>/{cluster,env,hosts,adding-hosts,deleting-hosts}, adding-hosts, deleting-hosts.
// A cluster's shared parts are serialised once per registry change and reused for every node and request: with 1,000
// callers of one cluster woken together, each answer is then string joins, not a serialisation of the whole cluster.
import {createHash} from 'node:crypto'
import {linkView, registeredView, type SharedView} from '../plan/index.js'
import type {ClusterState} from '../plan/types.js'
import {HOST_FIELDS, type HostView, type LinkView} from '../render/view.js'

/** A JSON value of the served tree: leaves are strings, numbers and booleans. */
export type Tree = string | number | boolean | {[name: string]: Tree}

/** Top-level sections of /self, in the order answers list them. */
export const SECTIONS = ['host', 'hosts', 'cluster', 'env', 'links', 'adding-hosts', 'deleting-hosts'] as const
export type Section = (typeof SECTIONS)[number]

/** One registered cluster as metad holds it (see mirror.ts). */
export interface ClusterEntry {
  name: string
  /** Mod revision of `cluster/revision`: the registry revision of the commit that made this state. */
  version: number
  state: ClusterState
  /** `[ip, node-id]` from the cluster's `mapping/` keys, as far as its tree agrees. */
  addresses: ReadonlyArray<[string, string]>
}

interface Part {
  tree: Tree
  json: string
  /** Short digest of `json`: what a waiting caller compares. */
  digest: string
}

/** The serialised parts of one cluster entry, shared by all its nodes and by the clusters that link to it. */
export interface Parts {
  shared: SharedView
  cluster: Part
  env: Part
  hosts: Part
  adding: Part
  deleting: Part
  /** What a cluster linking to this one sees (its secret parameters left out). */
  link: Part
  /** Node id → its host entry. */
  nodes: Map<string, Part>
  /** Link names and the clusters they name, sorted by name (the order answers list them). */
  links: Array<[string, string]>
  /** Node id → the head of its whole answer, `{"host":…,`, as bytes (made when first served). */
  heads: Map<string, Buffer>
  /** The rest of the whole answer, the same for every node of the cluster (valid while the linked entries are the same). */
  tail: Tail | undefined
}

/**
 * What follows a node's own `host` in its whole `/self` answer: every other section, shared by all nodes of a cluster.
 * A node's answer is its head and this tail written together, so waking 1,000 callers encodes no answer of its own:
 * building and encoding a 6 KB answer per node was as much of a wake-up round as sending them all.
 */
interface Tail {
  links: ReadonlyArray<[string, ClusterEntry]>
  /** Digests of the sections after `host`: a node's fingerprint is its host's digest and this. */
  fingerprint: string
  /** Kept as bytes, outside the collected heap; made when first served (a waiting caller compares the fingerprint). */
  bytes: Buffer | undefined
}

const cache = new WeakMap<ClusterEntry, Parts>()

function part(tree: Tree): Part {
  const json = JSON.stringify(tree)
  return {tree, json, digest: createHash('sha1').update(json).digest('base64url').slice(0, 16)}
}

function hostTree(host: HostView): {[name: string]: Tree} {
  const out: {[name: string]: Tree} = {}
  for (const field of HOST_FIELDS) out[field] = host[field]
  return out
}

/** `hosts.<role>` lists (sid order) as `<role>/<node-id>/...`; node ids keep the sid order as object keys. */
function hostsTree(lists: Record<string, HostView[]>): {[name: string]: Tree} {
  const out: {[name: string]: Tree} = {}
  for (const [role, hosts] of Object.entries(lists)) {
    const byId: {[name: string]: Tree} = {}
    for (const host of hosts) byId[host.node_id] = hostTree(host)
    out[role] = byId
  }
  return out
}

function linkTree(link: LinkView): Tree {
  return {cluster: link.cluster, env: {...link.env}, hosts: hostsTree(link.hosts), 'adding-hosts': hostsTree(link.adding_hosts), 'deleting-hosts': hostsTree(link.deleting_hosts)}
}

export function partsOf(entry: ClusterEntry): Parts {
  let parts = cache.get(entry)
  if (parts) return parts
  const shared = registeredView(entry.state, {})
  const nodes = new Map<string, Part>()
  for (const list of Object.values(shared.hosts)) for (const host of list) nodes.set(host.node_id, part(hostTree(host)))
  parts = {
    shared,
    cluster: part({...shared.cluster}),
    env: part({...shared.env}),
    hosts: part(hostsTree(shared.hosts)),
    adding: part(hostsTree(shared.adding_hosts)),
    deleting: part(hostsTree(shared.deleting_hosts)),
    link: part(linkTree(linkView(entry.state))),
    nodes,
    links: Object.entries(entry.state.links).sort(([a], [b]) => (a < b ? -1 : 1)),
    heads: new Map(),
    tail: undefined,
  }
  cache.set(entry, parts)
  return parts
}

/** A node's whole view as metad answers it: its own cluster's parts plus the registered clusters it links to. */
export interface NodeAnswer {
  cluster: ClusterEntry
  nodeId: string
  /** Link name → the linked cluster's entry (links to clusters that are not registered are left out). */
  links: Array<[string, ClusterEntry]>
  /** The registry revision the view is read at: the newest commit among the clusters it is made of. */
  version: number
}

export function answerFor(cluster: ClusterEntry, nodeId: string, lookup: (name: string) => ClusterEntry | undefined): NodeAnswer | undefined {
  const parts = partsOf(cluster)
  if (!parts.nodes.has(nodeId)) return undefined
  const links: Array<[string, ClusterEntry]> = []
  let version = cluster.version
  for (const [name, target] of parts.links) {
    const entry = lookup(target)
    if (!entry) continue
    links.push([name, entry])
    version = Math.max(version, entry.version)
  }
  return {cluster, nodeId, links, version}
}

function sectionPart(answer: NodeAnswer, section: Exclude<Section, 'links'>): Part {
  const parts = partsOf(answer.cluster)
  switch (section) {
    case 'host': return parts.nodes.get(answer.nodeId)!
    case 'hosts': return parts.hosts
    case 'cluster': return parts.cluster
    case 'env': return parts.env
    case 'adding-hosts': return parts.adding
    case 'deleting-hosts': return parts.deleting
  }
}

/** The whole /self tree (shared sub-objects: read-only). */
export function selfTree(answer: NodeAnswer): {[name: string]: Tree} {
  const out: {[name: string]: Tree} = {}
  for (const section of SECTIONS) {
    if (section === 'links') {
      const links: {[name: string]: Tree} = {}
      for (const [name, entry] of answer.links) links[name] = partsOf(entry).link.tree
      out.links = links
    } else out[section] = sectionPart(answer, section).tree
  }
  return out
}

function sameLinks(a: ReadonlyArray<[string, ClusterEntry]>, b: ReadonlyArray<[string, ClusterEntry]>): boolean {
  return a.length === b.length && a.every(([name, entry], i) => name === b[i]![0] && entry === b[i]![1])
}

/** The sections after `host`, shared by the cluster's nodes: digested once per change of the clusters it is made of. */
function tail(answer: NodeAnswer): Tail {
  const parts = partsOf(answer.cluster)
  if (parts.tail && sameLinks(parts.tail.links, answer.links)) return parts.tail
  return (parts.tail = {links: answer.links, bytes: undefined, fingerprint: SECTIONS.slice(1).map((s) => sectionDigest(answer, s)).join('|')})
}

/**
 * `JSON.stringify(selfTree(answer))` as the bytes to write, in order: the node's head and its cluster's tail, both
 * joined from the pre-serialised parts once per change.
 */
export function selfChunks(answer: NodeAnswer): [Buffer, Buffer] {
  const parts = partsOf(answer.cluster)
  let head = parts.heads.get(answer.nodeId)
  if (!head) parts.heads.set(answer.nodeId, (head = Buffer.from(`{"host":${parts.nodes.get(answer.nodeId)!.json},`)))
  const rest = tail(answer)
  return [head, (rest.bytes ??= Buffer.from(`${tailJson(answer)}}`))]
}

function tailJson(answer: NodeAnswer): string {
  const fields: string[] = []
  for (const section of SECTIONS.slice(1)) {
    const json = section === 'links'
      ? `{${answer.links.map(([name, entry]) => `${JSON.stringify(name)}:${partsOf(entry).link.json}`).join(',')}}`
      : sectionPart(answer, section as Exclude<Section, 'links'>).json
    fields.push(`${JSON.stringify(section)}:${json}`)
  }
  return fields.join(',')
}

/**
 * What a waiting caller compares to tell whether its answer changed: digests of the sections its path reads (all of
 * them for /self itself), so a change elsewhere, even in its own cluster, does not wake it.
 */
export function fingerprint(answer: NodeAnswer, section: Section | undefined): string {
  return section ? sectionDigest(answer, section) : `${sectionDigest(answer, 'host')}|${tail(answer).fingerprint}`
}

function sectionDigest(answer: NodeAnswer, section: Section): string {
  return section === 'links' ? answer.links.map(([name, entry]) => `${name}=${partsOf(entry).link.digest}`).join(',') : sectionPart(answer, section).digest
}

/** The subtree at `path` (segments below /self), or undefined when there is nothing there. */
export function subtree(tree: Tree, path: readonly string[]): Tree | undefined {
  let at: Tree | undefined = tree
  for (const segment of path) {
    if (at === undefined || typeof at !== 'object' || !Object.hasOwn(at, segment)) return undefined
    at = at[segment]
  }
  return at
}
