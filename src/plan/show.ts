// Plan output: the human-readable plan (node changes, unified diffs of files, steps), secret redaction, change detection.
//
// Secrets are hidden in two ways, both here. Structurally, where shoal knows it holds a secret or something derived
// from one: the value of a secret env parameter (tree, spec, state) and every file whose template reads a secret (its
// content, before and after) — whatever the value's length. Then by exact value in all remaining text (messages,
// script output, titles), raw and JSON-escaped; there values shorter than MIN_TEXT_SECRET are not searched for, since
// replacing every `1` or `on` would garble unrelated output — lint warns about such secrets (env-secret-short).
import {quoteControl} from '../util/text.js'
import {unifiedDiff} from './diff.js'
import {registeredSensitive} from './render.js'
import {clusterRoot, stateFromTree} from './tree.js'
import type {ClusterState, FileDrift, ImperativeChange, Plan, PlannedNode, RenderedFile} from './types.js'

export const REDACTED = '<redacted>'
/** Secrets shorter than this are hidden only structurally, not searched for in free text. */
export const MIN_TEXT_SECRET = 4

/** True when applying the plan would change anything (for `plan --detailed-exitcode`). */
export function hasChanges(plan: Plan): boolean {
  return plan.errors.length === 0 && plan.steps.length > 0
}

/** Each secret as written raw and as it appears inside JSON text (the registered spec is stored as JSON). */
export function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (secret.length < MIN_TEXT_SECRET) continue
    forms.add(secret)
    forms.add(JSON.stringify(secret).slice(1, -1))
  }
  return [...forms].sort((a, b) => b.length - a.length)
}

/** Replace every secret (raw or JSON-escaped) in a text: the one redaction used by plans, `get` and script output. */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secretForms(secrets)) if (out.includes(secret)) out = out.split(secret).join(REDACTED)
  return out
}

function redactValue(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return redactText(value, secrets)
  // A secret integer parameter is a number in env records: redact it whole too.
  if (typeof value === 'number' && secrets.includes(String(value))) return REDACTED
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, secrets)
    return out
  }
  return value
}

/** `spec.env[name].default` of every secret parameter replaced (the spec is stored and shown with the cluster). */
function redactSpecEnv<T extends {env?: Record<string, {secret?: boolean; default?: unknown}>}>(spec: T): T {
  if (!spec.env || !Object.values(spec.env).some((p) => p.secret && p.default !== undefined)) return spec
  const env = Object.fromEntries(Object.entries(spec.env).map(([name, p]) => [name, p.secret && p.default !== undefined ? {...p, default: REDACTED} : p]))
  return {...spec, env}
}

function redactState(state: ClusterState, sensitive: ReadonlySet<string>): ClusterState {
  const env = Object.fromEntries(Object.entries(state.env).map(([name, v]) => [name, state.secretEnv.includes(name) ? REDACTED : v]))
  const files = Object.fromEntries(Object.entries(state.files).map(([node, byDest]) => [
    node, Object.fromEntries(Object.entries(byDest).map(([dest, content]) => [dest, sensitive.has(`${node}/${dest}`) ? REDACTED : content])),
  ]))
  return {...state, env, files, ...(state.spec ? {spec: redactSpecEnv(state.spec)} : {})}
}

/**
 * A copy of the plan for showing: secret env values and the content of sensitive files replaced by `<redacted>`
 * wherever they are (nodes, file changes, desired state, tree, registry writes, steps), then every secret value of
 * MIN_TEXT_SECRET characters or more replaced in all remaining text; `secrets` emptied.
 */
