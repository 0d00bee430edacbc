// Applies a planned key diff to the registry as one guarded change, even when it needs several transactions.
//
// Guard: every commit compares the cluster revision key's mod revision with the one the plan was made against,
// and requires that no multi-transaction commit is pending. A refused guard becomes a StaleError that says so.
//
// Small diffs (≤ store.maxOpsPerTxn ops) are ONE transaction. Larger diffs (etcd caps a txn at 128 ops) use this
// crash-safe protocol, where `P` is `<cluster prefix>cluster/pending`:
//   1. open:   if rev-key.mod == expected && P.mod == 0  →  put P = {opId, holder, lock, started, outsideKeys}.
//              P's create revision C marks the base: the store at C-1 is the complete old state.
//   2. batch:  if P.mod == M (M = P's current mod revision) → puts/deletes of whole groups (a node's keys travel
//              together, so even a reader that ignores P never sees half a node).
//   3. close:  the last batch also deletes P and writes the new cluster revision key (the only write that moves the
//              guard), so the change becomes visible to guarded writers all at once.
// Readers (read.ts) that find P read the cluster at revision C-1: the consistent old state.
// A writer that finds P whose lock is no longer held (the writer crashed) rolls it back before committing:
//   claim P (put P again, guarded by its mod revision: a resumed zombie writer's next batch then fails), read the
//   cluster prefix and P.outsideKeys at C-1 and now, write back the difference in guarded batches, delete P last.
// The rollback is itself restartable (P stays until its last batch), and needs the store's history at C-1: if it was
// compacted, the rollback refuses with ROLLBACK_IMPOSSIBLE instead of guessing.
import {hostname, userInfo} from 'node:os'
import {randomUUID} from 'node:crypto'
import {StoreError, type Compare, type KeyValue, type Op, type Store} from '../store/store.js'
import {RegistryError, StaleError} from './errors.js'
import {pendingKey} from './keys.js'

export interface CommitGuard {
  /** `clusters/<c>/cluster/revision`; its new value must be among the puts. */
  revisionKey: string
  /** Mod revision of the revision key when the plan was made (0: the cluster did not exist). */
  expectedModRevision: number
  /** The cluster lock held for this commit: recorded so a later writer can tell a live commit from a crashed one. */
  lock?: {key: string; id: string}
}

export interface CommitOptions {
  /** Progress of a multi-transaction commit (1-based batch number). Throwing here abandons the commit like a crash. */
  onBatchCommitted?: (batch: number, batches: number) => void | Promise<void>
  /** Who is committing, recorded in the pending record; default `user@host pid N`. */
  holder?: string
  /** A pending record without a lock is treated as abandoned only after this long; default 60 s. */
  abandonedAfterMs?: number
}

export interface CommitResult {
  /** Store revision after the commit; also the new mod revision of the revision key (the next plan's guard). */
  revision: number
  transactions: number
  /** Set when an interrupted commit had to be rolled back first. */
  rolledBack?: RollbackResult
}

export interface RollbackResult {
  opId: string
  holder: string
  restoredKeys: number
}

export interface PendingRecord {
  opId: string
  holder: string
  started: string
  lock?: {key: string; id: string}
  /** Keys of the change outside the cluster prefix (e.g. `mapping/<ip>`), so a rollback knows what to restore. */
  outsideKeys: string[]
  /** Set when another writer took the record over to roll it back. */
  rollingBackBy?: string
}

const DEFAULT_ABANDONED_AFTER_MS = 60_000

