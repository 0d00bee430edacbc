// An operation and then its dependents: the commands that change a cluster run it through here so the clusters linking
// to it follow (lifecycle/dependents.ts), on hosts like the operation itself or, with --registry-only, in the registry.
import type {Operation} from '../plan/types.js'
import type {Store} from '../store/store.js'
import {planAndRegister} from './apply.js'
import {compile} from './compile.js'
import {followLinks, type FollowResult, type FollowRunner} from './dependents.js'
import {readStoredInventory, requestDigest} from '../operation/record.js'
import {runOperation, type OperationOptions, type OperationOutcome, type OperationRequest} from './operation.js'

/**
 * Follow on hosts: the dependent's registered spec planned against the new linked state and run as its own operation.
 * A dependent recorded without an inventory was only ever registered, so it follows in the registry only. When an
 * interrupted follow of the same link was resumed, its recorded plan may predate the latest change: plan once more.
 */
export function hostFollower(store: Store, options: OperationOptions): FollowRunner {
  return async (cluster, operation) => {
    const hosts = await readStoredInventory(store, cluster)
    if (!hosts) return registryFollower(store, options.lockWaitMs)(cluster, operation)
    const once = (): Promise<OperationOutcome> =>
      runOperation(store, {cluster, operation, requestDigest: requestDigest({operation}), unfinished: 'resume-same', plan: () => compile(store, {cluster, inventory: {hosts}, operation})}, options)
    let outcome = await once()
    let ran = outcome.ran
    if (outcome.resumed) {
      const again = await once()
      ran += again.ran
      if (again.changed) outcome = again
    }
    return {changed: outcome.changed, ran, ...(outcome.plan ? {revision: outcome.plan.revision} : {})}
  }
}

/** Follow in the registry only (after a --registry-only change, or for a cluster registered without hosts). */
export function registryFollower(store: Store, lockWaitMs: number): FollowRunner {
  return async (cluster, operation) => {
    const hosts = (await readStoredInventory(store, cluster)) ?? []
    const {plan, changed} = await planAndRegister(store, {cluster, inventory: {hosts}, operation, lockWaitMs})
    return {changed, revision: plan.revision}
  }
}

/** Whether an operation left its cluster gone: its dependents can then only be reported. */
function destroys(operation: Operation | undefined): boolean {
  return operation?.kind === 'destroy'
}

/** Run the operation, then bring the clusters that link to it up to date (also when the operation changed nothing). */
export async function runAndFollow(store: Store, request: OperationRequest, options: OperationOptions): Promise<OperationOutcome> {
  const outcome = await runOperation(store, request, options)
  if (outcome.plan?.operation.kind === 'run') return outcome
  const dependents = await followLinks(store, request.cluster, hostFollower(store, options), {
    destroyed: destroys(request.operation ?? outcome.plan?.operation),
    onFollow: (cluster, follows) => options.reporter.note(`${cluster} links to ${follows}: bringing it up to date`),
  })
  return {...outcome, dependents}
}

/** Registry-only counterpart of `runAndFollow`'s second half. */
export async function followInRegistry(store: Store, cluster: string, lockWaitMs: number, destroyed = false): Promise<FollowResult[]> {
  return followLinks(store, cluster, registryFollower(store, lockWaitMs), {destroyed})
}
