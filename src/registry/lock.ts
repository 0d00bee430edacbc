// One operation per cluster at a time: a lease-backed lock key that records who holds it, doing what, since when.
import {randomUUID} from 'node:crypto'
import type {Store} from '../store/store.js'
import {defaultHolder} from './commit.js'
import {RegistryError} from './errors.js'
import {assertClusterName, lockKey} from './keys.js'

export interface LockInfo {
  id: string
  /** `user@host pid N` */
  holder: string
  operation: string
  /** ISO time the lock was taken. */
  started: string
}

export interface ClusterLock {
  cluster: string
  key: string
  info: LockInfo
  /** Give the lock up (revokes its lease). Safe after a force-unlock: it only removes keys of its own lease. */
  release(): Promise<void>
}

export const DEFAULT_LOCK_TTL_SECONDS = 15

/** Attempts at a lock that was held when tried but free when its holder was looked up. */
const FREE_LOCK_ATTEMPTS = 5

/**
 * Take the cluster's lock or fail with LOCKED naming the holder. The lock lives on a lease this process keeps alive;
 * if the process dies, the lock vanishes within the TTL.
 */
export async function acquireLock(
  store: Store,
  cluster: string,
  options: {operation: string; holder?: string; ttlSeconds?: number},
): Promise<ClusterLock> {
  assertClusterName(cluster)
  const key = lockKey(cluster)
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_LOCK_TTL_SECONDS
  // A lock released between our attempt and our look at its holder is free: try again rather than fail for nothing
  // (a few times: in a stampede of waiters, another one may win each round).
  for (let attempt = 1; ; attempt++) {
    const info: LockInfo = {id: randomUUID(), holder: options.holder ?? defaultHolder(), operation: options.operation, started: new Date().toISOString()}
    const lease = await store.grantLease(ttlSeconds)
    let taken = false
    try {
      const result = await store.txn([{key, target: 'mod', equals: 0}], [{type: 'put', key, value: JSON.stringify(info), lease: lease.id}])
      taken = result.succeeded
    } finally {
      if (!taken) await lease.revoke().catch(() => undefined)
    }
    if (taken) return {cluster, key, info, release: () => lease.revoke()}
    const holder = await readLock(store, cluster)
    if (holder) {
      throw new RegistryError(
        `cluster ${cluster} is locked by ${holder.holder}, running "${holder.operation}" since ${holder.started}. ` +
          `If that process is gone, the lock expires by itself within ${ttlSeconds} s; ` +
          `to remove it now: shoal unlock ${cluster} --force --id ${holder.id}`,
        'LOCKED',
      )
    }
    if (attempt >= FREE_LOCK_ATTEMPTS) throw new RegistryError(`cluster ${cluster} was locked a moment ago and is free now; try again`, 'LOCKED')
  }
}

export async function readLock(store: Store, cluster: string): Promise<LockInfo | undefined> {
  assertClusterName(cluster)
  const kv = await store.get(lockKey(cluster))
  if (!kv) return undefined
  try {
    return JSON.parse(kv.value) as LockInfo
  } catch {
    return {id: '?', holder: 'unknown', operation: 'unknown', started: 'unknown'}
  }
}

/** Remove someone else's lock, only if it is still the one with `id` (so a lock taken meanwhile is never removed). */
export async function forceUnlock(store: Store, cluster: string, id: string): Promise<LockInfo> {
  assertClusterName(cluster)
  const key = lockKey(cluster)
  const kv = await store.get(key)
  if (!kv) throw new RegistryError(`cluster ${cluster} is not locked`, 'NOT_LOCKED')
  const info = await readLock(store, cluster)
  if (!info || info.id !== id) {
    throw new RegistryError(
      `cluster ${cluster} is locked with id ${info?.id ?? '?'} (by ${info?.holder ?? 'unknown'}, "${info?.operation ?? 'unknown'}"), not ${id}; refusing to remove it`,
      'LOCK_ID_MISMATCH',
    )
  }
  const result = await store.txn([{key, target: 'mod', equals: kv.modRevision}], [{type: 'delete', key}])
  if (!result.succeeded) throw new RegistryError(`the lock of cluster ${cluster} changed while unlocking; look again`, 'LOCK_ID_MISMATCH')
  return info
}
