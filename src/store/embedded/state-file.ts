// The embedded store's on-disk state: one JSON document replaced atomically, plus the lock that serialises writers.
//
// Format (state directory, default `.shoal/`):
//   state.json   the whole store, rewritten on every change:
//     { format: 1,
//       revision: N,                 // store revision, +1 per transaction that changed a key
//       compactedRevision: C,        // `log` holds every change with revision > C
//       nextLeaseId: L,
//       kvs:    { "<key>": {v: value, c: createRevision, m: modRevision, l?: leaseId} },
//       leases: { "<id>": {ttl: seconds, expiresAt: epoch ms} },
//       log:    [ {r: revision, changes: [{k, t: "put"|"delete", v, prev?: {v, c, m, l?}}]} ] }  // oldest first
//   state.json.<pid>.<random>.tmp   a write in progress; garbage once its writer is gone (removed by the next writer)
//   lock         O_EXCL lock file {pid, host, time, nonce} held while a writer reads-modifies-writes state.json
//   lock.break   O_EXCL guard so only one process at a time removes a stale lock
//
// Crash safety: a write goes to a temp file, is fsynced, renamed over state.json, and the directory is fsynced, so
// state.json is always a complete old or new document. Readers never lock: they stat state.json and re-parse only
// when its identity (inode, size, mtime, ctime) changed, so repeated reads are cheap.
// The log keeps `prev` for every change so a past revision can be rebuilt (range at a revision, rollbacks) and
// watchers can catch up; it is trimmed to LOG_MAX_CHANGES changes and LOG_MAX_BYTES bytes, and what was trimmed is
// reported as compacted. The registry compacts it whole when an operation ends (`compact`), so no replaced value
// (a changed password) and nothing of a destroyed cluster stays in the file.
import {randomBytes} from 'node:crypto'
import {promises as fs, constants as fsConstants} from 'node:fs'
import {hostname} from 'node:os'
import path from 'node:path'
import {StoreError} from '../store.js'

export const STATE_FORMAT = 1
export const LOG_MAX_CHANGES = 10_000
/** The log is bounded in bytes as well: a few large values (rendered files, recorded plans) must not make every write slow. */
export const LOG_MAX_BYTES = 1024 * 1024
/** Writers hold the lock for milliseconds; waiting longer than this means something is wrong. */
const LOCK_WAIT_MS = 15_000
/** A lock whose content cannot be read (torn by a crash) or that is this old is stale whoever holds it. */
const LOCK_STALE_AGE_MS = 60_000
const UNREADABLE_LOCK_STALE_AGE_MS = 5_000

export interface StoredKv {v: string; c: number; m: number; l?: string}
export interface Change {k: string; t: 'put' | 'delete'; v: string; prev?: StoredKv}
export interface LogEntry {r: number; changes: Change[]}
export interface StoredLease {ttl: number; expiresAt: number}

export interface State {
  format: number
  revision: number
  compactedRevision: number
  nextLeaseId: number
  kvs: Record<string, StoredKv>
  leases: Record<string, StoredLease>
  log: LogEntry[]
}

export function emptyState(): State {
  return {format: STATE_FORMAT, revision: 0, compactedRevision: 0, nextLeaseId: 1, kvs: {}, leases: {}, log: []}
}

interface CachedState {identity: string; state: State}

/** Reads and writes state.json in one directory; caches the parsed document by file identity. */
export class StateFile {
  readonly statePath: string
  readonly lockPath: string
  private cache: CachedState | undefined

  constructor(readonly dir: string) {
    this.statePath = path.join(dir, 'state.json')
    this.lockPath = path.join(dir, 'lock')
  }

  async ensureDir(): Promise<void> {
    await fs.mkdir(this.dir, {recursive: true})
  }

  /** The current state. Callers must not mutate it (it is shared with the cache): use `clone` first. */
  async read(): Promise<State> {
    let identity: string
    try {
      const st = await fs.stat(this.statePath, {bigint: true})
      identity = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyState()
      throw new StoreError(`cannot read ${this.statePath}: ${(error as Error).message}`)
    }
    if (this.cache?.identity === identity) return this.cache.state
    let text: string
    try {
      text = await fs.readFile(this.statePath, 'utf8')
    } catch (error) {
      // Replaced between stat and read: read again.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return this.read()
      throw new StoreError(`cannot read ${this.statePath}: ${(error as Error).message}`)
    }
    let state: State
    try {
      state = JSON.parse(text) as State
    } catch (error) {
      throw new StoreError(`${this.statePath} is not valid JSON (${(error as Error).message}); it was not written by shoal or was edited by hand`, 'INVALID_REQUEST')
    }
    if (state.format !== STATE_FORMAT) {
      throw new StoreError(`${this.statePath} has format ${String(state.format)}, this shoal reads format ${STATE_FORMAT}`, 'UNSUPPORTED')
    }
    // Re-stat so the cached identity belongs to the content we read (a rename may have happened in between).
    const st = await fs.stat(this.statePath, {bigint: true}).catch(() => undefined)
    const after = st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : ''
    if (after === identity) this.cache = {identity, state}
    return state
  }

