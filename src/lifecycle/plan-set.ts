// Plans a set of cluster specs against the registry as one (issue 17): each cluster in link order, the registered
// clusters the set no longer holds as destroy candidates (planned for removal only with `prune`), and one summary.
import type {GivenEnv} from '../plan/env.js'
import type {Inventory} from '../plan/inventory.js'
import {hasChanges} from '../plan/show.js'
import type {Plan} from '../plan/types.js'
import {listClusters} from '../registry/index.js'
import type {Store} from '../store/store.js'
import type {ClusterInput} from '../workspace/inputs.js'
import {ShoalError} from '../errors.js'
import {compile} from './compile.js'
import type {DriftReport} from './drift.js'

export type SetAction = 'create' | 'change' | 'no-op' | 'destroy' | 'destroy-candidate' | 'after-links' | 'error'

export interface SetEntry {
  cluster: string
  /** The spec file; undefined for a registered cluster the set does not hold. */
  path?: string
  action: SetAction
  /** For `after-links`: the clusters of the set it links to that are not registered yet (its plan needs them). */
  waitsFor?: string[]
  plan?: Plan
  expectedModRevision?: number
  /** For `error`: why no plan could be made (the others are planned all the same). */
  error?: string
}

export interface SetPlan {
  entries: SetEntry[]
  totals: Record<SetAction, number>
}

/** Plans every spec of the set (already in link order), then what is registered but not in the set. */
export async function planSet(
  store: Store,
  inputs: readonly ClusterInput[],
  inventory: Inventory,
  options: {prune: boolean; given?: ReadonlyMap<string, GivenEnv>; refresh?: (cluster: string) => Promise<DriftReport | undefined>},
): Promise<SetPlan> {
  const registered = new Set(await listClusters(store))
  const entries: SetEntry[] = []
  const inSet = new Set(inputs.map((i) => i.spec.name))
  for (const input of inputs) {
    const name = input.spec.name
    // A link to a cluster this set creates can be planned only once that one is registered (its members are the link).
    const waitsFor = [...new Set(Object.values(input.spec.links ?? {}))].filter((target) => inSet.has(target) && !registered.has(target))
    if (waitsFor.length > 0) {
      entries.push({cluster: name, path: input.path, action: 'after-links', waitsFor})
      continue
    }
    try {
      const given = options.given?.get(name)
      const drift = registered.has(name) ? await options.refresh?.(name) : undefined
      const {plan, expectedModRevision} = await compile(store, {cluster: name, spec: input.spec, templates: input.templates, inventory, operation: {kind: 'apply'}, ...(given ? {given} : {}), ...(drift ? {drift} : {})})
      const action: SetAction = !hasChanges(plan) ? 'no-op' : registered.has(name) ? 'change' : 'create'
      entries.push({cluster: name, path: input.path, action, plan, expectedModRevision})
    } catch (error) {
      if (!(error instanceof ShoalError)) throw error
      entries.push({cluster: name, path: input.path, action: 'error', error: error.message})
    }
  }
  const linkedBy = new Map<string, string[]>()
  for (const input of inputs) for (const target of new Set(Object.values(input.spec.links ?? {}))) linkedBy.set(target, [...(linkedBy.get(target) ?? []), input.spec.name])
  for (const name of [...registered].filter((n) => !inSet.has(n)).sort()) {
    if (!options.prune) {
      entries.push({cluster: name, action: 'destroy-candidate'})
      continue
    }
    const users = linkedBy.get(name)
    if (users) {
      entries.push({cluster: name, action: 'error', error: `--prune would destroy it, and ${users.join(', ')} of the specs ${users.length === 1 ? 'links' : 'link'} to it`})
      continue
    }
    const {plan, expectedModRevision} = await compile(store, {cluster: name, inventory, operation: {kind: 'destroy'}})
    entries.push({cluster: name, action: 'destroy', plan, expectedModRevision})
  }
  const totals = {create: 0, change: 0, 'no-op': 0, destroy: 0, 'destroy-candidate': 0, 'after-links': 0, error: 0}
  for (const e of entries) totals[e.action]++
  return {entries, totals}
}

/** Whether applying the set would change anything (`--detailed-exitcode`). */
export function setChanges(set: SetPlan): boolean {
  return set.entries.some((e) => e.action !== 'no-op' && e.action !== 'destroy-candidate' && e.action !== 'error')
}

