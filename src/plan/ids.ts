// Identity allocation: server ids (lowest never handed out; released ones only once the bound is reached) and node ids.
import {DEFAULTS, type RoleSpec} from '../spec/types.js'
import type {RoleIds} from './types.js'

export interface SidBounds {
  start: number
  upperBound: number
}

export function sidBounds(role: RoleSpec): SidBounds {
  return {start: role.server_id?.start ?? DEFAULTS.serverIdStart, upperBound: role.server_id?.upper_bound ?? DEFAULTS.serverIdUpperBound}
}

export const NO_IDS: RoleIds = {sidHigh: 0, nodeSeq: 0, released: []}

export function nodeId(cluster: string, role: string, seq: number): string {
  return `${cluster}-${role}-${seq}`
}

export interface Allocation {
  ids: RoleIds
  /** New nodes in allocation order: sids ascending while the high-water mark grows. */
  nodes: {nodeId: string; sid: number}[]
}

/**
 * Hand out `count` new identities for a role. `inUse` holds the sids of every node still present (leaving ones
 * included): a released sid is reused only when the high-water mark reached the bound and its node is fully gone.
 * Returns undefined when the role has no sid left.
 */
export function allocate(cluster: string, role: string, ids: RoleIds, bounds: SidBounds, inUse: ReadonlySet<number>, count: number): Allocation | undefined {
  let {sidHigh, nodeSeq} = ids
  const released = [...ids.released]
  const nodes: Allocation['nodes'] = []
  for (let i = 0; i < count; i++) {
    let sid = Math.max(sidHigh + 1, bounds.start)
    if (sid <= bounds.upperBound) {
      sidHigh = sid
    } else {
      const at = released.findIndex((r) => r >= bounds.start && r <= bounds.upperBound && !inUse.has(r))
      if (at < 0) return undefined
      sid = released[at]!
      released.splice(at, 1)
    }
    nodeSeq += 1
    nodes.push({nodeId: nodeId(cluster, role, nodeSeq), sid})
  }
  return {ids: {sidHigh, nodeSeq, released}, nodes}
}

/** Records once the given sids' nodes are fully gone: they join the released list (ascending, no duplicates). */
export function release(ids: RoleIds, sids: readonly number[]): RoleIds {
  if (sids.length === 0) return ids
  const released = [...new Set([...ids.released, ...sids])].sort((a, b) => a - b)
  return {...ids, released}
}
