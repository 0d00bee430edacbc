// One operation end to end: lock → (resume the recorded plan | plan and record a new one) → execute → finish or record
// the failure → unlock. Every command that changes hosts (create, apply, scale, destroy, run, resume) goes through here.
import {randomUUID} from 'node:crypto'
import type {HostSpec} from '../inventory/types.js'
import {hasChanges} from '../plan/show.js'
import type {ClusterState, Operation, Plan} from '../plan/types.js'
import type {EnvValue} from '../spec/types.js'
import {protectSecrets} from '../store/sealed.js'
import type {Store} from '../store/store.js'
import {SshTransport} from '../transport/ssh.js'
import type {Transport} from '../transport/transport.js'
import {EXIT, ShoalError} from '../errors.js'
import {describeOperation} from './apply.js'
import type {FollowResult} from './dependents.js'
import {executePlan, StepFailed} from './execute.js'
import {hostLookup} from './hosts.js'
import {
  beginOperation,
  finishOperation,
  inventoryKey,
  readCurrent,
  readOperationData,
  readStoredInventory,
  recordFailure,
  type CurrentOperation,
  type LastOperation,
  type OperationData,
  unfinishedError,
} from './operation-record.js'
import type {Reporter} from './progress.js'
import {lockCluster} from './register.js'

/** What a new operation is planned from, called under the lock only when no operation is unfinished. */
export interface Planned {
  plan: Plan
  /** Mod revision of the cluster revision key the plan was made against. */
  expectedModRevision: number
  /** The registered state before the operation (undefined at create). */
  current?: ClusterState
}

export interface OperationRequest {
  cluster: string
  /** What is asked, for the lock record; undefined = `shoal resume`. */
  operation?: Operation
  /**
   * Identifies the request (operation + spec + templates, see `requestDigest`): when an unfinished operation with the
   * same digest exists, it is resumed; with another digest, the request is refused. Undefined = `shoal resume`.
   */
  requestDigest?: string
  /** Plan the operation (under the lock). Not called when resuming. */
  plan?: () => Promise<Planned>
  /** Inventory hosts given on the command line (paths absolute); recorded with the cluster for later commands. */
  inventory?: HostSpec[]
}

export interface OperationOptions {
  lockWaitMs: number
  acceptNewHostKeys: boolean
  reporter: Reporter
  /** Default: an SshTransport for this run, closed at the end. */
  transport?: Transport
}

export interface OperationOutcome {
  cluster: string
  /** False when there was nothing to do. */
  changed: boolean
  resumed: boolean
  plan?: Plan
  operation?: CurrentOperation
  last?: LastOperation
  /** Steps run now / finished in an earlier run. */
  ran: number
  skipped: number
  /** The clusters linking to this one and how they followed its change (lifecycle/follow.ts). */
  dependents?: FollowResult[]
}

/** The registered values of the parameters a plan changes (a configure script may need the old password to log in). */
function previousValues(plan: Plan, current: ClusterState | undefined): Record<string, EnvValue> {
  const out: Record<string, EnvValue> = {}
  for (const change of plan.envChanges ?? []) {
    const value = current?.env[change.name]
    if (value !== undefined) out[change.name] = value
  }
  return out
}

export async function runOperation(store: Store, request: OperationRequest, options: OperationOptions): Promise<OperationOutcome> {
  const {cluster} = request
  const lock = await lockCluster(store, cluster, {operation: request.operation ? describeOperation(request.operation) : 'resume', waitMs: options.lockWaitMs})
  let transport: Transport | undefined
  try {
    let current = await readCurrent(store, cluster)
    let data: OperationData
    let resumed = false
    if (current) {
      if (request.requestDigest !== undefined && request.requestDigest !== current.requestDigest) throw await unfinishedError(store, cluster, current)
      data = await readOperationData(store, cluster, current)
      resumed = true
    } else {
      if (!request.plan) return {cluster, changed: false, resumed: false, ran: 0, skipped: 0}
      const planned = await request.plan()
      protectSecrets(store, planned.plan.secrets)
      if (!hasChanges(planned.plan)) return {cluster, changed: false, resumed: false, plan: planned.plan, ran: 0, skipped: 0}
      const {plan} = planned
      data = {
        plan,
        ...(plan.desired?.spec ? {specAfter: plan.desired.spec} : {}),
        ...(planned.current?.spec ? {specBefore: planned.current.spec} : {}),
        env: plan.desired?.env ?? planned.current?.env ?? {},
        ...(plan.envChanges?.length ? {previousEnv: previousValues(plan, planned.current)} : {}),
      }
      current = await beginOperation(store, data, {
        id: randomUUID(),
        title: describeOperation(plan.operation),
        requestDigest: request.requestDigest ?? '',
        baseModRevision: planned.expectedModRevision,
        ...(request.inventory ? {inventory: request.inventory} : {}),
      })
    }
    protectSecrets(store, data.plan.secrets)
    if (request.inventory && resumed) await store.txn([], [{type: 'put', key: inventoryKey(cluster), value: JSON.stringify(request.inventory)}])
    const inventory = request.inventory ?? (await readStoredInventory(store, cluster)) ?? []
    transport = options.transport ?? new SshTransport({acceptNewHostKeys: options.acceptNewHostKeys})
    let result
    try {
      result = await executePlan({store, transport, hosts: hostLookup(inventory, cluster), lock, current, data, reporter: options.reporter})
    } catch (error) {
      if (!(error instanceof StepFailed)) throw error
      await recordFailure(store, cluster, current, error.failure)
      throw new ShoalError(
        `${error.message}\nThe operation "${current.title}" on ${cluster} stopped at step ${error.failure.step}; the registry records how far it got. ` +
          `Fix the cause, then continue it with: shoal resume ${cluster}`,
        'operation-failed',
        EXIT.failure,
      )
    }
    const last = await finishOperation(store, cluster, current, data.plan.operation.kind === 'destroy')
    return {cluster, changed: true, resumed, plan: data.plan, operation: current, last, ran: result.ran, skipped: result.skipped}
  } finally {
    if (transport && !options.transport) await transport.close().catch(() => undefined)
    await lock.release().catch(() => undefined)
  }
}