export async function commitChanges(
  store: Store,
  clusterKeyPrefix: string,
  guard: CommitGuard,
  puts: Record<string, string>,
  deletes: string[],
  groups: string[][] = [],
  options: CommitOptions = {},
): Promise<CommitResult> {
  const pending = pendingKey(clusterKeyPrefix)
  validateChange(clusterKeyPrefix, guard, puts, deletes, pending)
  const ops = new Map<string, Op>()
  for (const [key, value] of Object.entries(puts)) ops.set(key, {type: 'put', key, value})
  for (const key of deletes) ops.set(key, {type: 'delete', key})
  const guardCompares: Compare[] = [
    {key: guard.revisionKey, target: 'mod', equals: guard.expectedModRevision},
    {key: pending, target: 'mod', equals: 0},
  ]
  const holder = options.holder ?? defaultHolder()
  let rolledBack: RollbackResult | undefined
  // At most: one refusal that finds a crashed commit (rolled back), then the real attempt.
  for (let attempt = 0; attempt < 3; attempt++) {
    if (ops.size <= store.maxOpsPerTxn) {
      const result = await store.txn(guardCompares, [...ops.values()])
      if (result.succeeded) return {revision: result.revision, transactions: 1, ...(rolledBack ? {rolledBack} : {})}
    } else {
      const record: PendingRecord = {
        opId: randomUUID(),
        holder,
        started: new Date().toISOString(),
        ...(guard.lock ? {lock: guard.lock} : {}),
        outsideKeys: [...ops.keys()].filter(k => !k.startsWith(clusterKeyPrefix)).sort(),
      }
      const opened = await store.txn(guardCompares, [{type: 'put', key: pending, value: JSON.stringify(record)}])
      if (opened.succeeded) {
        const revisionOp = ops.get(guard.revisionKey)!
        ops.delete(guard.revisionKey)
        const batches = packBatches(ops, groups, store.maxOpsPerTxn, [{type: 'delete', key: pending}, revisionOp])
        const revision = await runBatches(store, pending, opened.revision, batches, record, options.onBatchCommitted)
        return {revision, transactions: 1 + batches.length, ...(rolledBack ? {rolledBack} : {})}
      }
    }
    rolledBack = (await explainRefusal(store, clusterKeyPrefix, guard, options)) ?? rolledBack
  }
  throw new RegistryError(`commit to ${clusterKeyPrefix} was refused repeatedly by ${store.description}; read the cluster and plan again`, 'COMMIT_IN_PROGRESS')
}

/**
 * Roll back an interrupted multi-transaction commit of a cluster, if there is one whose writer is gone.
 * Throws COMMIT_IN_PROGRESS when the writer's lock is still alive (it is not interrupted, just running).
 */
export async function rollBackPending(
  store: Store,
  clusterKeyPrefix: string,
  options: {ownLockId?: string; abandonedAfterMs?: number} = {},
): Promise<RollbackResult | undefined> {
  const key = pendingKey(clusterKeyPrefix)
  const found = await store.get(key)
  if (!found) return undefined
  const record = parsePending(found, key)
  await assertAbandoned(store, clusterKeyPrefix, record, options)

  // Claim the record: a writer that was only paused (not dead) fails its next batch instead of racing us.
  const claimed: PendingRecord = {...record, rollingBackBy: defaultHolder()}
  const claim = await store.txn([{key, target: 'mod', equals: found.modRevision}], [{type: 'put', key, value: JSON.stringify(claimed)}])
  if (!claim.succeeded) return rollBackPending(store, clusterKeyPrefix, options) // someone else moved it: look again

  const base = found.createRevision - 1
  const ranges = [clusterKeyPrefix, ...new Set(record.outsideKeys.map(parentPrefix))]
  const outside = new Set(record.outsideKeys)
  const restore = new Map<string, Op>()
  for (const prefix of ranges) {
    let before: KeyValue[]
    try {
      before = (await store.range(prefix, {revision: base})).kvs
    } catch (error) {
      if (error instanceof StoreError && error.code === 'COMPACTED') {
        throw new RegistryError(
          `cannot roll back the interrupted commit ${record.opId} of ${clusterKeyPrefix} (by ${record.holder}, started ${record.started}): ` +
            `${store.description} no longer keeps revision ${base} (compacted). Inspect the cluster keys by hand, then delete ${key}`,
          'ROLLBACK_IMPOSSIBLE',
        )
      }
      throw error
    }
    const now = (await store.range(prefix)).kvs
    const inScope = (k: string): boolean => (prefix === clusterKeyPrefix ? k !== key : outside.has(k))
    const old = new Map(before.filter(kv => inScope(kv.key)).map(kv => [kv.key, kv.value]))
    for (const kv of now) {
      if (!inScope(kv.key)) continue
      const was = old.get(kv.key)
      if (was === undefined) restore.set(kv.key, {type: 'delete', key: kv.key})
      else if (was !== kv.value) restore.set(kv.key, {type: 'put', key: kv.key, value: was})
      old.delete(kv.key)
    }
    for (const [k, value] of old) restore.set(k, {type: 'put', key: k, value})
  }
  const batches = packBatches(restore, [], store.maxOpsPerTxn, [{type: 'delete', key}])
  await runBatches(store, key, claim.revision, batches, record, undefined)
  return {opId: record.opId, holder: record.holder, restoredKeys: restore.size}
}

