// The default store for one machine: a revisioned key-value store in a local state directory (format: state-file.ts).
// Writers serialise on the directory's lock file, so any number of processes can commit to the same directory.
// Leases record an expiry; the owning process refreshes it, and keys on an expired lease read as absent and are
// deleted (at their own revision) by the next write. Watches combine fs.watch on the directory with a slow poll.
import {watch as fsWatch, type FSWatcher} from 'node:fs'
import path from 'node:path'
import {
  StoreError,
  type Compare,
  type KeyValue,
  type Lease,
  type Op,
  type Store,
  type StoreCounters,
  type TxnResult,
  type Watch,
  type WatchEvent,
} from '../store.js'
import {LOG_MAX_BYTES, LOG_MAX_CHANGES, StateFile, type Change, type LogEntry, type State, type StoredKv} from './state-file.js'

export interface EmbeddedStoreOptions {
  /** State directory; created when missing. */
  dir: string
  /** Split limit the registry honours; unlimited by default (tests lower it to exercise multi-transaction commits). */
  maxOpsPerTxn?: number
  /** Fallback poll for watches when fs.watch misses an event (network file systems, renames racing the watcher). */
  watchPollMs?: number
  /** Read only: a missing directory is not created (it reads as empty) and every write is refused. */
  readOnly?: boolean
}

export class EmbeddedStore implements Store {
  readonly description: string
  readonly maxOpsPerTxn: number
  readonly counters: StoreCounters = {txns: 0, ops: 0, bytes: 0}
  private readonly file: StateFile
  /** Leases this process keeps alive → their TTL (s); one timer refreshes them all in one write. */
  private readonly keepalives = new Map<string, number>()
  private refreshTimer: NodeJS.Timeout | undefined
  private refreshEvery = Infinity
  private readonly watches = new Set<Watch>()
  private readonly watchPollMs: number
  private readonly readOnly: boolean
  private closed = false

  constructor(options: EmbeddedStoreOptions) {
    this.file = new StateFile(path.resolve(options.dir))
    this.description = `embedded ${options.dir}`
    this.maxOpsPerTxn = options.maxOpsPerTxn ?? Infinity
    this.watchPollMs = options.watchPollMs ?? 500
    this.readOnly = options.readOnly === true
  }

  static async open(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(options)
    if (store.readOnly) return store
    try {
      await store.file.ensureDir()
    } catch (error) {
      throw new StoreError(`cannot create state directory ${options.dir}: ${(error as Error).message}`)
    }
    return store
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen()
    const state = await this.file.read()
    const kv = state.kvs[key]
    if (!kv || !leaseLive(state, kv, Date.now())) return undefined
    return toKeyValue(key, kv)
  }

  async range(prefix: string, options: {revision?: number} = {}): Promise<{kvs: KeyValue[]; revision: number}> {
    this.assertOpen()
    const state = await this.file.read()
    const now = Date.now()
    const revision = options.revision
    if (revision === undefined || revision >= state.revision) {
      if (revision !== undefined && revision > state.revision) {
        throw new StoreError(`revision ${revision} is in the future (store is at ${state.revision})`, 'INVALID_REQUEST')
      }
      const kvs = sortedKeys(state.kvs, prefix)
        .map(k => [k, state.kvs[k]!] as const)
        .filter(([, kv]) => leaseLive(state, kv, now))
        .map(([k, kv]) => toKeyValue(k, kv))
      return {kvs, revision: state.revision}
    }
    const past = rebuildAt(state, revision, prefix, this.description)
    return {kvs: sortedKeys(past, prefix).map(k => toKeyValue(k, past[k]!)), revision}
  }

