// What metad serves a node's agent at GET /agent: the planner's own node view (src/plan/node-view.ts) with the role's
// file specs and registered templates, read at one revision, so the agent renders exactly what `shoal render` shows.
//
// Serialised from per-cluster parts made once per registry change (as /self is), then joined per node.
import {createHash} from 'node:crypto'
import {linkView} from '../plan/index.js'
import type {FileSpec} from '../spec/types.js'
import type {NodeView} from '../render/view.js'
import {fingerprint as selfFingerprint, partsOf, type ClusterEntry, type NodeAnswer} from './view.js'

/** The body of GET /agent, as the agent reads it. */
export interface AgentPayload {
  /** The registry revision the view was read at (as X-Shoal-Revision). */
  revision: number
  cluster: string
  node: string
  view: NodeView
  /** The role's files, in spec order. */
  files: FileSpec[]
  /** Template path → source, for the templates `files` name. */
  templates: Record<string, string>
}

interface AgentParts {
  /** `"cluster":…,"env":…,"hosts":…,"adding_hosts":…,"deleting_hosts":…` of the node view. */
  shared: string
  /** What a cluster linking to this one sees, as the planner's LinkView. */
  link: string
  /** Node id → its HostView as JSON. */
  self: Map<string, string>
  /** Role → `"files":…,"templates":…` and its digest. */
  roles: Map<string, {json: string; digest: string}>
}

const cache = new WeakMap<ClusterEntry, AgentParts>()

function agentParts(entry: ClusterEntry): AgentParts {
  const cached = cache.get(entry)
  if (cached) return cached
  const {shared} = partsOf(entry)
  const self = new Map<string, string>()
  for (const list of Object.values(shared.hosts)) for (const host of list) self.set(host.node_id, JSON.stringify(host))
  const roles = new Map<string, {json: string; digest: string}>()
  for (const [role, spec] of Object.entries(entry.state.spec?.roles ?? {})) {
    const files = spec.files ?? []
    const templates: Record<string, string> = {}
    for (const file of files) {
      const source = entry.state.templates[file.template]
      if (source !== undefined) templates[file.template] = source
    }
    const json = `"files":${JSON.stringify(files)},"templates":${JSON.stringify(templates)}`
    roles.set(role, {json, digest: createHash('sha1').update(json).digest('base64url').slice(0, 16)})
  }
  const made: AgentParts = {
    shared: [
      `"cluster":${JSON.stringify(shared.cluster)}`,
      `"env":${JSON.stringify(shared.env)}`,
      `"hosts":${JSON.stringify(shared.hosts)}`,
      `"adding_hosts":${JSON.stringify(shared.adding_hosts)}`,
      `"deleting_hosts":${JSON.stringify(shared.deleting_hosts)}`,
    ].join(','),
    link: JSON.stringify(linkView(entry.state)),
    self,
    roles,
  }
  cache.set(entry, made)
  return made
}

const NO_FILES = {json: '"files":[],"templates":{}', digest: 'none'}

function roleOf(answer: NodeAnswer): string {
  for (const [role, list] of Object.entries(partsOf(answer.cluster).shared.hosts)) if (list.some((h) => h.node_id === answer.nodeId)) return role
  return ''
}

/** The agent's whole answer as JSON (see AgentPayload). */
export function agentBody(answer: NodeAnswer): string {
  const parts = agentParts(answer.cluster)
  const self = parts.self.get(answer.nodeId)!
  const links = answer.links.map(([name, entry]) => `${JSON.stringify(name)}:${agentParts(entry).link}`).join(',')
  const role = parts.roles.get(roleOf(answer)) ?? NO_FILES
  return `{"revision":${answer.version},"cluster":${JSON.stringify(answer.cluster.name)},"node":${JSON.stringify(answer.nodeId)},`
    + `"view":{"self":${self},"host":${self},${parts.shared},"links":{${links}}},${role.json}}`
}

/** What a waiting agent compares: its whole view's fingerprint and its role's files and templates. */
export function agentFingerprint(answer: NodeAnswer): string {
  const role = agentParts(answer.cluster).roles.get(roleOf(answer)) ?? NO_FILES
  return `${selfFingerprint(answer, undefined)}|${role.digest}`
}
