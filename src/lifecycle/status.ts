// `shoal status`: the registered nodes and their state, their health checked now, and the cluster's operations.
import type {HostSpec} from '../inventory/types.js'
import {secretValues} from '../plan/env.js'
import type {NodeState} from '../plan/types.js'
import {readLock, type LockInfo} from '../registry/index.js'
import type {Store} from '../store/store.js'
import type {Transport} from '../transport/transport.js'
import {EXIT, ShoalError} from '../errors.js'
import {describeProbe, healthTiming} from './health.js'
import {hostLookup} from './hosts.js'
import {scriptEnv} from './membership.js'
import {readCurrent, readFailure, readLast, type CurrentOperation, type FailureRecord, type LastOperation} from './operation-record.js'
import {redact} from './progress.js'
import {readRegistered} from './registered.js'

export type Health = 'healthy' | 'unhealthy' | 'unreachable' | 'no-check' | 'not-checked'

export interface NodeStatus {
  node_id: string
  role: string
  sid: number
  ip: string
  host: string
  state: NodeState
  bootstrap: boolean
  health: Health
  /** Why a node is unhealthy or unreachable. */
  detail?: string
}

export interface ClusterStatus {
  cluster: string
  registered: boolean
  revision?: number
  nodes: NodeStatus[]
  lock?: LockInfo
  /** An operation that has not finished (failed or interrupted): `shoal resume` continues it. */
  unfinished?: CurrentOperation & {failure?: FailureRecord}
  last?: LastOperation
}

/** Read the cluster's status; with a transport, run every node's health check once now (each bounded by its timeout). */
export async function clusterStatus(store: Store, cluster: string, options: {transport?: Transport; inventory: HostSpec[]}): Promise<ClusterStatus> {
  const [{state}, current, failure, last, lock] = await Promise.all([
    readRegistered(store, cluster), readCurrent(store, cluster), readFailure(store, cluster), readLast(store, cluster), readLock(store, cluster),
  ])
  if (!state && !current) throw new ShoalError(`cluster ${cluster} is not registered in ${store.description}`, 'not-registered', EXIT.failure)
  const lookup = hostLookup(options.inventory, cluster)
  const secrets = state ? secretValues(state.env, state.secretEnv) : []
  const nodes = await Promise.all(
    (state?.nodes ?? []).map(async (node): Promise<NodeStatus> => {
      const base = {node_id: node.node_id, role: node.role, sid: node.sid, ip: node.ip, host: node.host, state: node.state, bootstrap: node.bootstrap}
      const check = state?.spec?.roles[node.role]?.health_check
      if (!check) return {...base, health: 'no-check'}
      if (!options.transport) return {...base, health: 'not-checked'}
      try {
        const result = await options.transport.exec(lookup(node), check.cmd, {
          timeoutMs: healthTiming(check).timeoutMs, env: scriptEnv({cluster, nodes: []}, state.env, node), cwd: node.home,
        })
        return result.exitCode === 0 ? {...base, health: 'healthy'} : {...base, health: 'unhealthy', detail: redact(describeProbe(result), secrets)}
      } catch (error) {
        return {...base, health: 'unreachable', detail: (error as Error).message}
      }
    }),
  )
  return {
    cluster,
    registered: state !== undefined,
    ...(state ? {revision: state.revision} : {}),
    nodes,
    ...(lock ? {lock} : {}),
    ...(current ? {unfinished: {...current, ...(failure ? {failure} : {})}} : {}),
    ...(last ? {last} : {}),
  }
}