  /** Replace state.json atomically and durably. Only call while holding the lock; `state` must not change afterwards. */
  async write(state: State): Promise<void> {
    const tmp = `${this.statePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    const handle = await fs.open(tmp, 'w', 0o600)
    try {
      await handle.writeFile(JSON.stringify(state))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(tmp, this.statePath)
    const dirHandle = await fs.open(this.dir, 'r')
    try {
      await dirHandle.sync()
    } finally {
      await dirHandle.close()
    }
    // What we wrote is what the next read would parse (we hold the lock): keep it, so a writer in a burst of
    // transactions (an operation's progress marks) does not parse its own file back before each one.
    const st = await fs.stat(this.statePath, {bigint: true}).catch(() => undefined)
    this.cache = st ? {identity: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, state} : undefined
  }

  /** Run `fn` holding the directory's exclusive lock. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const mine = await this.acquireLock()
    try {
      await this.removeAbandonedTempFiles()
      return await fn()
    } finally {
      // Only remove our own lock: if we stalled past LOCK_STALE_AGE_MS, another process may have broken it and taken its own.
      const current = await fs.readFile(this.lockPath, 'utf8').catch(() => undefined)
      if (current === mine) await fs.unlink(this.lockPath).catch(() => undefined)
    }
  }

  /** Take the lock; returns the content written, which identifies this holder. */
  private async acquireLock(): Promise<string> {
    const deadline = Date.now() + LOCK_WAIT_MS
    const mine = JSON.stringify({pid: process.pid, host: hostname(), time: new Date().toISOString(), nonce: randomBytes(6).toString('hex')})
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await fs.open(this.lockPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o600)
        try {
          await handle.writeFile(mine)
        } finally {
          await handle.close()
        }
        return mine
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new StoreError(`cannot create lock file ${this.lockPath}: ${(error as Error).message}`)
        }
      }
      const holder = await this.readLockFile()
      if (holder && isStale(holder)) {
        await this.breakStaleLock(holder.raw)
        continue
      }
      if (Date.now() > deadline) {
        throw new StoreError(
          `state directory ${this.dir} stayed locked for ${LOCK_WAIT_MS / 1000} s by ${holder?.raw ?? 'an unknown process'}; ` +
            `if no shoal process is running, delete ${this.lockPath}`,
          'STORE_LOCK_TIMEOUT',
        )
      }
      // Exponential backoff capped at 25 ms, with full jitter so 20 contenders do not retry in lockstep.
      await sleep(Math.random() * Math.min(25, 1 << Math.min(attempt, 5)))
    }
  }

  private async readLockFile(): Promise<LockHolder | undefined> {
    try {
      const [raw, st] = await Promise.all([fs.readFile(this.lockPath, 'utf8'), fs.stat(this.lockPath)])
      let parsed: {pid?: unknown; host?: unknown} | undefined
      try {
        parsed = JSON.parse(raw) as {pid?: unknown; host?: unknown}
      } catch {
        parsed = undefined
      }
      return {
        raw,
        pid: typeof parsed?.pid === 'number' ? parsed.pid : undefined,
        host: typeof parsed?.host === 'string' ? parsed.host : undefined,
        ageMs: Date.now() - st.mtimeMs,
      }
    } catch {
      return undefined // released meanwhile
    }
  }

  /** Remove a stale lock, making sure no other breaker removes a fresh lock that replaced it. */
  private async breakStaleLock(staleContent: string): Promise<void> {
    const breakPath = `${this.lockPath}.break`
    try {
      const handle = await fs.open(breakPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o600)
      await handle.close()
    } catch {
      const st = await fs.stat(breakPath).catch(() => undefined)
      if (st && Date.now() - st.mtimeMs > UNREADABLE_LOCK_STALE_AGE_MS) await fs.unlink(breakPath).catch(() => undefined)
      return
    }
    try {
      const current = await fs.readFile(this.lockPath, 'utf8').catch(() => undefined)
      if (current === staleContent) await fs.unlink(this.lockPath).catch(() => undefined)
    } finally {
      await fs.unlink(breakPath).catch(() => undefined)
    }
  }

  private async removeAbandonedTempFiles(): Promise<void> {
    // Only the lock holder writes temp files, so any present now belong to a crashed writer.
    const names = await fs.readdir(this.dir).catch(() => [] as string[])
    await Promise.all(
      names.filter(n => n.startsWith('state.json.') && n.endsWith('.tmp')).map(n => fs.unlink(path.join(this.dir, n)).catch(() => undefined)),
    )
  }
}

interface LockHolder {raw: string; pid?: number; host?: string; ageMs: number}

function isStale(holder: LockHolder): boolean {
  if (holder.pid === undefined || holder.host === undefined) return holder.ageMs > UNREADABLE_LOCK_STALE_AGE_MS
  if (holder.ageMs > LOCK_STALE_AGE_MS) return true
  if (holder.host !== hostname()) return false
  return !processAlive(holder.pid)
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}
