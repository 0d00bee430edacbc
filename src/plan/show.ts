// Plan output: the human-readable plan (node changes, unified diffs of files, steps), secret redaction, change detection.
import {unifiedDiff} from './diff.js'
import type {Plan, PlannedNode, RenderedFile} from './types.js'

export const REDACTED = '<redacted>'

/** True when applying the plan would change anything (for `plan --detailed-exitcode`). */
export function hasChanges(plan: Plan): boolean {
  return plan.errors.length === 0 && plan.steps.length > 0
}

/** Each secret as written raw and as it appears inside JSON text (the registered spec is stored as JSON). */
function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (secret === '') continue
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
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, secrets)
    return out
  }
  return value
}

/** A copy of the plan with every secret value replaced by `<redacted>` (files, tree, steps) and `secrets` emptied. */
export function redactPlan(plan: Plan): Plan {
  if (plan.secrets.length === 0) return plan
  const copy = redactValue({...plan, secrets: []}, plan.secrets) as Plan
  return {...copy, secrets: []}
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

/** The plan for a person: errors, or node changes, file diffs against the registry, and steps. Secrets are redacted. */
export function renderPlan(plan: Plan, options: RenderOptions = {}): string {
  const out: string[] = []
  if (plan.errors.length) {
    out.push(`Cannot plan ${plan.operation.kind} of cluster ${plan.cluster}:\n`)
    for (const e of plan.errors) out.push(`  error[${e.code}] ${e.message}\n`)
    return redactText(out.join(''), plan.secrets)
  }
  if (!hasChanges(plan)) {
    out.push(`Cluster ${plan.cluster} is up to date (revision ${plan.revision}): no changes.\n`)
    return out.join('')
  }
  out.push(`Plan: ${plan.operation.kind} cluster ${plan.cluster} (revision ${plan.baseRevision} → ${plan.revision})\n\nNodes:\n`)
  let unchanged = 0
  for (const n of plan.nodes) {
    if (n.change === 'keep' && n.fileChanges.length === 0 && !options.unchanged) unchanged++
    else out.push(nodeLine(n))
  }
  if (unchanged) out.push(`  (${unchanged} node${unchanged === 1 ? '' : 's'} unchanged)\n`)

  if (options.diffs !== false) {
    const diffs: string[] = []
    for (const n of plan.nodes) {
      for (const c of n.fileChanges) {
        const from = c.action === 'create' ? '/dev/null' : `registered/${n.node_id}/${c.dest}`
        const to = c.action === 'delete' ? '/dev/null' : `planned/${n.node_id}/${c.dest}`
        diffs.push(unifiedDiff(c.before ?? '', c.after ?? '', from, to))
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
  return redactText(out.join(''), plan.secrets)
}

/**
 * A node's files as they are on it once step `index` (0-based) of the plan has run: the last install step listing it
 * up to there decides (interim or final files); before any, what is registered for it (undefined: nothing placed yet).
 */
export function filesAtStep(plan: Plan, nodeId: string, index: number, registered?: Record<string, string>): {files?: Pick<RenderedFile, 'dest' | 'content'>[]; placedBy?: string} {
  const node = plan.nodes.find((n) => n.node_id === nodeId)
  let files: Pick<RenderedFile, 'dest' | 'content'>[] | undefined = registered ? Object.entries(registered).map(([dest, content]) => ({dest, content})) : undefined
  let placedBy: string | undefined
  for (const step of plan.steps.slice(0, index + 1)) {
    if (step.kind === 'remove' && step.nodes.includes(nodeId)) return {}
    if (step.kind !== 'install' || !node || !step.nodes.includes(nodeId)) continue
    files = step.files === 'final' ? node.files : (node.interim ?? node.files)
    placedBy = step.id
  }
  return {...(files ? {files} : {}), ...(placedBy ? {placedBy} : {})}
}