/** One line per cluster and the totals. */
export function renderSetSummary(set: SetPlan): string {
  const width = Math.max(...set.entries.map((e) => e.cluster.length))
  const lines = set.entries.map((e) => `  ${e.cluster.padEnd(width)}  ${describeEntry(e)}`)
  return `Summary:\n${lines.join('\n')}\n${setTotalsText(set)}.\n`
}

/** The totals as a sentence: `4 clusters: 1 to create, …`. */
export function setTotalsText(set: SetPlan): string {
  const {totals} = set
  const parts = [
    `${totals.create} to create`, `${totals.change} to change`, `${totals['no-op']} unchanged`,
    ...(totals['after-links'] ? [`${totals['after-links']} planned once the clusters they link to are registered`] : []),
    ...(totals.destroy ? [`${totals.destroy} to destroy`] : []),
    ...(totals.error ? [`${totals.error} that cannot be planned`] : []),
    ...(totals['destroy-candidate'] ? [`${totals['destroy-candidate']} destroy candidate${totals['destroy-candidate'] === 1 ? '' : 's'}`] : []),
  ]
  return `${set.entries.length} cluster${set.entries.length === 1 ? '' : 's'}: ${parts.join(', ')}`
}

/** Why an entry has no plan to show, for the Markdown table (undefined when it has one). */
export function entryNote(e: SetEntry): string | undefined {
  if (e.action === 'after-links') return `planned once ${e.waitsFor!.join(', ')} ${e.waitsFor!.length === 1 ? 'is' : 'are'} registered`
  if (e.action === 'destroy-candidate') return 'registered, not in the specs (--prune destroys it)'
  if (e.action === 'error') return e.error!.split('\n').map((l) => l.trim()).filter(Boolean).join(' ')
  return undefined
}

function describeEntry(e: SetEntry): string {
  if (e.action === 'after-links') return `create or change once ${e.waitsFor!.join(', ')} ${e.waitsFor!.length === 1 ? 'is' : 'are'} registered (apply orders it after)`
  if (e.action === 'destroy-candidate') return 'destroy candidate: registered, not in the specs (--prune destroys it)'
  if (e.action === 'no-op') return 'no changes'
  if (e.action === 'error') return `cannot be planned: ${e.error!.split('\n').map((l) => l.trim()).filter(Boolean).join(' ')}`
  const nodes = e.plan!.nodes
  const created = nodes.filter((n) => n.change === 'create').length
  const removed = nodes.filter((n) => n.change === 'remove').length
  const files = nodes.filter((n) => n.change === 'keep' && n.fileChanges.length > 0).length
  const params = e.plan!.envChanges?.length ?? 0
  const drifted = e.plan!.drift?.length ?? 0
  const what = [
    ...(drifted ? [`${drifted} drifted file${drifted === 1 ? '' : 's'} put back`] : []),
    ...(created ? [`+${created} node${created === 1 ? '' : 's'}`] : []),
    ...(removed ? [`-${removed} node${removed === 1 ? '' : 's'}`] : []),
    ...(files ? [`files change on ${files} node${files === 1 ? '' : 's'}`] : []),
    ...(params ? [`${params} parameter${params === 1 ? '' : 's'}`] : []),
  ]
  return `${e.action}${what.length ? ` (${what.join(', ')})` : ''}`
}

/**
 * Why the set's plans cannot be saved to apply later exactly as planned (undefined: they can). A cluster that waits for
 * a linked one, or that changes while a cluster it links to changes too, renders from members that applying the other
 * first would change: its saved plan would be stale (or wrong) by the time its turn came.
 */
export function unsavable(set: SetPlan, links: ReadonlyMap<string, readonly string[]>): string | undefined {
  const problems: string[] = []
  const changing = new Set(set.entries.filter((e) => e.action === 'create' || e.action === 'change' || e.action === 'destroy').map((e) => e.cluster))
  for (const e of set.entries) {
    if (e.action === 'error') problems.push(`${e.cluster} cannot be planned`)
    if (e.action === 'after-links') problems.push(`${e.cluster} can be planned only once ${e.waitsFor!.join(', ')} ${e.waitsFor!.length === 1 ? 'is' : 'are'} registered`)
    if (!changing.has(e.cluster)) continue
    const both = (links.get(e.cluster) ?? []).filter((target) => changing.has(target))
    if (both.length) problems.push(`${e.cluster} changes and links to ${both.join(', ')}, which ${both.length === 1 ? 'changes' : 'change'} first`)
  }
  return problems.length ? problems.join('; ') : undefined
}
