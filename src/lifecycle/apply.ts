// Apply = lock → (plan) → registry commits. The SSH executor that runs a plan's install/run/health steps on hosts is
// the next layer; until then only the registry part of a plan can be applied (`--registry-only`).
import type {Inventory} from '../plan/inventory.js'
import type {Operation, Plan} from '../plan/types.js'
import {hasChanges} from '../plan/show.js'
import type {ClusterSpec} from '../spec/types.js'
import type {Store} from '../store/store.js'
import {EXIT, ShoalError} from '../cli/base.js'
import {compile} from './compile.js'
import {commitPlan, lockCluster, type RegisterResult} from './register.js'
import type {SavedPlan} from './plan-file.js'

export interface ApplyOutcome {
  plan: Plan
  changed: boolean
  result?: RegisterResult
}

/** Plan under the cluster lock (so nobody changes the cluster between planning and committing) and commit. */
export async function planAndRegister(
  store: Store,
  input: {cluster: string; spec?: ClusterSpec; templates?: ReadonlyMap<string, string>; inventory: Inventory; operation: Operation; lockWaitMs: number; dryRun?: boolean},
): Promise<ApplyOutcome> {
  if (input.dryRun) {
    const {plan} = await compile(store, input)
    return {plan, changed: hasChanges(plan)}
  }
  const lock = await lockCluster(store, input.cluster, {operation: describeOperation(input.operation), waitMs: input.lockWaitMs})
  try {
    const {plan, expectedModRevision} = await compile(store, input)
    const changed = hasChanges(plan)
    if (!changed) return {plan, changed}
    return {plan, changed, result: await commitPlan(store, plan, expectedModRevision, lock)}
  } finally {
    await lock.release()
  }
}

/** Commit a saved plan, refusing it when the cluster changed since it was made. */
export async function registerSavedPlan(store: Store, saved: SavedPlan, lockWaitMs: number): Promise<ApplyOutcome> {
  if (saved.registry !== store.description) {
    throw new ShoalError(`the plan was made against ${saved.registry}, not ${store.description}; plan again against this registry`, 'plan-registry-mismatch', EXIT.failure)
  }
  const changed = hasChanges(saved.plan)
  if (!changed) return {plan: saved.plan, changed}
  const lock = await lockCluster(store, saved.plan.cluster, {operation: describeOperation(saved.plan.operation), waitMs: lockWaitMs})
  try {
    return {plan: saved.plan, changed, result: await commitPlan(store, saved.plan, saved.expectedModRevision, lock)}
  } finally {
    await lock.release()
  }
}

export function describeOperation(op: Operation): string {
  if (op.kind !== 'scale') return op.kind
  const how = op.remove ? `remove ${op.remove.join(',')}` : op.add !== undefined ? `add ${op.add}` : `count ${op.count}`
  return `scale ${op.role} (${how})`
}