export function defaultHolder(): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    user = process.env.USER ?? 'unknown'
  }
  return `${user}@${hostname()} pid ${process.pid}`
}

export function parsePending(kv: KeyValue, key: string): PendingRecord {
  try {
    const record = JSON.parse(kv.value) as PendingRecord
    if (typeof record.opId === 'string' && Array.isArray(record.outsideKeys)) return record
  } catch {
    // fall through
  }
  throw new RegistryError(`${key} holds something that is not a shoal pending-commit record; inspect and delete it by hand`, 'INVALID_CHANGE')
}

/** The guard failed: say why (stale plan, commit in progress), or roll back a crashed commit so the caller can retry. */
async function explainRefusal(store: Store, clusterKeyPrefix: string, guard: CommitGuard, options: CommitOptions): Promise<RollbackResult | undefined> {
  const [revision, pending] = await Promise.all([store.get(guard.revisionKey), store.get(pendingKey(clusterKeyPrefix))])
  if (pending) {
    return rollBackPending(store, clusterKeyPrefix, {
      ...(guard.lock ? {ownLockId: guard.lock.id} : {}),
      ...(options.abandonedAfterMs !== undefined ? {abandonedAfterMs: options.abandonedAfterMs} : {}),
    })
  }
  const actual = revision?.modRevision ?? 0
  if (actual !== guard.expectedModRevision) {
    throw new StaleError(
      `the plan is stale: ${guard.revisionKey} was at mod revision ${guard.expectedModRevision} when the plan was made, ` +
        `but is now at ${actual}${revision ? ` (cluster revision ${revision.value})` : ' (the cluster was removed)'}; ` +
        `someone changed the cluster since: plan again`,
      guard.expectedModRevision,
      actual,
    )
  }
  return undefined // a concurrent commit finished between our txn and our reads: the retry decides
}

async function assertAbandoned(
  store: Store,
  clusterKeyPrefix: string,
  record: PendingRecord,
  options: {ownLockId?: string; abandonedAfterMs?: number},
): Promise<void> {
  const what = `a multi-transaction commit (${record.opId}) to ${clusterKeyPrefix} by ${record.holder}, started ${record.started}`
  if (record.lock) {
    if (record.lock.id === options.ownLockId) return // our own lock: that commit's process is gone or is us after a crash-resume
    const lock = await store.get(record.lock.key)
    let liveId: unknown
    try {
      liveId = lock ? (JSON.parse(lock.value) as {id?: unknown}).id : undefined
    } catch {
      liveId = undefined
    }
    if (liveId === record.lock.id) {
      throw new RegistryError(`${what} is still in progress: its lock ${record.lock.key} (id ${record.lock.id}) is held; wait for it to finish`, 'COMMIT_IN_PROGRESS')
    }
    return
  }
  const age = Date.now() - Date.parse(record.started)
  const limit = options.abandonedAfterMs ?? DEFAULT_ABANDONED_AFTER_MS
  if (!(age >= limit)) {
    throw new RegistryError(`${what} may still be in progress (it holds no lock and is ${Math.round(age / 1000)} s old; treated as abandoned after ${limit / 1000} s)`, 'COMMIT_IN_PROGRESS')
  }
}

