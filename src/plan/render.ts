// Rendering: parse each template once, build node views that share their host lists, render every node's files
// within one time budget, and mark the files whose template reads a secret (sensitive as a whole).
import {liquid, parseTemplate, renderTemplate, type ParsedTemplate, type TemplateBudget} from '../render/engine.js'
import type {ClusterView, HostView, LinkView, NodeView} from '../render/view.js'
import {DEFAULTS, type ClusterSpec, type EnvValue, type FileSpec} from '../spec/types.js'
import {sha256} from './canonical.js'
import type {ClusterState, PlanError, RenderedFile} from './types.js'

/** What every node of one phase of an operation sees alike; a node's view adds only `self`/`host`. */
export type SharedView = Omit<NodeView, 'self' | 'host'>

/** Host lists keyed by every given role (empty when none), each sorted by sid. */
export function byRole(nodes: readonly HostView[], roles: readonly string[]): Record<string, HostView[]> {
  const out: Record<string, HostView[]> = {}
  for (const role of roles) out[role] = []
  for (const node of nodes) (out[node.role] ??= []).push(node)
  for (const list of Object.values(out)) list.sort((a, b) => a.sid - b.sid)
  return out
}

export function sharedView(cluster: ClusterView, env: Record<string, EnvValue>, links: Record<string, LinkView>, hosts: Record<string, HostView[]>, adding: Record<string, HostView[]>, deleting: Record<string, HostView[]>): SharedView {
  return {cluster, env, hosts, links, adding_hosts: adding, deleting_hosts: deleting}
}

function position(err: unknown): {line?: number; col?: number} {
  const pos = (err as {token?: {getPosition?: () => [number, number]}}).token?.getPosition?.()
  return pos ? {line: pos[0], col: pos[1]} : {}
}

/** liquidjs appends ", line:N, col:M" to messages; the position is reported separately. */
function bareMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/, line:\d+, col:\d+$/, '')
}

/** Parse every template the spec's roles reference (once each). */
export function compileTemplates(spec: ClusterSpec, templates: ReadonlyMap<string, string>): {compiled: Map<string, ParsedTemplate>; errors: PlanError[]} {
  const compiled = new Map<string, ParsedTemplate>()
  const errors: PlanError[] = []
  for (const [role, roleSpec] of Object.entries(spec.roles)) {
    for (const file of roleSpec.files ?? []) {
      if (compiled.has(file.template) || errors.some((e) => e.template === file.template)) continue
      const source = templates.get(file.template)
      if (source === undefined) {
        errors.push({code: 'template-missing', role, template: file.template, message: `role ${role}: template ${file.template} was not provided`})
        continue
      }
      try {
        compiled.set(file.template, parseTemplate(source))
      } catch (err) {
        const at = position(err)
        errors.push({code: 'template-parse', role, template: file.template, ...at, message: `${file.template}${at.line ? `:${at.line}:${at.col}` : ''}: ${bareMessage(err)}`})
      }
    }
  }
  return {compiled, errors}
}

/**
 * Which secrets a template could read: the cluster's secret env names, and per link the linked cluster's; `unknown`
 * when the linked clusters are not at hand (`get` reads one cluster): then any read of a link's env counts.
 */
export interface SecretNames {
  env: ReadonlySet<string>
  links: ReadonlyMap<string, ReadonlySet<string>> | 'unknown'
}

type Segment = string | number | Segment[]

/**
 * The templates that may read a secret, found statically (liquid's analysis of what each template reads from the
 * view): `env.<secret>`, `links.<l>.env.<secret>`, or the whole `env`/`links` object or a computed name (`env[x]`)
 * while secrets exist. Whatever such a template renders may carry the secret in a form exact-value redaction cannot
 * find (`upcase`, `base64_encode`, `split`...), so its files are hidden whole.
 */
