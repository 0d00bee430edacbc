// Clusters follow the clusters they link to: after an operation changed cluster X, every registered cluster whose links
// name X is re-planned from its registered spec and templates against X's new state and, where that changes anything,
// applied as its own operation (its own lock and record, so it resumes like any other) — and so on down the links.
import {clusterPrefix, listClusters} from '../registry/index.js'
import type {Operation} from '../plan/types.js'
import type {Store} from '../store/store.js'
import {EXIT, ShoalError} from '../errors.js'

export type FollowResultKind = 'updated' | 'unchanged' | 'failed' | 'skipped'

/** What happened to one cluster that links to a changed one. */
export interface FollowResult {
  cluster: string
  /** The linked cluster whose change it followed. */
  follows: string
  result: FollowResultKind
  /** Why it failed or was skipped, and what to do. */
  message?: string
  /** Its revision after the update. */
  revision?: number
  /** Steps its operation ran (0 for a registry-only update). */
  ran?: number
}

/** Applies the follow operation to one cluster; `changed` false when its plan changed nothing. */
export type FollowRunner = (cluster: string, operation: Operation) => Promise<{changed: boolean; revision?: number; ran?: number}>

/** Registered clusters (other than `cluster`) with a link naming `cluster`, sorted by name. */
export async function dependentsOf(store: Store, cluster: string): Promise<string[]> {
  const out: string[] = []
  for (const name of await listClusters(store)) {
    if (name === cluster) continue
    const {kvs} = await store.range(`${clusterPrefix(name)}links/`)
    if (kvs.some((kv) => kv.value === cluster)) out.push(name)
  }
  return out
}

/**
 * Bring the dependents of `changed` up to date, breadth first down the links. A dependent that changed is followed in
 * turn; each (dependent, linked) pair is followed at most once per call, so links that form a cycle end. One failing
 * dependent does not stop the others: every result is returned, failures carry the error's message.
 * After a destroy the dependents are only reported (`skipped`): their link now names a cluster that is gone.
 */
export async function followLinks(store: Store, changed: string, run: FollowRunner, options: {destroyed?: boolean; onFollow?: (cluster: string, follows: string) => void} = {}): Promise<FollowResult[]> {
  const results: FollowResult[] = []
  if (options.destroyed) {
    for (const cluster of await dependentsOf(store, changed)) {
      results.push({cluster, follows: changed, result: 'skipped', message: `${cluster} links to ${changed}, which is gone: point its link elsewhere (or destroy it) and apply its spec`})
    }
    return results
  }
  const followed = new Set<string>()
  const queue = [changed]
  while (queue.length > 0) {
    const linked = queue.shift()!
    for (const cluster of await dependentsOf(store, linked)) {
      const pair = `${cluster}\u0000${linked}`
      if (followed.has(pair)) continue
      followed.add(pair)
      options.onFollow?.(cluster, linked)
      try {
        const outcome = await run(cluster, {kind: 'apply', follows: linked})
        results.push({cluster, follows: linked, result: outcome.changed ? 'updated' : 'unchanged', ...(outcome.revision !== undefined ? {revision: outcome.revision} : {}), ...(outcome.ran !== undefined ? {ran: outcome.ran} : {})})
        if (outcome.changed) queue.push(cluster)
      } catch (error) {
        results.push({cluster, follows: linked, result: 'failed', message: (error as Error).message})
      }
    }
  }
  return results
}

/** One line per dependent, for the command's output. */
export function followText(results: readonly FollowResult[]): string[] {
  return results.map((r) => {
    const what =
      r.result === 'updated' ? `re-rendered and reloaded where its files changed (revision ${String(r.revision)}${r.ran !== undefined ? `, ${r.ran} step${r.ran === 1 ? '' : 's'}` : ''})`
      : r.result === 'unchanged' ? 'unchanged'
      : r.result === 'skipped' ? `not updated: ${r.message ?? ''}`
      : `FAILED: ${r.message ?? ''}`
    return `${r.cluster} (links to ${r.follows}): ${what}`
  })
}

/** The error a command exits with when a dependent could not follow, saying how to finish the job. */
export function followError(changed: string, results: readonly FollowResult[]): ShoalError | undefined {
  const failed = results.filter((r) => r.result === 'failed')
  if (failed.length === 0) return undefined
  const lines = failed.map((r) => `  ${r.cluster} (links to ${r.follows}): ${r.message ?? ''}`)
  return new ShoalError(
    `${changed} changed, but ${failed.length === 1 ? 'a cluster that links to it' : `${failed.length} clusters that link to it`} could not follow:\n${lines.join('\n')}\n` +
      `Fix the cause (resume an unfinished operation of that cluster with shoal resume <cluster>), then bring the dependents up to date with: shoal resume ${changed}`,
    'dependents-failed',
    EXIT.failure,
  )
}