export function redactPlan(plan: Plan): Plan {
  const sensitive = new Set<string>()
  for (const n of plan.nodes) {
    for (const f of [...n.files, ...(n.interim ?? [])]) if (f.sensitive) sensitive.add(`${n.node_id}/${f.dest}`)
    for (const c of n.fileChanges) if (c.sensitive) sensitive.add(`${n.node_id}/${c.dest}`)
  }
  const secretEnv = new Set(plan.desired?.secretEnv ?? Object.entries(plan.desired?.spec?.env ?? {}).filter(([, p]) => p.secret).map(([n]) => n))
  if (plan.secrets.length === 0 && sensitive.size === 0 && secretEnv.size === 0) return plan
  const root = clusterRoot(plan.cluster)
  const hiddenKeys = new Set<string>()
  for (const id of sensitive) {
    const slash = id.indexOf('/')
    hiddenKeys.add(`${root}files/${id.slice(0, slash + 1)}${encodeURIComponent(id.slice(slash + 1))}`)
  }
  for (const name of secretEnv) hiddenKeys.add(`${root}env/${name}`)
  const entry = ([key, value]: [string, string]): [string, string] => {
    if (hiddenKeys.has(key)) return [key, REDACTED]
    if (key === `${root}cluster/spec`) {
      try {
        return [key, JSON.stringify(redactSpecEnv(JSON.parse(value) as {env?: Record<string, {secret?: boolean}>}))]
      } catch {
        return [key, value]
      }
    }
    return [key, value]
  }
  const file = (nodeId: string) => (f: RenderedFile): RenderedFile => (f.sensitive || sensitive.has(`${nodeId}/${f.dest}`) ? {...f, content: REDACTED} : f)
  const structural: Plan = {
    ...plan,
    nodes: plan.nodes.map((n) => ({
      ...n,
      files: n.files.map(file(n.node_id)),
      ...(n.interim ? {interim: n.interim.map(file(n.node_id))} : {}),
      fileChanges: n.fileChanges.map((c) => (c.sensitive
        ? {...c, ...(c.before !== undefined ? {before: REDACTED} : {}), ...(c.after !== undefined ? {after: REDACTED} : {})}
        : c)),
    })),
    desired: plan.desired ? redactState(plan.desired, sensitive) : null,
    tree: plan.tree.map(entry),
    changes: {...plan.changes, puts: plan.changes.puts.map(entry)},
    steps: plan.steps.map((step) => (step.changes ? {...step, changes: {...step.changes, puts: step.changes.puts.map(entry)}} : step)),
    secrets: [],
  }
  return {...(redactValue(structural, plan.secrets) as Plan), secrets: []}
}

/**
 * A registered cluster's tree (keys relative to `clusters/<cluster>/`, as `get` shows it) for showing: the same
 * structural hiding as plans (secret env values, the stored spec's defaults, files whose template reads a secret, on
 * every node of the role), then every secret value in the remaining text. The linked clusters are not read, so any
 * read of a link's env counts as reading a secret.
 */
export function redactTree(cluster: string, keys: Record<string, string>): Record<string, string> {
  const secretNames = Object.keys(keys).filter((k) => k.startsWith('env-secret/') && keys[k] === 'true').map((k) => k.slice('env-secret/'.length))
  const secrets = secretNames.map((name) => keys[`env/${name}`]).filter((v): v is string => v !== undefined)
  const hidden = new Set(secretNames.map((name) => `env/${name}`))
  const root = clusterRoot(cluster)
  try {
    const state = stateFromTree(cluster, Object.fromEntries(Object.entries(keys).map(([k, v]) => [`${root}${k}`, v])))
    const byRole = registeredSensitive(state, 'unknown')
    for (const node of state.nodes) {
      for (const dest of byRole.get(node.role) ?? []) hidden.add(`files/${node.node_id}/${encodeURIComponent(dest)}`)
    }
  } catch {
    // A tree that does not decode still gets the value sweep below.
  }
  if (secrets.length === 0 && hidden.size === 0) return keys
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(keys)) {
    if (hidden.has(key)) out[key] = REDACTED
    else if (key === 'cluster/spec') {
      try {
        out[key] = redactText(JSON.stringify(redactSpecEnv(JSON.parse(value) as {env?: Record<string, {secret?: boolean}>})), secrets)
      } catch {
        out[key] = redactText(value, secrets)
      }
    } else out[key] = redactText(value, secrets)
  }
  return out
}

const MARK = {create: '+', keep: '~', remove: '-'} as const

function nodeLine(n: PlannedNode): string {
  const mark = n.change === 'keep' && n.fileChanges.length === 0 ? ' ' : MARK[n.change]
  return `  ${mark} ${n.node_id}  ${n.role} sid ${n.sid} on ${n.host} (${n.ip})${n.bootstrap ? ' bootstrap' : ''}: ${n.change} — ${n.reason}\n`
}

