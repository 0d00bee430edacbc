// `shoal run` as a plan: a custom action (or restart) on registered nodes, in batches, honouring the script's `on` and `order`.
import {secretValues} from '../plan/env.js'
import {batches, serviceTargets, type RoleGroups, type Step} from '../plan/steps.js'
import type {ClusterState, Plan, PlannedNode} from '../plan/types.js'
import {DEFAULTS, type ActionSpec} from '../spec/types.js'
import {EXIT, ShoalError} from '../errors.js'

export interface ActionRequest {
  action: string
  role?: string
  node?: string
  /** Arguments after `--`, appended to the action's command shell-quoted. */
  args?: string[]
}

/** `actions.<name>` of the role, or for `restart` its restart service, else its stop then start (as the schema says). */
function scriptOf(state: ClusterState, role: string, action: string): ActionSpec | undefined {
  const spec = state.spec?.roles[role]
  if (spec?.actions?.[action]) return spec.actions[action]
  if (action !== 'restart') return undefined
  const services = spec?.services
  if (services?.restart) return services.restart
  const stopStart = services?.stop ?? services?.start
  return stopStart ? {cmd: 'stop, then start', on: 'all', ...(stopStart.order ? {order: stopStart.order} : {})} : undefined
}

/** Whether the action is read-only in every role that defines it (then it runs without the lock, at any time). */
export function isReadOnly(state: ClusterState, request: Pick<ActionRequest, 'action' | 'role'>): boolean {
  const roles = Object.keys(state.spec?.roles ?? {}).filter((r) => request.role === undefined || r === request.role)
  const scripts = roles.map((r) => state.spec?.roles[r]?.actions?.[request.action]).filter((a): a is ActionSpec => a !== undefined)
  return scripts.length > 0 && scripts.every((a) => a.read_only === true)
}

export function planAction(state: ClusterState, request: ActionRequest): Plan {
  const spec = state.spec
  if (!spec) throw new ShoalError(`cluster ${state.name} has no registered spec; apply its spec first`, 'not-registered', EXIT.failure)
  const roles = Object.keys(spec.roles).filter((r) => request.role === undefined || r === request.role)
  if (request.role !== undefined && roles.length === 0) {
    throw new ShoalError(`role ${request.role} is not in cluster ${state.name} (roles: ${Object.keys(spec.roles).join(', ')})`, 'unknown-role', EXIT.usage)
  }
  if (request.node !== undefined && !state.nodes.some((n) => n.node_id === request.node && roles.includes(n.role))) {
    throw new ShoalError(`node ${request.node} is not registered in cluster ${state.name}${request.role ? ` role ${request.role}` : ''}`, 'unknown-node', EXIT.usage)
  }
  const withScript = roles.filter((r) => scriptOf(state, r, request.action) !== undefined)
  const readOnly = isReadOnly(state, request)
  if (withScript.length === 0) {
    const known = [...new Set(roles.flatMap((r) => [...Object.keys(spec.roles[r]?.actions ?? {}), ...(scriptOf(state, r, 'restart') ? ['restart'] : [])]))].sort()
    throw new ShoalError(
      `no role of ${state.name}${request.role ? ` matching --role ${request.role}` : ''} defines the action ${request.action} (available: ${known.join(', ') || 'none'})`,
      'unknown-action',
      EXIT.usage,
    )
  }
  const steps: Omit<Step, 'id'>[] = []
  const canaries = spec.update?.canaries ?? DEFAULTS.canaries
  const maxInFlight = spec.update?.max_in_flight ?? DEFAULTS.maxInFlight
  for (const role of withScript) {
    const script = scriptOf(state, role, request.action)!
    // A read-only action also reaches nodes an unfinished operation left pending or leaving.
    const nodes = state.nodes.filter((n) => n.role === role && (readOnly || n.state === 'active'))
    const group: RoleGroups = {role, spec: spec.roles[role], existing: nodes, joining: [], leaving: [], bootstrap: nodes.find((n) => n.bootstrap), installFresh: [], installChanged: [], installFinal: []}
    const targets = serviceTargets(group, 'restart', script.on ?? DEFAULTS.serviceOn).filter((n) => request.node === undefined || n.node_id === request.node)
    const list = batches(targets, canaries, maxInFlight, (script.order ?? DEFAULTS.serviceOrder) === 'serial')
    const health = request.action === 'restart' && spec.roles[role]?.health_check !== undefined
    list.forEach((b, index) => {
      const label = list.length > 1 ? ` (${b.canary ? 'canary ' : ''}batch ${index + 1}/${list.length})` : ''
      const batch = list.length > 1 ? {batch: {index: index + 1, of: list.length, canary: b.canary}} : {}
      const ids = b.nodes.map((n) => n.node_id)
      const count = `${ids.length} node${ids.length === 1 ? '' : 's'}`
      const services = spec.roles[role]?.services
      if (spec.roles[role]?.actions?.[request.action]) steps.push({kind: 'run', title: `${role}: run ${request.action} on ${count}${label}`, role, nodes: ids, action: request.action, ...batch})
      else if (services?.restart) steps.push({kind: 'run', title: `${role}: run restart on ${count}${label}`, role, nodes: ids, service: 'restart', ...batch})
      else {
        // No restart script: the role's stop, then its start, batch by batch.
        for (const service of ['stop', 'start'] as const) {
          if (services?.[service]) steps.push({kind: 'run', title: `${role}: restart: run ${service} on ${count}${label}`, role, nodes: ids, service, ...batch})
        }
      }
      if (health) steps.push({kind: 'health', title: `${role}: wait for health on ${count}${label}`, role, nodes: ids, ...batch})
    })
  }
  if (steps.length === 0) {
    throw new ShoalError(`the action ${request.action} targets no node of ${state.name}${request.node ? ` (node ${request.node} is not among its \`on\` targets)` : ''}`, 'nothing-to-run', EXIT.failure)
  }
  const width = String(steps.length).length
  const nodes: PlannedNode[] = state.nodes.map((n) => ({...n, change: 'keep', reason: `run ${request.action}`, files: [], fileChanges: []}))
  return {
    cluster: state.name,
    operation: {kind: 'run', action: request.action, ...(request.role !== undefined ? {role: request.role} : {}), ...(request.node !== undefined ? {node: request.node} : {}), ...(request.args?.length ? {args: request.args} : {})},
    baseRevision: state.revision,
    revision: state.revision,
    specHash: state.specHash,
    nodes,
    desired: state,
    tree: [],
    changes: {puts: [], deletes: []},
    steps: steps.map((s, i) => ({id: `${String(i + 1).padStart(width, '0')}-${s.kind}${s.action ? `-${s.action.replace(/[^A-Za-z0-9_.-]/g, '_')}` : s.service ? `-${s.service}` : ''}-${s.role!}${s.batch ? `-b${s.batch.index}` : ''}`, ...s})),
    errors: [],
    secrets: secretValues(state.env, state.secretEnv),
  }
}
