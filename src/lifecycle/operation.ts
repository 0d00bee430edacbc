// One operation end to end: lock → (resume the recorded plan | plan and record a new one) → execute → finish or record
// the failure → unlock. Every command that changes hosts (create, apply, scale, destroy, run, resume) goes through here.
import {randomUUID} from 'node:crypto'
import type {HostSpec} from '../inventory/types.js'
import {previousValues} from '../plan/env.js'
import {hasChanges} from '../plan/show.js'
import type {ClusterState, NodeFacts, Operation, Plan} from '../plan/types.js'
import {protectSecrets} from '../store/sealed.js'
import type {Store} from '../store/store.js'
import {SshTransport} from '../transport/ssh.js'
import type {Transport} from '../transport/transport.js'
import {EXIT, ShoalError} from '../errors.js'
import {describeOperation} from './apply.js'
import type {FollowResult} from './dependents.js'
import {executePlan, hostsReached, StepFailed} from './execute.js'
import {hostLookup} from './hosts.js'
import {
  beginOperation,
  chainEnvs,
  closeUnfinished,
  extendChain,
  factsKey,
  finishOperation,
  inventoryKey,
  metadUrlKey,
  readStoredMetadUrl,
  operationsPrefix,
  readCurrent,
  readOperationData,
  readStoredInventory,
  recordFailure,
  runSummary,
  standingFacts,
  type CurrentOperation,
  type LastOperation,
  type OperationData,
  unfinishedError,
  waysOut,
} from '../operation/record.js'
import type {Reporter} from './progress.js'
import {lockCluster} from './register.js'
import {beginRun, updateRun} from '../operation/history.js'
import {defaultHolder} from '../registry/index.js'
import {markPhase} from '../util/phases.js'

/** Longest the first step waits for connections that are still being set up (a host that answers not at all). */
const CONNECT_AHEAD_WAIT_MS = 10_000

/** Waits for `promise` (which never rejects) or `ms`, whichever comes first. */
async function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))])
  clearTimeout(timer)
}

/** Whether a step other than a registry commit works on a node the operation does not create (one that may run). */
export function reachesRunningNodes(plan: Plan): boolean {
  const running = new Set(plan.nodes.filter((n) => n.change !== 'create').map((n) => n.node_id))
  return plan.steps.some((step) => step.kind !== 'commit' && step.nodes.some((id) => running.has(id)))
}

/** What a new operation is planned from, called under the lock only when no operation is unfinished. */
export interface Planned {
  plan: Plan
  /** Mod revision of the cluster revision key the plan was made against. */
  expectedModRevision: number
  /** The registered state before the operation (undefined at create). */
  current?: ClusterState
}

/** What stands when a new operation is planned: what scripts did in unfinished operations, and the one it replaces. */
export interface Standing {
  /** Per node, from unfinished (failed, superseded, abandoned) operations; undefined when none is known. */
  facts?: Record<string, NodeFacts>
  /** The unfinished operation the new one supersedes, with its recorded data when readable. */
  unfinished?: {current: CurrentOperation; data?: OperationData}
}

/**
 * What a request does about an unfinished operation: `supersede` plans from what stands and replaces it (fix forward:
 * create, apply, scale, destroy, rollback); `resume-same` resumes it when it is the same request and refuses otherwise
 * (saved plans, linked clusters following); `refuse` refuses (actions).
 */
export type UnfinishedPolicy = 'supersede' | 'resume-same' | 'refuse'

export interface OperationRequest {
  cluster: string
  /** What is asked, for the lock record; undefined = `shoal resume`. */
  operation?: Operation
  /**
   * Identifies the request (operation + spec + templates, see `requestDigest`): when an unfinished operation with the
   * same digest exists, it is resumed; with another digest, the request is refused. Undefined = `shoal resume`.
   */
  requestDigest?: string
  /** Plan the operation (under the lock) from what stands. Not called when resuming. */
  plan?: (standing: Standing) => Promise<Planned>
  /** Default `supersede`. */
  unfinished?: UnfinishedPolicy
  /** Inventory hosts given on the command line (paths absolute); recorded with the cluster for later commands. */
  inventory?: HostSpec[]
  /** metad's URL as the nodes reach it (`--metad`), for a cluster with agents; recorded like the inventory. */
  metad?: string
}

export interface OperationOptions {
  lockWaitMs: number
  acceptNewHostKeys: boolean
  reporter: Reporter
  /** Default: an SshTransport for this run, closed at the end. */
  transport?: Transport
  /** How long an install step waits for a cluster's agents to report the files applied. */
  agentWaitMs?: number
}

