// Registry-only apply (`--registry-only`): lock → (plan) → the plan's registry commits, no scripts on hosts. The full
// operation (scripts, files, progress records, resume) is lifecycle/operation.ts.
import type {GivenEnv} from '../plan/env.js'
import type {Inventory} from '../plan/inventory.js'
import type {Operation, Plan} from '../plan/types.js'
import {hasChanges} from '../plan/show.js'
import type {ClusterSpec} from '../spec/types.js'
import {protectSecrets} from '../store/sealed.js'
import type {Store} from '../store/store.js'
import {EXIT, ShoalError} from '../errors.js'
import {compile} from './compile.js'
import {assertNoUnfinished} from '../operation/record.js'
import {commitPlan, lockCluster, type RegisterResult} from './register.js'
import type {SavedPlan} from './plan-file.js'
import type {Planned} from './operation.js'
import {readRegistered} from './registered.js'
import {forgetHistory, StaleError} from '../registry/index.js'

export interface ApplyOutcome {
  plan: Plan
  changed: boolean
  result?: RegisterResult
}

/** Plan under the cluster lock (so nobody changes the cluster between planning and committing) and commit. */
export async function planAndRegister(
  store: Store,
  input: {cluster: string; spec?: ClusterSpec; templates?: ReadonlyMap<string, string>; inventory: Inventory; operation: Operation; lockWaitMs: number; dryRun?: boolean; given?: GivenEnv},
): Promise<ApplyOutcome> {
  if (input.dryRun) {
    const {plan} = await compile(store, input)
    return {plan, changed: hasChanges(plan)}
  }
  const lock = await lockCluster(store, input.cluster, {operation: describeOperation(input.operation), waitMs: input.lockWaitMs})
  try {
    await assertNoUnfinished(store, input.cluster)
    const {plan, expectedModRevision} = await compile(store, input)
    const changed = hasChanges(plan)
    if (!changed) return {plan, changed}
    const result = await commitPlan(store, plan, expectedModRevision, lock)
    await forgetHistory(store)
    return {plan, changed, result}
  } finally {
    // Best effort: when the registry just failed (etcd down) a release error would hide the real one, and an
    // unreleased lock expires with its lease anyway.
    await lock.release().catch(() => undefined)
  }
}

/** Commit a saved plan, refusing it when the cluster changed since it was made. */
export async function registerSavedPlan(store: Store, saved: SavedPlan, lockWaitMs: number): Promise<ApplyOutcome> {
  if (saved.registry !== store.description) {
    throw new ShoalError(`the plan was made against ${saved.registry}, not ${store.description}; plan again against this registry`, 'plan-registry-mismatch', EXIT.failure)
  }
  const changed = hasChanges(saved.plan)
  if (!changed) return {plan: saved.plan, changed}
  protectSecrets(store, saved.plan.secrets)
  const lock = await lockCluster(store, saved.plan.cluster, {operation: describeOperation(saved.plan.operation), waitMs: lockWaitMs})
  try {
    await assertNoUnfinished(store, saved.plan.cluster)
    const result = await commitPlan(store, saved.plan, saved.expectedModRevision, lock)
    await forgetHistory(store)
    return {plan: saved.plan, changed, result}
  } finally {
    await lock.release().catch(() => undefined)
  }
}

/** A saved plan as a new operation's plan: refused when made against another registry or a since-changed cluster. */
export async function savedPlanned(store: Store, saved: SavedPlan): Promise<Planned> {
  if (saved.registry !== store.description) {
    throw new ShoalError(`the plan was made against ${saved.registry}, not ${store.description}; plan again against this registry`, 'plan-registry-mismatch', EXIT.failure)
  }
  const {snapshot, state} = await readRegistered(store, saved.plan.cluster)
  if (snapshot.revisionModRevision !== saved.expectedModRevision) {
    throw new StaleError(
      `the plan is stale: cluster ${saved.plan.cluster} changed since the plan was made (mod revision ${saved.expectedModRevision}, now ${snapshot.revisionModRevision}); plan again`,
      saved.expectedModRevision,
      snapshot.revisionModRevision,
    )
  }
  return {plan: saved.plan, expectedModRevision: saved.expectedModRevision, ...(state ? {current: state} : {})}
}

export function describeOperation(op: Operation): string {
  if (op.kind === 'run') return `run ${op.action}${op.role ? ` --role ${op.role}` : ''}${op.node ? ` --node ${op.node}` : ''}`
  if (op.kind === 'apply' && op.follows !== undefined) return `apply (linked cluster ${op.follows} changed)`
  if (op.kind !== 'scale') return op.kind
  const how = op.remove ? `remove ${op.remove.join(',')}` : op.add !== undefined ? `add ${op.add}` : `count ${op.count}`
  return `scale ${op.role} (${how})`
}
