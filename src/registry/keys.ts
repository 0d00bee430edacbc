// Where the registry keeps things in the store (keys are relative to the store's prefix).
import {RegistryError} from './errors.js'

export const CLUSTERS_PREFIX = 'clusters/'

/** `clusters/<cluster>/`: every key of one cluster's tree lives under this. */
export function clusterPrefix(cluster: string): string {
  return `${CLUSTERS_PREFIX}${cluster}/`
}

/** The key every change bumps; its mod revision is what a plan is guarded by. */
export function clusterRevisionKey(cluster: string): string {
  return `${clusterPrefix(cluster)}cluster/revision`
}

/** Present only while a multi-transaction commit is in flight (see commit.ts). */
export function pendingKey(clusterKeyPrefix: string): string {
  return `${clusterKeyPrefix}cluster/pending`
}

export function lockKey(cluster: string): string {
  return `locks/${cluster}`
}

export function mappingKey(ip: string): string {
  return `mapping/${ip}`
}

/** Cluster names become key segments: keep them to one plain segment. */
export function assertClusterName(cluster: string): void {
  if (!/^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/i.test(cluster)) {
    throw new RegistryError(`"${cluster}" is not a valid cluster name (letters, digits, '.', '_', '-'; at most 63 characters)`, 'INVALID_CHANGE')
  }
}

/** `agents/<cluster>/<node-id>`: what a node's agent last reported through metad (kept by metad's lease). */
export function agentKey(cluster: string, nodeId: string): string {
  return `${agentsPrefix(cluster)}${nodeId}`
}

export function agentsPrefix(cluster: string): string {
  return `agents/${cluster}/`
}