export interface RenderOptions {
  /** Include unified diffs of changed files (default true). */
  diffs?: boolean
  /** List nodes whose files do not change (default false: they are counted). */
  unchanged?: boolean
}

/** The plan for a person: errors, or node changes, file diffs against the registry, and steps. Secrets are redacted, control characters quoted. */
/** `--refresh`: what differs on the hosts from the registry (applying puts the registered files back), with diffs. */
function driftText(plan: Plan, diffs: boolean): string {
  return plan.drift ? renderDrift(plan.drift, plan.driftUnchecked ?? [], diffs) : ''
}

/** Drifted files (with diffs, unless a file's template reads a secret) and the nodes that could not be checked. */
export function renderDrift(drift: readonly FileDrift[], unchecked: ReadonlyArray<{node: string; reason: string}>, diffs = true): string {
  const out: string[] = []
  for (const d of drift) {
    const mode = d.problem.includes('mode') ? ` (mode ${d.foundMode} on the host, ${d.registeredMode} registered)` : ''
    out.push(`  ! ${d.node} ${d.dest} on ${d.host}: ${d.problem === 'missing' ? 'missing' : d.problem.startsWith('content') ? 'content differs' : 'mode differs'}${mode}${d.sensitive && d.problem !== 'mode' ? '; content hidden: the template reads a secret' : ''}\n`)
    if (diffs && d.problem.startsWith('content') && d.found !== undefined && d.registered !== undefined) out.push(unifiedDiff(d.found, d.registered, `host/${d.node}/${d.dest}`, `registered/${d.node}/${d.dest}`).replace(/^/gm, '    ').replace(/ +$/gm, ''))
  }
  for (const u of unchecked) out.push(`  ? ${u.node}: not checked: ${u.reason}\n`)
  if (out.length === 0) return '\nDrift: none (every registered file is on its host as registered).\n'
  return `\nDrift (on the hosts, not as registered; applying puts the registered files back):\n${out.join('')}`
}

/** One registered difference from the spec, and what applying the spec does about it. */
export function imperativeLine(change: ImperativeChange, cluster: string): string {
  if (change.kind === 'env') return `${change.name}: the value given by ${change.source} stays registered (applying the spec keeps it; --unset ${change.name} returns to the spec)`
  const by = change.by ? ` by \`${change.by}\`${change.at ? ` at ${change.at}` : ''}` : ' by an earlier command'
  const diff = change.spec - change.registered
  const does = diff > 0 ? `scales out by ${diff}` : `scales in by ${-diff}`
  return `role ${change.role}: count ${change.spec} in the spec, ${change.registered} registered${by}: this plan ${does} (\`shoal get ${cluster} --spec\` prints the registered spec)`
}

export function renderPlan(plan: Plan, options: RenderOptions = {}): string {
  return quoteControl(redactText(planText(redactPlan(plan), options), plan.secrets))
}

