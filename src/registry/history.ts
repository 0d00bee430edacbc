// Forgetting the store's history once no reader needs it: after an operation ends, the values it replaced (a changed
// password) and every key of a destroyed cluster would otherwise stay in the embedded store's change log.
import type {Store} from '../store/store.js'
import {CLUSTERS_PREFIX} from './keys.js'

/**
 * Compact the store's history up to now, except what a multi-transaction commit still in flight needs: its readers and
 * its rollback read the store as it was just before its pending marker was created (commit.ts).
 */
export async function forgetHistory(store: Store): Promise<void> {
  if (!store.compact) return
  const {kvs, revision} = await store.range(CLUSTERS_PREFIX)
  let upTo = revision
  for (const kv of kvs) if (kv.key.endsWith('/cluster/pending')) upTo = Math.min(upTo, kv.createRevision - 1)
  await store.compact(upTo)
}