export function secretReaders(compiled: ReadonlyMap<string, ParsedTemplate>, secrets: SecretNames): Set<string> {
  const sensitive = new Set<string>()
  const links = secrets.links
  const anyLinkSecret = links === 'unknown' || [...links.values()].some((names) => names.size > 0)
  if (secrets.env.size === 0 && !anyLinkSecret) return sensitive
  const reads = (segments: Segment[]): boolean => {
    const [root, name, field, key] = segments
    if (root === 'env') return secrets.env.size > 0 && (typeof name !== 'string' || secrets.env.has(name))
    if (root !== 'links' || !anyLinkSecret) return false
    if (typeof name !== 'string') return true
    const names = links === 'unknown' ? undefined : links.get(name)
    if (links !== 'unknown' && (!names || names.size === 0)) return false
    if (field === undefined || typeof field !== 'string') return true
    return field === 'env' && (typeof key !== 'string' || names === undefined || names.has(key))
  }
  for (const [path, parsed] of compiled) {
    const analysis = liquid().analyzeSync(parsed, {partials: false})
    if (Object.values(analysis.globals).some((variables) => variables.some((v) => reads(v.toArray() as Segment[])))) sensitive.add(path)
  }
  return sensitive
}

/** Per role, the file destinations whose template reads a secret in `state` (its registered spec and templates). */
export function registeredSensitive(state: ClusterState, links: SecretNames['links']): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  if (!state.spec) return out
  const compiled = new Map<string, ParsedTemplate>()
  for (const [path, source] of Object.entries(state.templates)) {
    try {
      compiled.set(path, parseTemplate(source))
    } catch {
      // A registered template that no longer parses cannot say what it read: treat it as reading secrets.
      compiled.set(path, parseTemplate('{{ env }}'))
    }
  }
  const readers = secretReaders(compiled, {env: new Set(state.secretEnv), links})
  for (const [role, roleSpec] of Object.entries(state.spec.roles)) {
    out.set(role, new Set((roleSpec.files ?? []).filter((f) => readers.has(f.template)).map((f) => f.dest)))
  }
  return out
}

export function filePath(home: string, dest: string): string {
  return dest.startsWith('/') ? dest : `${home}/${dest}`
}

/** What rendering a node needs besides its view: the parsed templates, which of them read secrets, the budget. */
export interface RenderContext {
  compiled: ReadonlyMap<string, ParsedTemplate>
  sensitive: ReadonlySet<string>
  budget?: TemplateBudget
}

/** Render one node's files; a failing template becomes an error naming node, template and line:col. */
export function renderNode(specs: readonly FileSpec[] | undefined, self: HostView, shared: SharedView, ctx: RenderContext, errors: PlanError[]): RenderedFile[] {
  const view: NodeView = {self, host: self, ...shared}
  const files: RenderedFile[] = []
  for (const file of specs ?? []) {
    const parsed = ctx.compiled.get(file.template)
    if (!parsed) continue
    let content: string
    try {
      content = renderTemplate(parsed, view, ctx.budget, file.template)
    } catch (err) {
      if (ctx.budget?.exhausted) {
        errors.push({code: 'template-budget', role: self.role, node: self.node_id, template: file.template, message: ctx.budget.message(file.template, self.node_id)})
        return files
      }
      const at = position(err)
      errors.push({
        code: 'template-render', role: self.role, node: self.node_id, template: file.template, ...at,
        message: `${file.template}${at.line ? `:${at.line}:${at.col}` : ''}: rendering for node ${self.node_id}: ${bareMessage(err)}`,
      })
      continue
    }
    files.push({
      dest: file.dest,
      path: filePath(self.home, file.dest),
      template: file.template,
      content,
      mode: file.mode ?? DEFAULTS.fileMode,
      ...(file.owner ? {owner: file.owner} : {}),
      hash: sha256(content),
      ...(ctx.sensitive.has(file.template) ? {sensitive: true} : {}),
      ...(file.check ? {check: file.check} : {}),
      ...(file.reload ? {reload: file.reload} : {}),
    })
  }
  return files
}
