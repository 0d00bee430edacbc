// `shoal status`: the registered nodes and their state, their health checked now, and the cluster's operations.
import type {HostSpec} from '../inventory/types.js'
import {secretValues} from '../plan/env.js'
import type {NodeState} from '../plan/types.js'
import {clusterRevisionKey, readAgentReports, readLock, type AgentReport, type LockInfo} from '../registry/index.js'
import type {Store} from '../store/store.js'
import type {Transport} from '../transport/transport.js'
import {EXIT, ShoalError} from '../errors.js'
import {describeProbe, healthTiming} from './health.js'
import {hostLookup} from './hosts.js'
import {scriptEnv} from './membership.js'
import {readCurrent, readFailure, readLast, type CurrentOperation, type FailureRecord, type LastOperation} from '../operation/record.js'
import {redact} from './progress.js'
import {lastLines, readLogs, readTimings, type StepTiming} from '../operation/history.js'
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
  /** Its agent, where the cluster's nodes run agents (any node's agent has reported). */
  agent?: AgentStatus
}

/**
 * `down`: no live report (never started, dead, or its metad gone for longer than the report lease). `stale`: its files
 * reflect a revision before the cluster's last commit. `failed`: it could not bring the files to what it rendered.
 */
export interface AgentStatus {
  state: 'in-sync' | 'stale' | 'failed' | 'down'
  revision?: number
  errors?: string[]
  reported?: string
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
  /** Step timings of the unfinished operation, else of the last one (seconds so far for a running step). */
  steps?: StepTiming[]
  /** The last output lines of the node a failed step stopped on (of the unfinished or last operation). */
  failedOutput?: {step: string; node: string; lines: string[]}
}

/** Lines of a failed step's output `status` shows. */
export const FAILED_LINES = 15

function agentStatus(report: AgentReport | undefined, committed: number): AgentStatus {
  if (!report) return {state: 'down'}
  const state = report.errors.length ? 'failed' : report.revision < committed ? 'stale' : 'in-sync'
  return {state, revision: report.revision, reported: report.at, ...(report.errors.length ? {errors: report.errors} : {})}
}

/** Read the cluster's status; with a transport, run every node's health check once now (each bounded by its timeout). */
export async function clusterStatus(store: Store, cluster: string, options: {transport?: Transport; inventory: HostSpec[]}): Promise<ClusterStatus> {
  const [{state}, current, failure, last, lock, reports, revisionKey] = await Promise.all([
    readRegistered(store, cluster), readCurrent(store, cluster), readFailure(store, cluster), readLast(store, cluster), readLock(store, cluster),
    readAgentReports(store, cluster), store.get(clusterRevisionKey(cluster)),
  ])
  if (!state && !current) throw new ShoalError(`cluster ${cluster} is not registered in ${store.description}`, 'not-registered', EXIT.failure)
  const lookup = hostLookup(options.inventory, cluster)
  const secrets = state ? secretValues(state.env, state.secretEnv) : []
  const agents = state?.spec?.agent === true || reports.size > 0
  const nodes = await Promise.all(
    (state?.nodes ?? []).map(async (node): Promise<NodeStatus> => {
      const base = {
        node_id: node.node_id, role: node.role, sid: node.sid, ip: node.ip, host: node.host, state: node.state, bootstrap: node.bootstrap,
        ...(agents ? {agent: agentStatus(reports.get(node.node_id), revisionKey?.modRevision ?? 0)} : {}),
      }
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
  const runId = current?.id ?? last?.id
  const steps = runId ? await readTimings(store, cluster, runId) : []
  const failedStep = current ? failure?.step : last?.result === 'failed' ? last.step : undefined
  let failedOutput: ClusterStatus['failedOutput']
  if (runId && failedStep) {
    const logs = (await readLogs(store, cluster, runId)).filter((l) => l.step === failedStep)
    const log = logs.find((l) => l.node === failure?.node) ?? logs.find((l) => l.exit !== undefined && l.exit.exitCode !== 0) ?? logs[0]
    if (log) failedOutput = {step: log.step, node: log.node, lines: lastLines(log, FAILED_LINES)}
  }
  return {
    cluster,
    registered: state !== undefined,
    ...(steps.length ? {steps} : {}),
    ...(failedOutput ? {failedOutput} : {}),
    ...(state ? {revision: state.revision} : {}),
    nodes,
    ...(lock ? {lock} : {}),
    ...(current ? {unfinished: {...current, ...(failure ? {failure} : {})}} : {}),
    ...(last ? {last} : {}),
  }
}