export interface OperationOutcome {
  cluster: string
  /** False when there was nothing to do. */
  changed: boolean
  resumed: boolean
  plan?: Plan
  operation?: CurrentOperation
  last?: LastOperation
  /** The unfinished operation this one replaced. */
  superseded?: CurrentOperation
  /** Steps run now / finished in an earlier run. */
  ran: number
  skipped: number
  /** The clusters linking to this one and how they followed its change (lifecycle/follow.ts). */
  dependents?: FollowResult[]
}

/** The registered values of the parameters a plan changes (a configure script may need the old password to log in). */

export async function runOperation(store: Store, request: OperationRequest, options: OperationOptions): Promise<OperationOutcome> {
  const {cluster} = request
  markPhase('operation')
  const lock = await lockCluster(store, cluster, {operation: request.operation ? describeOperation(request.operation) : 'resume', waitMs: options.lockWaitMs})
  markPhase('locked')
  let transport: Transport | undefined
  let inventory: HostSpec[] | undefined
  let connected: Promise<void> = Promise.resolve()
  // Connections take the longest to set up: when steps reach running nodes, they begin as soon as the steps are known,
  // while the operation is recorded, and the first step waits for them (below). A plan that reaches only new nodes (a
  // create) records itself and commits first: on a small machine 50 handshakes at once starve the event loop and the
  // disk (recording took 1.2–1.9 s beside them, 0.1 s alone), and each node connects as its first step reaches it.
  const connectAhead = async (data: OperationData): Promise<void> => {
    inventory = request.inventory ?? (await readStoredInventory(store, cluster)) ?? []
    transport = options.transport ?? new SshTransport({acceptNewHostKeys: options.acceptNewHostKeys})
    if (!reachesRunningNodes(data.plan)) return
    connected = transport.warm?.(hostsReached(data, hostLookup(inventory, cluster))) ?? Promise.resolve()
    void connected.then(() => markPhase('connected'))
  }
  try {
    let current = await readCurrent(store, cluster)
    let data: OperationData
    let resumed = false
    let superseded: CurrentOperation | undefined
    const policy = request.unfinished ?? 'supersede'
    if (current && (!request.plan || policy !== 'supersede')) {
      if (request.plan && (policy === 'refuse' || request.requestDigest !== current.requestDigest)) throw await unfinishedError(store, cluster, current)
      data = await readOperationData(store, cluster, current)
      resumed = true
      await connectAhead(data)
    } else {
      if (!request.plan) return {cluster, changed: false, resumed: false, ran: 0, skipped: 0}
      const standing = await standingFacts(store, cluster, current)
      markPhase('planning')
      const planned = await request.plan({...(standing.facts ? {facts: standing.facts} : {}), ...(current ? {unfinished: {current, ...(standing.data ? {data: standing.data} : {})}} : {})})
      protectSecrets(store, planned.plan.secrets)
      const id = randomUUID()
      if (current) {
        // Fix forward: the unfinished operation is replaced; what its scripts did carries on in the new plan's facts.
        await closeUnfinished(store, cluster, current, standing.facts, 'superseded', id)
        superseded = current
      }
      if (!hasChanges(planned.plan)) {
        // Nothing stands any more (a create rolled back before it registered anything): nothing of it stays either.
        if (planned.plan.desired === null && planned.current === undefined) await store.txn([], [{type: 'deletePrefix', prefix: operationsPrefix(cluster)}])
        else if (standing.facts) await store.txn([], [{type: 'delete', key: factsKey(cluster)}])
        return {cluster, changed: false, resumed: false, plan: planned.plan, ran: 0, skipped: 0, ...(superseded ? {superseded} : {})}
      }
      const {plan} = planned
      const chain = standing.data?.chain
      data = {
        plan,
        ...(plan.desired?.spec ? {specAfter: plan.desired.spec} : {}),
        ...(planned.current?.spec ? {specBefore: planned.current.spec} : {}),
        ...(planned.current ? {templatesBefore: planned.current.templates} : {}),
        env: plan.desired?.env ?? planned.current?.env ?? {},
        ...(standing.facts ? {facts: standing.facts} : {}),
        ...(plan.envChanges?.length ? {previousEnv: previousValues(plan.envChanges.map((c) => c.name), plan.desired?.env ?? {}, [...chainEnvs(chain), planned.current?.env ?? {}])} : {}),
        chain: extendChain(chain, planned.current, plan),
      }
      markPhase('planned')
      await connectAhead(data)
      current = await beginOperation(store, data, {
        id,
        title: describeOperation(plan.operation),
        requestDigest: request.requestDigest ?? '',
        baseModRevision: planned.expectedModRevision,
        ...(request.inventory ? {inventory: request.inventory} : {}),
        ...(request.metad !== undefined ? {metad: request.metad} : {}),
      })
    }
    markPhase('recorded')
    protectSecrets(store, data.plan.secrets)
    if (request.inventory && resumed) await store.txn([], [{type: 'put', key: inventoryKey(cluster), value: JSON.stringify(request.inventory)}])
    if (request.metad !== undefined && resumed) await store.txn([], [{type: 'put', key: metadUrlKey(cluster), value: request.metad}])
    const metad = request.metad ?? (await readStoredMetadUrl(store, cluster))
    if (!transport || !inventory) throw new Error('internal: the operation has no transport')
    // The first step commits the new membership; pushing it to running nodes takes one round of commands once the
    // connections are up. Waiting for them first keeps the time the registry and the running hosts disagree short (at
    // 50 hosts sharing two cores the handshakes alone take seconds); a host that does not answer is not waited for past
    // the bound. A create has nothing running to disagree and started no connection ahead (above).
    await settledWithin(connected, CONNECT_AHEAD_WAIT_MS)
    let result
    try {
      result = await executePlan({store, transport, hosts: hostLookup(inventory, cluster), lock, current, data, reporter: options.reporter, ...(metad !== undefined ? {metad} : {}), ...(options.agentWaitMs !== undefined ? {agentWaitMs: options.agentWaitMs} : {})})
    } catch (error) {
      if (!(error instanceof StepFailed)) throw error
      if (data.plan.operation.kind === 'run') {
        // An action changes no membership: its failure ends it, and the cluster stays free for any other operation.
        await finishOperation(store, cluster, current, false, error.failure)
        throw new ShoalError(
          `${error.message}\nThe action "${current.title}" on ${cluster} failed at step ${error.failure.step}; it does not block the cluster. ` +
            `Its output: shoal logs ${cluster} --operation ${current.id}`,
          'action-failed',
          EXIT.failure,
        )
      }
      await recordFailure(store, cluster, current, error.failure)
      throw new ShoalError(
        `${error.message}\nThe operation "${current.title}" on ${cluster} stopped at step ${error.failure.step}; the registry records how far it got. ${waysOut(cluster)}.`,
        'operation-failed',
        EXIT.failure,
      )
    }
    const last = await finishOperation(store, cluster, current, data.plan.desired === null)
    return {cluster, changed: true, resumed, plan: data.plan, operation: current, last, ran: result.ran, skipped: result.skipped, ...(superseded ? {superseded} : {})}
  } finally {
    if (transport && !options.transport) await transport.close().catch(() => undefined)
    await lock.release().catch(() => undefined)
  }
}

