// `shoal rollback`: undo an unfinished operation as far as it can, planned by the one planner from what stands: a
// create (nothing registered before it) rolls back as a destroy; anything else goes back to the spec, templates and
// members registered before it (joiners leave, leavers stay unless their destroy ran). It supersedes the operation.
import {givenToReturn} from '../plan/env.js'
import type {Inventory} from '../plan/inventory.js'
import type {NodeFacts, Plan} from '../plan/types.js'
import type {Store} from '../store/store.js'
import {EXIT, ShoalError} from '../errors.js'
import {compile} from './compile.js'
import type {Planned, Standing} from './operation.js'
import {readRegistered} from './registered.js'

/** A plan that changes nothing: a create that stopped before it registered anything leaves nothing to undo. */
function nothing(cluster: string, of: string): Plan {
  return {cluster, operation: {kind: 'rollback', of}, baseRevision: 0, revision: 0, specHash: '', nodes: [], desired: null, tree: [], changes: {puts: [], deletes: []}, steps: [], errors: [], secrets: []}
}

export async function planRollback(store: Store, cluster: string, standing: Standing, inventory: Inventory): Promise<Planned> {
  const {snapshot, state} = await readRegistered(store, cluster)
  const unfinished = standing.unfinished
  const of = unfinished?.current.title ?? 'an abandoned operation'
  const inFlight = state !== undefined && (state.adding.length > 0 || state.deleting.length > 0 || state.nodes.some((n) => n.state !== 'active'))
  if (!unfinished && !inFlight) {
    throw new ShoalError(`${cluster} has no unfinished operation and no node pending or leaving: nothing to roll back`, 'nothing-to-roll-back', EXIT.failure)
  }
  if (!state) return {plan: nothing(cluster, of), expectedModRevision: 0}
  // Back to what stood before the first operation of the unfinished chain (a rollback that stopped is rolled back to
  // the same place); records of older shoal know only the last operation's before.
  const data = unfinished?.data
  const chain = data?.chain
  const created = chain ? chain.created : unfinished ? data?.specBefore === undefined : state.nodes.every((n) => n.state === 'pending')
  if (created) return compile(store, {cluster, inventory, operation: {kind: 'destroy'}, standing})
  const spec = chain?.spec ?? data?.specBefore
  const templates = chain?.templates ?? data?.templatesBefore
  const joined = chain?.joined ?? data?.plan.nodes.filter((n) => n.change === 'create').map((n) => n.node_id) ?? []
  const planned = await compile(store, {
    cluster,
    inventory,
    operation: {kind: 'rollback', of, ...(joined.length ? {joined} : {})},
    ...(spec ? {spec} : {}),
    ...(templates ? {templates: new Map(Object.entries(templates))} : {}),
    ...(chain && (spec ?? state.spec) ? {given: givenToReturn((spec ?? state.spec)!, chain.env, chain.envSources, state)} : {}),
    standing,
  })
  return {...planned, expectedModRevision: snapshot.revisionModRevision}
}

const MEMBER_HOOKS = ['pre_scale_out', 'scale_out', 'pre_scale_in', 'scale_in'] as const

/** What the rollback cannot undo, said plainly (scripts that ran on members, nodes whose data is gone). */
export function cannotUndo(plan: Plan, facts: Record<string, NodeFacts> | undefined): string[] {
  const notes: string[] = []
  for (const hook of MEMBER_HOOKS) {
    const ran = plan.nodes.filter((n) => n.change === 'keep' && facts?.[n.node_id]?.touched.includes(hook)).map((n) => n.node_id)
    if (ran.length) notes.push(`${hook} ran on ${ran.join(', ')}: shoal cannot undo what a script did there; their files are rendered back to the membership before and reloaded where they change`)
  }
  for (const n of plan.nodes) {
    if (n.change === 'remove' && n.state === 'leaving' && facts?.[n.node_id]?.touched.includes('destroy') && plan.operation.kind === 'rollback' && !n.reason.startsWith('registered')) {
      notes.push(`${n.node_id}: its destroy ran, so it cannot be restored; its removal is completed instead`)
    }
  }
  if (plan.operation.kind === 'destroy') notes.push(`the operation created ${plan.cluster}: rolling it back removes the cluster (only scripts that began on a node are undone there)`)
  return notes
}
