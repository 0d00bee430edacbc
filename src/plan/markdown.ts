// Plans as Markdown for a pull-request comment (`shoal plan --format markdown`): a table of the clusters, then per
// changing cluster its node changes, imperative differences, parameters and short file diffs. Secrets are redacted,
// files whose template reads a secret are named but never shown, and the whole comment stays under a size a forge takes.
import {quoteControl} from '../util/text.js'
import {unifiedDiff} from './diff.js'
import {imperativeLine, redactPlan, redactText} from './show.js'
import type {Plan, PlannedNode} from './types.js'

/** One cluster of the comment: its plan (none when it could not be planned yet), the action and a one-line reason. */
export interface MarkdownEntry {
  cluster: string
  action: string
  /** Why there is no plan (waits for a linked cluster, cannot be planned, destroy candidate). */
  note?: string
  plan?: Plan
}

/** Diff lines shown per file; the rest is counted. */
const FILE_DIFF_LINES = 40
/** GitHub takes comments up to 65,536 characters: the comment is cut, with a note, well before. */
const MAX_CHARS = 60_000

export function renderMarkdown(entries: readonly MarkdownEntry[], totals: string): string {
  const out: string[] = [`## shoal plan: ${totals}\n\n`]
  out.push('| cluster | action | nodes | files | parameters |\n|---|---|---|---|---|\n')
  for (const e of entries) {
    const c = e.plan ? counts(e.plan) : undefined
    const nodes = c ? [c.created ? `+${c.created}` : '', c.removed ? `−${c.removed}` : ''].filter(Boolean).join(' ') || '—' : '—'
    out.push(`| ${code(e.cluster)} | ${cell(e.note ? `${e.action}: ${e.note}` : e.action)} | ${nodes} | ${c?.files ? `${c.files} node${c.files === 1 ? '' : 's'}` : '—'} | ${c?.params || '—'} |\n`)
  }
  for (const e of entries) {
    if (!e.plan || e.plan.steps.length === 0) continue
    out.push(`\n### ${code(e.cluster)}: ${e.action}\n\n`, redactText(clusterBody(redactPlan(e.plan)), e.plan.secrets))
  }
  let text = out.join('')
  if (text.length > MAX_CHARS) text = `${text.slice(0, MAX_CHARS)}\n\n… cut at ${MAX_CHARS.toLocaleString('en-US')} characters: run \`shoal plan\` for the rest.\n`
  return quoteControl(text)
}

function counts(plan: Plan): {created: number; removed: number; files: number; params: number} {
  const by = (change: PlannedNode['change']): number => plan.nodes.filter((n) => n.change === change).length
  return {created: by('create'), removed: by('remove'), files: plan.nodes.filter((n) => n.fileChanges.length > 0).length, params: plan.envChanges?.length ?? 0}
}

function clusterBody(plan: Plan): string {
  const out: string[] = []
  if (plan.drift?.length) {
    const what = (d: NonNullable<Plan['drift']>[number]): string => (d.problem === 'missing' ? 'missing' : d.problem === 'mode' ? `mode ${d.foundMode} on the host, ${d.registeredMode} registered` : `content differs${d.problem.includes('mode') ? `, mode ${d.foundMode} on the host` : ''}`)
    out.push(`**Drift (on the hosts, not as registered; applying puts the registered files back):**\n${plan.drift.map((d) => `- ${code(d.node)} ${code(d.dest)}: ${what(d)}\n`).join('')}\n`)
  }
  if (plan.imperative?.length) out.push(`**Registered by commands, not by this spec:**\n${plan.imperative.map((c) => `- ${cell(imperativeLine(c, plan.cluster))}\n`).join('')}\n`)
  const shown = plan.nodes.filter((n) => n.change !== 'keep' || n.fileChanges.length > 0)
  for (const n of shown) out.push(`- ${n.change === 'create' ? '➕' : n.change === 'remove' ? '➖' : '✏️'} ${code(n.node_id)} ${n.role} sid ${n.sid} on ${code(n.host)} (${n.ip}): ${n.change === 'keep' ? `${n.fileChanges.length} file${n.fileChanges.length === 1 ? '' : 's'} change` : n.change}\n`)
  const unchanged = plan.nodes.length - shown.length
  if (unchanged) out.push(`- ${unchanged} node${unchanged === 1 ? '' : 's'} unchanged\n`)
  if (plan.envChanges?.length) {
    const value = (v: unknown): string => (v === undefined ? '(none)' : code(JSON.stringify(v)))
    out.push(`\n**Parameters:** ${plan.envChanges.map((c) => `${code(c.name)} ${c.secret ? 'changed (secret)' : c.change === 'remove' ? `${value(c.before)} removed` : `${value(c.before)} → ${value(c.after)}`}`).join('; ')}\n`)
  }
  const diffs: string[] = []
  for (const n of plan.nodes) {
    for (const c of n.fileChanges) {
      const what = c.action === 'create' ? 'created' : c.action === 'delete' ? 'deleted' : 'changed'
      if (c.sensitive) {
        diffs.push(`${code(n.node_id)} ${code(c.dest)} ${what}: content hidden (the template reads a secret)\n\n`)
        continue
      }
      // New and deleted files are named, not shown: a create would fill the comment with every file of every node.
      if (c.action !== 'update') {
        const lines = (c.after ?? c.before ?? '').split('\n').filter((l, i, all) => i < all.length - 1 || l !== '').length
        diffs.push(`${code(n.node_id)} ${code(c.dest)} ${what} (${lines} line${lines === 1 ? '' : 's'})\n\n`)
        continue
      }
      const lines = unifiedDiff(c.before ?? '', c.after ?? '', `a/${c.dest}`, `b/${c.dest}`).split('\n').slice(2).filter((l, i, all) => i < all.length - 1 || l !== '')
      const cut = lines.length > FILE_DIFF_LINES ? `\n… ${lines.length - FILE_DIFF_LINES} more lines` : ''
      diffs.push(`${code(n.node_id)} ${code(c.dest)} ${what}:\n${fence(lines.slice(0, FILE_DIFF_LINES).join('\n'), 'diff')}${cut}\n\n`)
    }
  }
  if (diffs.length) out.push(`\n<details><summary>Files: ${diffs.length} change${diffs.length === 1 ? '' : 's'}</summary>\n\n${diffs.join('')}</details>\n`)
  return out.join('')
}

/** A code span that holds any text: delimited by more backticks than the text's longest run (CommonMark). */
function code(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length))
  const ticks = '`'.repeat(longest + 1)
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : ''
  return `${ticks}${pad}${text.replace(/\n/g, ' ')}${pad}${ticks}`
}

/** A fenced block whose fence no line of the text can close. */
function fence(text: string, info: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length))
  const ticks = '`'.repeat(longest + 1)
  return `${ticks}${info}\n${text}\n${ticks}`
}

/** Text for a table cell: no line breaks, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|')
}