function planText(plan: Plan, options: RenderOptions): string {
  const out: string[] = []
  if (plan.errors.length) {
    out.push(`Cannot plan ${plan.operation.kind} of cluster ${plan.cluster}:\n`)
    for (const e of plan.errors) out.push(`  error[${e.code}] ${e.message}\n`)
    return out.join('')
  }
  const drift = driftText(plan, options.diffs !== false)
  const imperative = plan.imperative?.length ? `\nRegistered by commands, not by this spec:\n${plan.imperative.map((c) => `  ! ${imperativeLine(c, plan.cluster)}\n`).join('')}` : ''
  if (!hasChanges(plan)) {
    out.push(`Cluster ${plan.cluster} is up to date (revision ${plan.revision}): no changes.\n${drift}${imperative}`)
    return out.join('')
  }
  out.push(`Plan: ${plan.operation.kind} cluster ${plan.cluster} (revision ${plan.baseRevision} → ${plan.revision})\n${drift}${imperative}\nNodes:\n`)
  let unchanged = 0
  for (const n of plan.nodes) {
    if (n.change === 'keep' && n.fileChanges.length === 0 && !options.unchanged) unchanged++
    else out.push(nodeLine(n))
  }
  if (unchanged) out.push(`  (${unchanged} node${unchanged === 1 ? '' : 's'} unchanged)\n`)
  if (plan.envChanges?.length) {
    out.push('\nParameters:\n')
    for (const c of plan.envChanges) {
      const value = (v: unknown): string => (v === undefined ? '(none)' : JSON.stringify(v))
      const what = c.secret ? '<changed>' : c.change === 'remove' ? `${value(c.before)} removed` : `${value(c.before)} → ${value(c.after)}`
      out.push(`  ~ ${c.name}: ${what}${c.source ? ` (from ${c.source})` : ''}\n`)
    }
  }

  if (options.diffs !== false) {
    const diffs: string[] = []
    for (const n of plan.nodes) {
      for (const c of n.fileChanges) {
        const from = c.action === 'create' ? '/dev/null' : `registered/${n.node_id}/${c.dest}`
        const to = c.action === 'delete' ? '/dev/null' : `planned/${n.node_id}/${c.dest}`
        // Said to change, never shown: the template reads a secret, so any line of it may carry one.
        if (c.sensitive) diffs.push(`--- ${from}\n+++ ${to}\n@@ ${c.action === 'create' ? 'created' : c.action === 'delete' ? 'deleted' : 'changed'}; content hidden: the template reads a secret @@\n`)
        else diffs.push(unifiedDiff(c.before ?? '', c.after ?? '', from, to))
      }
    }
    if (diffs.length) out.push('\nFiles:\n', ...diffs)
    // What a node sees while the operation runs, where it differs from the end (e.g. a template reads adding_hosts).
    const inFlight: string[] = []
    for (const n of plan.nodes) {
      for (const f of n.interim ?? []) {
        const end = n.files.find((e) => e.dest === f.dest)
        if (end?.content !== f.content) inFlight.push(unifiedDiff(f.content, end?.content ?? '', `in-flight/${n.node_id}/${f.dest}`, `planned/${n.node_id}/${f.dest}`))
      }
    }
    if (inFlight.length) out.push('\nFiles while the operation runs (placed first, replaced by the planned ones at the end; see shoal render --step):\n', ...inFlight)
  }

  out.push('\nSteps:\n')
  for (const s of plan.steps) {
    const writes = s.changes ? ` [${s.changes.puts.length} key${s.changes.puts.length === 1 ? '' : 's'} written, ${s.changes.deletes.length} deleted]` : ''
    out.push(`  ${s.id}  ${s.title}${writes}\n`)
  }
  const count = (c: PlannedNode['change']) => plan.nodes.filter((n) => n.change === c).length
  const changedKept = plan.nodes.filter((n) => n.change === 'keep' && n.fileChanges.length > 0).length
  out.push(`\n${count('create')} to create, ${changedKept} to update, ${count('remove')} to remove; ${plan.changes.puts.length} registry keys to write, ${plan.changes.deletes.length} to delete.\n`)
  return out.join('')
}

/**
 * A node's files as they are on it once step `index` (0-based) of the plan has run: the last install step listing it
 * up to there decides (interim or final files); before any, what is registered for it (undefined: nothing placed yet).
 */
export function filesAtStep(plan: Plan, nodeId: string, index: number, registered?: Record<string, string>): {files?: Pick<RenderedFile, 'dest' | 'content' | 'sensitive'>[]; placedBy?: string} {
  const node = plan.nodes.find((n) => n.node_id === nodeId)
  let files: Pick<RenderedFile, 'dest' | 'content' | 'sensitive'>[] | undefined = registered ? Object.entries(registered).map(([dest, content]) => ({dest, content})) : undefined
  let placedBy: string | undefined
  for (const step of plan.steps.slice(0, index + 1)) {
    if (step.kind === 'remove' && step.nodes.includes(nodeId)) return {}
    if (step.kind !== 'install' || !node || !step.nodes.includes(nodeId)) continue
    files = step.files === 'final' ? node.files : (node.interim ?? node.files)
    placedBy = step.id
  }
  return {...(files ? {files} : {}), ...(placedBy ? {placedBy} : {})}
}