  async txn(compares: Compare[], ops: Op[]): Promise<TxnResult> {
    this.assertOpen()
    this.assertWritable()
    if (ops.length > this.maxOpsPerTxn) {
      throw new StoreError(`transaction has ${ops.length} ops; ${this.description} accepts at most ${this.maxOpsPerTxn}`, 'INVALID_REQUEST')
    }
    this.counters.txns++
    for (const op of ops) {
      this.counters.ops++
      this.counters.bytes += Buffer.byteLength(op.type === 'deletePrefix' ? op.prefix : op.key) + (op.type === 'put' ? Buffer.byteLength(op.value) : 0)
    }
    return this.file.withLock(async () => {
      const now = Date.now()
      const state = cloneState(await this.file.read())
      // Lease cleanup gets its own revision (as etcd's expiry would), before the compares see the state.
      const expired = expireLeases(state, now)
      if (expired.length > 0) appendRevision(state, expired)
      const succeeded = compares.every(c => compareHolds(state, c))
      const changes = succeeded ? applyOps(state, ops, now, this.description) : []
      if (changes.length > 0) appendRevision(state, changes)
      if (expired.length === 0 && changes.length === 0) return {succeeded, revision: state.revision}
      await this.file.write(state)
      return {succeeded, revision: state.revision}
    })
  }

  async watch(
    prefix: string,
    afterRevision: number,
    onEvents: (events: WatchEvent[]) => void,
    onError: (err: Error) => void,
  ): Promise<Watch> {
    this.assertOpen()
    let seen = afterRevision
    let stopped = false
    let running: Promise<void> | undefined
    let again = false
    const wakeups: {watcher?: FSWatcher; poll?: NodeJS.Timeout} = {}

    const halt = (): void => {
      stopped = true
      wakeups.watcher?.close()
      clearInterval(wakeups.poll)
      this.watches.delete(handle)
    }
    const deliver = async (): Promise<void> => {
      const state = await this.file.read()
      if (!this.readOnly && hasExpiredLeasedKeys(state, Date.now())) {
        // Nobody else may write soon: clean up so watchers see lease expiry as delete events.
        await this.txn([], [])
        return deliver()
      }
      if (state.revision <= seen || stopped) return
      if (seen < state.compactedRevision) {
        halt()
        onError(new StoreError(`watch on "${prefix}" needs changes after revision ${seen}, but ${this.description} only keeps changes after ${state.compactedRevision} (compacted); re-read and watch again`, 'COMPACTED'))
        return
      }
      const events: WatchEvent[] = []
      for (const entry of state.log) {
        if (entry.r <= seen) continue
        for (const change of entry.changes) {
          if (change.k.startsWith(prefix)) events.push({type: change.t, key: change.k, value: change.v, modRevision: entry.r})
        }
      }
      seen = state.revision
      if (events.length > 0) onEvents(events)
    }
    const check = (): void => {
      if (stopped) return
      if (running) {
        again = true
        return
      }
      running = deliver()
        .catch(error => {
          if (!stopped) onError(error instanceof StoreError ? error : new StoreError(`watch on "${prefix}" failed: ${(error as Error).message}`))
        })
        .finally(() => {
          running = undefined
          if (again) {
            again = false
            check()
          }
        })
    }

    const handle: Watch = {
      close: async () => {
        halt()
        await running
      },
    }
    this.watches.add(handle)
    try {
      wakeups.watcher = fsWatch(this.file.dir, {persistent: true}, () => check())
      wakeups.watcher.on('error', () => undefined) // the poll keeps the watch going
    } catch {
      // fs.watch is unavailable here (some network file systems): the poll alone drives the watch
    }
    wakeups.poll = setInterval(check, this.watchPollMs)
    check()
    return handle
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.assertOpen()
    this.assertWritable()
    if (!(ttlSeconds > 0)) throw new StoreError(`lease TTL must be positive, got ${ttlSeconds}`, 'INVALID_REQUEST')
    const id = await this.file.withLock(async () => {
      const state = cloneState(await this.file.read())
      const leaseId = String(state.nextLeaseId++)
      state.leases[leaseId] = {ttl: ttlSeconds, expiresAt: Date.now() + ttlSeconds * 1000}
      await this.file.write(state)
      return leaseId
    })
    this.keepalives.set(id, ttlSeconds)
    this.scheduleRefresh()
    return {id, revoke: () => this.revokeLease(id)}
  }

