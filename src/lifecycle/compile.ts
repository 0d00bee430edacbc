// Read everything a plan depends on (spec files, inventory, registry) and call the pure planner.
import {planCluster} from '../plan/plan.js'
import type {Inventory} from '../plan/inventory.js'
import type {ClusterState, NodeFacts, Operation, Plan, PlanError} from '../plan/types.js'
import type {ClusterSpec} from '../spec/types.js'
import type {Store} from '../store/store.js'
import {EXIT, ShoalError} from '../errors.js'
import {linkedStates, otherUsage, readRegistered} from './registered.js'

export interface Compiled {
  plan: Plan
  /** Mod revision of the cluster revision key the plan was made against (0: not registered). */
  expectedModRevision: number
  current?: ClusterState
}

export interface CompileInput {
  /** The spec to plan from; default: the one registered with the cluster. */
  spec?: ClusterSpec
  templates?: ReadonlyMap<string, string>
  cluster: string
  inventory: Inventory
  operation: Operation
  /** What scripts did in unfinished operations (fix forward, rollback). */
  facts?: Record<string, NodeFacts>
}

export function planErrorMessage(errors: readonly PlanError[]): string {
  return errors
    .map((e) => {
      const where = [e.node && `node ${e.node}`, e.template && `${e.template}${e.line ? `:${e.line}:${e.col ?? 1}` : ''}`].filter(Boolean).join(', ')
      return `  [${e.code}] ${e.message}${where ? ` (${where})` : ''}`
    })
    .join('\n')
}

export async function compile(store: Store, input: CompileInput): Promise<Compiled> {
  const {snapshot, state} = await readRegistered(store, input.cluster)
  const spec = input.spec ?? state?.spec
  if (!spec || !state && !input.spec) {
    throw new ShoalError(`cluster ${input.cluster} is not registered in ${store.description}`, 'not-registered', EXIT.failure)
  }
  const templates = input.templates ?? new Map(Object.entries(state?.templates ?? {}))
  const plan = planCluster({
    spec,
    templates,
    inventory: input.inventory,
    ...(state ? {current: state} : {}),
    operation: input.operation,
    otherUsage: await otherUsage(store, input.cluster),
    linked: await linkedStates(store, spec),
    ...(input.facts ? {facts: input.facts} : {}),
  })
  if (plan.errors.length > 0) {
    throw new ShoalError(`cannot plan ${input.cluster}:\n${planErrorMessage(plan.errors)}`, plan.errors[0]!.code, EXIT.failure)
  }
  return {plan, expectedModRevision: snapshot.revisionModRevision, ...(state ? {current: state} : {})}
}
