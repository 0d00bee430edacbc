// The registry's storage interface: a revisioned key-value store with guarded transactions, leases and watches.
// Two implementations: embedded (a local state directory) and etcd. One contract test suite runs against both.

export interface KeyValue {
  key: string
  value: string
  /** Store revision of the last change to this key. */
  modRevision: number
  /** Store revision at which this key was created. */
  createRevision: number
}

/** A transaction guard. `mod == 0` means "the key does not exist". */
export type Compare =
  | {key: string; target: 'mod'; equals: number}
  | {key: string; target: 'value'; equals: string}

export type Op =
  | {type: 'put'; key: string; value: string; lease?: string}
  | {type: 'delete'; key: string}
  | {type: 'deletePrefix'; prefix: string}

export interface TxnResult {
  succeeded: boolean
  /** Store revision after the transaction (unchanged when it did not succeed or wrote nothing). */
  revision: number
}

export interface WatchEvent {
  type: 'put' | 'delete'
  key: string
  value: string
  modRevision: number
}

export interface Watch {
  close(): Promise<void>
}

export interface Lease {
  id: string
  /** Revoke the lease: every key attached to it disappears. */
  revoke(): Promise<void>
}

/** Work this client has sent to the store, for benchmarks and `--verbose` output. */
export interface StoreCounters {
  /** Transactions committed or attempted. */
  txns: number
  /** Put/delete operations inside those transactions. */
  ops: number
  /** Key + value bytes of those operations (keys as stored, including any prefix). */
  bytes: number
}

export interface Store {
  /** Human description for messages, e.g. `etcd http://127.0.0.1:2379` or `embedded .shoal/`. */
  readonly description: string
  /** Largest number of ops one `txn` accepts (etcd: 128 by default; embedded: unlimited). */
  readonly maxOpsPerTxn: number
  readonly counters: StoreCounters
  get(key: string): Promise<KeyValue | undefined>
  /** Every key under a prefix, read at one consistent revision (the latest unless `revision` is given). */
  range(prefix: string, options?: {revision?: number}): Promise<{kvs: KeyValue[]; revision: number}>
  /** All compares hold → all ops apply atomically; otherwise nothing changes. */
  txn(compares: Compare[], ops: Op[]): Promise<TxnResult>
  /** Changes under a prefix after `afterRevision`, delivered in revision order. */
  watch(prefix: string, afterRevision: number, onEvents: (events: WatchEvent[]) => void, onError: (err: Error) => void): Promise<Watch>
  /** A lease kept alive by this process until revoked or the process dies; keys put with it vanish when it expires. */
  grantLease(ttlSeconds: number): Promise<Lease>
  /**
   * Forget the history up to `revision` (older values of keys, deleted keys): reading at or watching from an earlier
   * revision then fails as COMPACTED. Only where the store keeps that history itself (embedded: its change log); etcd
   * compacts its own history (its auto-compaction), so there this is absent.
   */
  compact?(revision: number): Promise<void>
  close(): Promise<void>
}

/**
 * Codes: STORE_UNAVAILABLE (unreachable, timeout), STORE_LOCK_TIMEOUT (embedded state dir busy too long),
 * COMPACTED (the revision asked for is no longer kept), UNSUPPORTED, LEASE_NOT_FOUND, INVALID_REQUEST, CLOSED.
 */
export type StoreErrorCode =
  | 'STORE_UNAVAILABLE'
  | 'STORE_LOCK_TIMEOUT'
  | 'COMPACTED'
  | 'UNSUPPORTED'
  | 'LEASE_NOT_FOUND'
  | 'INVALID_REQUEST'
  | 'CLOSED'

/** Raised for store-level failures (unreachable, timeout): a clear message, never a half-applied change. */
export class StoreError extends Error {
  constructor(message: string, readonly code: StoreErrorCode = 'STORE_UNAVAILABLE') {
    super(message)
    this.name = 'StoreError'
  }
}
