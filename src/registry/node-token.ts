// Per-node tokens: proof of which node a caller is when one address holds several (metad's `X-Shoal-Token`).
//
// A token is HMAC-SHA256(cluster key, "<cluster>/<node-id>"), so the registry keeps one random key per cluster rather
// than a value per node. The key lives beside the operation record (`operations/<cluster>/`), which a destroy removes
// whole: the registry holds nothing of a destroyed cluster, and a cluster created again gets a new key.
import {createHmac, randomBytes, timingSafeEqual} from 'node:crypto'
import type {Store} from '../store/store.js'
import {assertClusterName} from './keys.js'

/** Relative to the node home; readable by the node's owner only. */
export const NODE_TOKEN_FILE = '.shoal/token'

export function nodeTokenKeyKey(cluster: string): string {
  return `operations/${cluster}/node-token-key`
}

/** The cluster's token key, created on first use (create-if-absent, so two writers agree on one key). */
export async function ensureNodeTokenKey(store: Store, cluster: string): Promise<string> {
  assertClusterName(cluster)
  const key = nodeTokenKeyKey(cluster)
  const found = await store.get(key)
  if (found) return found.value
  await store.txn([{key, target: 'mod', equals: 0}], [{type: 'put', key, value: randomBytes(32).toString('hex')}])
  const stored = await store.get(key)
  if (!stored) throw new Error(`${key} vanished right after it was written to ${store.description}`)
  return stored.value
}

export function nodeToken(tokenKey: string, cluster: string, nodeId: string): string {
  return createHmac('sha256', Buffer.from(tokenKey, 'hex')).update(`${cluster}/${nodeId}`).digest('hex')
}

/** Constant-time comparison, so a caller cannot learn a token byte by byte from response times. */
export function tokenMatches(tokenKey: string, cluster: string, nodeId: string, presented: string): boolean {
  const expected = Buffer.from(nodeToken(tokenKey, cluster, nodeId))
  const given = Buffer.from(presented.trim())
  return given.length === expected.length && timingSafeEqual(given, expected)
}