/**
 * Pack ops into batches of at most `max` ops: each group's keys (given groups first, then keys sharing a parent path)
 * stay in one batch unless the group alone exceeds `max`. `finalOps` go into the last batch, or one of their own.
 */
export function packBatches(ops: Map<string, Op>, groups: string[][], max: number, finalOps: Op[]): Op[][] {
  const units: Op[][] = []
  const placed = new Set<string>()
  for (const group of groups) {
    const unit: Op[] = []
    for (const key of group) {
      const op = ops.get(key)
      if (op && !placed.has(key)) {
        unit.push(op)
        placed.add(key)
      }
    }
    if (unit.length > 0) units.push(unit)
  }
  const byParent = new Map<string, Op[]>()
  for (const key of [...ops.keys()].sort()) {
    if (placed.has(key)) continue
    const parent = parentPrefix(key)
    byParent.set(parent, [...(byParent.get(parent) ?? []), ops.get(key)!])
  }
  units.push(...byParent.values())

  const batches: Op[][] = []
  let current: Op[] = []
  const flush = (): void => {
    if (current.length > 0) batches.push(current)
    current = []
  }
  for (const unit of units) {
    if (unit.length > max) {
      // Larger than one transaction: it cannot be atomic on its own; readers are still protected by the pending record.
      flush()
      for (let i = 0; i < unit.length; i += max) batches.push(unit.slice(i, i + max))
      continue
    }
    if (current.length + unit.length > max) flush()
    current.push(...unit)
  }
  flush()
  const last = batches[batches.length - 1]
  if (last && last.length + finalOps.length <= max) last.push(...finalOps)
  else batches.push(finalOps)
  return batches
}

async function runBatches(
  store: Store,
  pending: string,
  pendingModRevision: number,
  batches: Op[][],
  record: PendingRecord,
  onBatchCommitted: CommitOptions['onBatchCommitted'],
): Promise<number> {
  let revision = pendingModRevision
  for (let i = 0; i < batches.length; i++) {
    const result = await store.txn([{key: pending, target: 'mod', equals: pendingModRevision}], batches[i]!)
    if (!result.succeeded) {
      throw new RegistryError(
        `commit ${record.opId} was taken over after ${i} of ${batches.length} transactions (its pending record ${pending} changed: ` +
          `another writer judged it abandoned and is rolling it back); read the cluster and plan again`,
        'COMMIT_INTERRUPTED',
      )
    }
    revision = result.revision
    await onBatchCommitted?.(i + 1, batches.length)
  }
  return revision
}

function validateChange(clusterKeyPrefix: string, guard: CommitGuard, puts: Record<string, string>, deletes: string[], pending: string): void {
  const invalid = (message: string): RegistryError => new RegistryError(message, 'INVALID_CHANGE')
  if (!clusterKeyPrefix.endsWith('/')) throw invalid(`cluster key prefix "${clusterKeyPrefix}" must end with '/'`)
  if (!guard.revisionKey.startsWith(clusterKeyPrefix)) throw invalid(`revision key ${guard.revisionKey} is not under ${clusterKeyPrefix}`)
  // Deleting the revision key is how a cluster leaves the registry (destroy); any other change must write it.
  if (!(guard.revisionKey in puts) && !deletes.includes(guard.revisionKey)) {
    throw invalid(`the change does not write ${guard.revisionKey}: every registry change must bump the cluster revision`)
  }
  const seen = new Set<string>()
  for (const key of deletes) {
    if (key in puts) throw invalid(`key ${key} is both written and deleted in one change`)
    if (seen.has(key)) throw invalid(`key ${key} is deleted twice in one change`)
    seen.add(key)
  }
  if (pending in puts || seen.has(pending)) throw invalid(`${pending} is managed by the registry and cannot be part of a change`)
}

function parentPrefix(key: string): string {
  return key.slice(0, key.lastIndexOf('/') + 1)
}