/**
 * A read-only action: no lock and no operation record, so it runs at any time, also while another operation runs or
 * is unfinished. Its output and timings are kept like any operation's (history, `shoal logs`).
 */
export async function runReadOnly(store: Store, cluster: string, plan: Plan, options: OperationOptions & {inventory?: HostSpec[]}): Promise<OperationOutcome> {
  const current: CurrentOperation = {
    id: randomUUID(), kind: 'run', title: describeOperation(plan.operation), started: new Date().toISOString(), holder: defaultHolder(), planDigest: '', planParts: 0, requestDigest: '', baseModRevision: 0,
  }
  const inventory = options.inventory ?? (await readStoredInventory(store, cluster)) ?? []
  const transport = options.transport ?? new SshTransport({acceptNewHostKeys: options.acceptNewHostKeys})
  await beginRun(store, cluster, runSummary(current, 'running', {readOnly: true}))
  try {
    const result = await executePlan({store, transport, hosts: hostLookup(inventory, cluster), lock: undefined, current, data: {plan, ...(plan.desired?.spec ? {specAfter: plan.desired.spec} : {}), env: plan.desired?.env ?? {}}, reporter: options.reporter})
    await updateRun(store, cluster, runSummary(current, 'ok', {readOnly: true, finished: new Date().toISOString()}))
    return {cluster, changed: true, resumed: false, plan, operation: current, ran: result.ran, skipped: 0}
  } catch (error) {
    await updateRun(store, cluster, runSummary(current, 'failed', {readOnly: true, finished: new Date().toISOString()})).catch(() => undefined)
    if (!(error instanceof StepFailed)) throw error
    throw new ShoalError(`${error.message}\nThe read-only action "${current.title}" on ${cluster} failed. Its output: shoal logs ${cluster} --operation ${current.id}`, 'action-failed', EXIT.failure)
  } finally {
    if (!options.transport) await transport.close().catch(() => undefined)
  }
}
