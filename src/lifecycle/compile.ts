// Read everything a plan depends on (spec files, inventory, registry) and call the pure planner.
import {TemplateBudget} from '../render/engine.js'
import {DEFAULT_SOURCE, NOTHING_GIVEN, resolveEnv, secretValues, type GivenEnv} from '../plan/env.js'
import {planCluster} from '../plan/plan.js'
import {redactText} from '../plan/show.js'
import type {Inventory} from '../plan/inventory.js'
import type {ClusterState, ImperativeChange, Operation, Plan, PlanError} from '../plan/types.js'
import {readHistory, type RunSummary} from '../operation/history.js'
import {chainEnvs} from '../operation/record.js'
import type {ClusterSpec} from '../spec/types.js'
import {protectSecrets} from '../store/sealed.js'
import type {Store} from '../store/store.js'
import {EXIT, ShoalError} from '../errors.js'
import {driftFacts, type DriftReport} from './drift.js'
import type {Standing} from './operation.js'
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
  /** What stands of unfinished operations (fix forward, rollback): what scripts did, values members may still run with. */
  standing?: Standing
  /** Shared by every plan of one command; default: a fresh budget of TEMPLATE_BUDGET_MS for this plan. */
  templateBudget?: TemplateBudget
  /** Render only this node's files (see PlanInput.renderOnly). */
  renderOnly?: string
  /** Parameter values given by this command (default: none; registered values are kept, see plan/env.ts). */
  given?: GivenEnv
  /** What `--refresh` found on the hosts: drifted nodes get their registered files installed again. */
  drift?: DriftReport
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
  const {env, errors} = resolveEnv(spec, input.given ?? NOTHING_GIVEN, state, {destroying: input.operation.kind === 'destroy'})
  if (errors.length > 0) {
    // Checked before anything is planned or registered. The messages never quote a secret; redacted all the same.
    const known = [...secretValues(env.values, env.secret), ...(state ? secretValues(state.env, state.secretEnv) : [])]
    throw new ShoalError(redactText(`cannot plan ${input.cluster}: env parameter values:\n${errors.map((e) => `  ${e}`).join('\n')}`, known), 'invalid-value', EXIT.failure)
  }
  const chain = input.standing?.unfinished?.data?.chain
  const history = chainEnvs(chain)
  const plan = planCluster({
    spec,
    templates,
    inventory: input.inventory,
    ...(state ? {current: state} : {}),
    operation: input.operation,
    otherUsage: await otherUsage(store, input.cluster),
    linked: await linkedStates(store, spec),
    ...(input.drift?.drift.length ? {facts: driftFacts(input.drift, input.standing?.facts)} : input.standing?.facts ? {facts: input.standing.facts} : {}),
    ...(history.length ? {envHistory: history} : {}),
    ...(chain?.joined.length ? {joinedUnfinished: chain.joined} : {}),
    templateBudget: input.templateBudget ?? new TemplateBudget(),
    ...(input.renderOnly !== undefined ? {renderOnly: input.renderOnly} : {}),
    env,
  })
  protectSecrets(store, plan.secrets)
  if (plan.errors.length > 0) {
    // A message may quote a value (a template error, a bad default): secret values never reach the terminal.
    throw new ShoalError(redactText(`cannot plan ${input.cluster}:\n${planErrorMessage(plan.errors)}`, plan.secrets), plan.errors[0]!.code, EXIT.failure)
  }
  if (input.drift) {
    plan.drift = input.drift.drift
    if (input.drift.unchecked.length) plan.driftUnchecked = input.drift.unchecked
  }
  if (input.operation.kind === 'apply' && input.spec && state) {
    const imperative = await imperativeChanges(store, input.spec, state, input.given ?? NOTHING_GIVEN)
    if (imperative.length > 0) plan.imperative = imperative
  }
  return {plan, expectedModRevision: snapshot.revisionModRevision, ...(state ? {current: state} : {})}
}

/** Operations that set a role's count: the last of them that finished is what the registered count came from. */
const COUNT_SETTING: ReadonlySet<string> = new Set(['create', 'apply', 'scale', 'rollback'])

/**
 * What the registered cluster holds that the spec being applied does not say: a role's count another command set
 * (named from the history: `shoal scale`, or an apply of another spec), and parameter values given earlier by `--set`,
 * `--set-file` or a values file, which applying keeps (they stay registered until changed or --unset).
 */
async function imperativeChanges(store: Store, spec: ClusterSpec, state: ClusterState, given: GivenEnv): Promise<ImperativeChange[]> {
  const out: ImperativeChange[] = []
  let history: RunSummary[] | undefined
  for (const [role, roleSpec] of Object.entries(spec.roles)) {
    const registered = state.spec?.roles[role]?.count
    if (registered === undefined || registered === roleSpec.count) continue
    history ??= (await readHistory(store, state.name)).filter((r) => r.result === 'ok' && COUNT_SETTING.has(r.kind)).sort((a, b) => (a.started < b.started ? -1 : 1))
    // A scale sets one role's count (its title names the role); the other operations set every role's.
    const last = history.filter((r) => r.kind !== 'scale' || r.title.startsWith(`scale ${role} `)).at(-1)
    out.push({kind: 'count', role, spec: roleSpec.count, registered, ...(last ? {by: `shoal ${last.title}`} : {}), ...(last?.finished ? {at: last.finished} : {})})
  }
  for (const [name, source] of Object.entries(state.envSources ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (source === DEFAULT_SOURCE || given.values.has(name) || given.unset.includes(name) || !(name in (spec.env ?? {}))) continue
    out.push({kind: 'env', name, source})
  }
  return out
}