  async compact(revision: number): Promise<void> {
    this.assertOpen()
    this.assertWritable()
    await this.file.withLock(async () => {
      const current = await this.file.read()
      const upTo = Math.min(revision, current.revision)
      if (upTo <= current.compactedRevision && current.log.every((e) => e.r > upTo)) return
      const state = cloneState(current)
      state.log = state.log.filter((e) => e.r > upTo)
      state.compactedRevision = Math.max(state.compactedRevision, upTo)
      await this.file.write(state)
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    // Revoke what this process still holds (as the etcd store does); a failure leaves the lease to expire.
    for (const id of [...this.keepalives.keys()]) await this.revokeLease(id).catch(() => undefined)
    this.closed = true
    await Promise.all([...this.watches].map(w => w.close()))
  }

  /**
   * Refresh every lease this process holds in one locked write, a third of the shortest TTL apart: a lease per agent
   * report (or per lock) refreshed on its own would cost a durable write each, and 50 of them kept the file busy.
   */
  private scheduleRefresh(): void {
    if (this.keepalives.size === 0) {
      clearInterval(this.refreshTimer)
      this.refreshTimer = undefined
      this.refreshEvery = Infinity
      return
    }
    const every = Math.max(50, (Math.min(...this.keepalives.values()) * 1000) / 3)
    // A running timer stays unless a shorter TTL needs it sooner: restarting it on every grant could starve it.
    if (this.refreshTimer && every >= this.refreshEvery) return
    clearInterval(this.refreshTimer)
    this.refreshEvery = every
    this.refreshTimer = setInterval(() => {
      this.refreshLeases().catch(() => undefined) // a missed refresh is retried next tick; expiry is the safe outcome
    }, every)
    this.refreshTimer.unref()
  }

  private async refreshLeases(): Promise<void> {
    if (this.keepalives.size === 0) return
    await this.file.withLock(async () => {
      const current = await this.file.read()
      const state = cloneState(current)
      const now = Date.now()
      for (const [id] of this.keepalives) {
        const lease = current.leases[id]
        if (!lease || lease.expiresAt < now) {
          this.stopKeepalive(id) // expired or revoked elsewhere: refreshing would resurrect it
          continue
        }
        state.leases[id] = {ttl: lease.ttl, expiresAt: now + lease.ttl * 1000}
      }
      await this.file.write(state)
    })
  }

  private async revokeLease(id: string): Promise<void> {
    this.stopKeepalive(id)
    await this.file.withLock(async () => {
      const state = cloneState(await this.file.read())
      const expired = expireLeases(state, Date.now())
      const changes: Change[] = []
      if (state.leases[id]) {
        delete state.leases[id]
        for (const key of Object.keys(state.kvs).sort()) {
          const kv = state.kvs[key]!
          if (kv.l === id) {
            changes.push({k: key, t: 'delete', v: '', prev: kv})
            delete state.kvs[key]
          }
        }
      }
      if (expired.length > 0) appendRevision(state, expired)
      if (changes.length > 0) appendRevision(state, changes)
      await this.file.write(state)
    })
  }

  private stopKeepalive(id: string): void {
    const ttl = this.keepalives.get(id)
    this.keepalives.delete(id)
    // The shortest TTL may have gone with it; none left stops the timer.
    if (ttl !== undefined) this.scheduleRefresh()
  }

  private assertWritable(): void {
    if (this.readOnly) throw new StoreError(`${this.description} was opened read-only`, 'UNSUPPORTED')
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError(`${this.description} is closed`, 'CLOSED')
  }
}

function toKeyValue(key: string, kv: StoredKv): KeyValue {
  return {key, value: kv.v, modRevision: kv.m, createRevision: kv.c}
}

function sortedKeys(kvs: Record<string, StoredKv>, prefix: string): string[] {
  return Object.keys(kvs)
    .filter(k => k.startsWith(prefix))
    .sort()
}

function leaseLive(state: State, kv: StoredKv, now: number): boolean {
  if (kv.l === undefined) return true
  const lease = state.leases[kv.l]
  return lease !== undefined && lease.expiresAt >= now
}

function hasExpiredLeasedKeys(state: State, now: number): boolean {
  return Object.values(state.kvs).some(kv => !leaseLive(state, kv, now))
}

/**
 * A copy a transaction may change: the containers are new, the entries shared. Nothing here changes an entry in place
 * (a put, a lease refresh or a log entry is always a new object), so the copy costs the number of keys, not their bytes.
 */
function cloneState(state: State): State {
  return {...state, kvs: {...state.kvs}, leases: {...state.leases}, log: [...state.log]}
}

/** Drop expired leases and return the deletes of the keys they carried (not yet committed). */
function expireLeases(state: State, now: number): Change[] {
  for (const [id, lease] of Object.entries(state.leases)) if (lease.expiresAt < now) delete state.leases[id]
  const changes: Change[] = []
  for (const key of Object.keys(state.kvs).sort()) {
    const kv = state.kvs[key]!
    if (kv.l !== undefined && !state.leases[kv.l]) {
      changes.push({k: key, t: 'delete', v: '', prev: kv})
      delete state.kvs[key]
    }
  }
  return changes
}

function compareHolds(state: State, compare: Compare): boolean {
  const kv = state.kvs[compare.key]
  if (compare.target === 'mod') return (kv?.m ?? 0) === compare.equals
  // As in etcd, a value compare on an absent key fails.
  return kv !== undefined && kv.v === compare.equals
}

/** Apply ops to state.kvs at the next revision; the caller commits the returned changes. */
function applyOps(state: State, ops: Op[], now: number, description: string): Change[] {
  const changes: Change[] = []
  const revision = state.revision + 1
  const del = (key: string): void => {
    const prev = state.kvs[key]
    if (!prev) return
    changes.push({k: key, t: 'delete', v: '', prev})
    delete state.kvs[key]
  }
  for (const op of ops) {
    if (op.type === 'put') {
      if (op.lease !== undefined) {
        const lease = state.leases[op.lease]
        if (!lease || lease.expiresAt < now) throw new StoreError(`lease ${op.lease} not found in ${description} (expired or revoked)`, 'LEASE_NOT_FOUND')
      }
      const prev = state.kvs[op.key]
      const next: StoredKv = {v: op.value, c: prev?.c ?? revision, m: revision}
      if (op.lease !== undefined) next.l = op.lease
      changes.push(prev ? {k: op.key, t: 'put', v: op.value, prev} : {k: op.key, t: 'put', v: op.value})
      state.kvs[op.key] = next
    } else if (op.type === 'delete') {
      del(op.key)
    } else {
      for (const key of sortedKeys(state.kvs, op.prefix)) del(key)
    }
  }
  return changes
}

/** Give `changes` the next revision, append them to the log and trim it (oldest first) to its bounds. */
function appendRevision(state: State, changes: Change[]): void {
  const revision = ++state.revision
  state.log.push({r: revision, changes})
  let total = state.log.reduce((n, e) => n + e.changes.length, 0)
  let bytes = state.log.reduce((n, e) => n + entryBytes(e), 0)
  while ((total > LOG_MAX_CHANGES || bytes > LOG_MAX_BYTES) && state.log.length > 0) {
    const dropped = state.log.shift()!
    total -= dropped.changes.length
    bytes -= entryBytes(dropped)
    state.compactedRevision = dropped.r
  }
}

/** About what an entry costs in state.json (keys and values; the JSON punctuation is left out). */
function entryBytes(entry: LogEntry): number {
  let n = 0
  for (const c of entry.changes) n += c.k.length + c.v.length + (c.prev ? c.prev.v.length : 0)
  return n
}

/** The keys under `prefix` as they were at `revision`, undoing logged changes newest first. */
function rebuildAt(state: State, revision: number, prefix: string, description: string): Record<string, StoredKv> {
  if (revision < state.compactedRevision) {
    throw new StoreError(`revision ${revision} of ${description} was compacted (history kept after revision ${state.compactedRevision})`, 'COMPACTED')
  }
  const kvs: Record<string, StoredKv> = {}
  for (const key of sortedKeys(state.kvs, prefix)) kvs[key] = state.kvs[key]!
  for (let i = state.log.length - 1; i >= 0; i--) {
    const entry = state.log[i]!
    if (entry.r <= revision) break
    for (let j = entry.changes.length - 1; j >= 0; j--) {
      const change = entry.changes[j]!
      if (!change.k.startsWith(prefix)) continue
      if (change.prev) kvs[change.k] = change.prev
      else delete kvs[change.k]
    }
  }
  return kvs
}
