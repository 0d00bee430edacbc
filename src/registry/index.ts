// The registry: a cluster's metadata tree in a Store, changed only by guarded commits under a cluster lock.
export {commitChanges, rollBackPending, packBatches, defaultHolder, type CommitGuard, type CommitOptions, type CommitResult, type RollbackResult, type PendingRecord} from './commit.js'
export {acquireLock, forceUnlock, readLock, DEFAULT_LOCK_TTL_SECONDS, type ClusterLock, type LockInfo} from './lock.js'
export {readCluster, listClusters, type ClusterSnapshot} from './read.js'
export {forgetHistory} from './history.js'
export {RegistryError, StaleError, type RegistryErrorCode} from './errors.js'
export {CLUSTERS_PREFIX, clusterPrefix, clusterRevisionKey, pendingKey, lockKey, mappingKey, agentKey, agentsPrefix, assertClusterName} from './keys.js'
export {parseAgentReport, readAgentReports, type AgentReport} from './agent-report.js'
export {NODE_TOKEN_FILE, ensureNodeTokenKey, nodeToken, nodeTokenKeyKey, tokenMatches} from './node-token.js'
