// Registry-side execution of a plan: take the cluster lock, then commit the plan's registry steps, each one guarded
// by the revision the previous one left (the first by the revision the plan was made against).
import {nodeOfKey} from '../plan/tree.js'
import type {Step} from '../plan/steps.js'
import type {Plan} from '../plan/types.js'
import {acquireLock, clusterPrefix, clusterRevisionKey, commitChanges, lockKey, RegistryError, type ClusterLock} from '../registry/index.js'
import type {Store, Watch} from '../store/store.js'

export interface LockOptions {
  operation: string
  /** Wait this long (ms) for another operation to give the lock up; 0 fails at once. */
  waitMs: number
}

/** A waiter looks again this often (with jitter) even without a watch event, in case the watch missed the release. */
const LOCK_RECHECK_MS = 1000

/**
 * Take the cluster lock, waiting up to `waitMs` for another operation to finish. A waiter watches the lock key and
 * tries again the moment it is deleted (released, or its lease expired), so a queue of operations runs back to back.
 */
export async function lockCluster(store: Store, cluster: string, options: LockOptions): Promise<ClusterLock> {
  const deadline = Date.now() + options.waitMs
  for (;;) {
    try {
      return await acquireLock(store, cluster, {operation: options.operation})
    } catch (err) {
      if (!(err instanceof RegistryError) || err.code !== 'LOCKED' || Date.now() >= deadline) throw err
      await lockReleased(store, lockKey(cluster), Math.min(deadline - Date.now(), LOCK_RECHECK_MS * (0.5 + Math.random())))
    }
  }
}

/** Resolves when `key` is deleted, when the watch fails, or after `ms`, whichever comes first. */
async function lockReleased(store: Store, key: string, ms: number): Promise<void> {
  const held = await store.get(key)
  if (!held) return
  let wake = (): void => undefined
  const woken = new Promise<void>((resolve) => (wake = resolve))
  const timer = setTimeout(wake, Math.max(0, ms))
  let watch: Watch | undefined
  try {
    // The watch matches `key` as a prefix: another cluster's lock waking us only costs one more attempt.
    watch = await store.watch(key, held.modRevision, (events) => {
      if (events.some((e) => e.type === 'delete')) wake()
    }, () => wake())
    await woken
  } catch {
    await woken // no watch (store trouble): the timer still wakes us, and the next attempt reports the trouble
  } finally {
    clearTimeout(timer)
    await watch?.close().catch(() => undefined)
  }
}

/** Keys grouped by the node they belong to, so a node is never seen half-registered. */
function nodeGroups(keys: readonly string[]): string[][] {
  const groups = new Map<string, string[]>()
  for (const key of keys) {
    const node = nodeOfKey(key)
    if (node === undefined) continue
    const list = groups.get(node)
    if (list) list.push(key)
    else groups.set(node, [key])
  }
  return [...groups.values()]
}

export interface RegisterResult {
  commits: number
  transactions: number
  /** Mod revision of the cluster revision key afterwards (0 after a destroy). */
  modRevision: number
}

/**
 * Commit one `commit` step while holding `lock`, guarded by `expectedModRevision` (the mod revision of the cluster
 * revision key the step was planned against: a cluster changed since then is refused as stale). `extraPuts` ride in the
 * same change, e.g. the executor's progress record of the step, so the step can never be applied but unrecorded.
 */
export async function commitStep(
  store: Store,
  plan: Plan,
  step: Step,
  expectedModRevision: number,
  lock: ClusterLock,
  extraPuts: Record<string, string> = {},
): Promise<{modRevision: number; transactions: number}> {
  const revisionKey = clusterRevisionKey(plan.cluster)
  const puts = Object.fromEntries(step.changes?.puts ?? [])
  const deletes = step.changes?.deletes ?? []
  // Every commit moves the revision key, so each one is guarded by the one before it; a later commit of the same
  // operation re-writes the planned revision.
  if (!(revisionKey in puts) && !deletes.includes(revisionKey)) puts[revisionKey] = String(plan.revision)
  Object.assign(puts, extraPuts)
  const result = await commitChanges(
    store,
    clusterPrefix(plan.cluster),
    {revisionKey, expectedModRevision, lock: {key: lock.key, id: lock.info.id}},
    puts,
    deletes,
    nodeGroups([...Object.keys(puts), ...deletes]),
  )
  return {modRevision: revisionKey in puts ? result.revision : 0, transactions: result.transactions}
}

/** Commit every `commit` step of the plan, in order, while holding `lock` (registry-only apply: no scripts run). */
export async function commitPlan(store: Store, plan: Plan, expectedModRevision: number, lock: ClusterLock): Promise<RegisterResult> {
  let modRevision = expectedModRevision
  let commits = 0
  let transactions = 0
  for (const step of plan.steps) {
    if (step.kind !== 'commit' || !step.changes) continue
    const result = await commitStep(store, plan, step, modRevision, lock)
    commits++
    transactions += result.transactions
    modRevision = result.modRevision
  }
  return {commits, transactions, modRevision}
}
