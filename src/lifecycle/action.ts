// `shoal run` as a plan: a custom action (or restart) on registered nodes, in batches, honouring the script's `on` and `order`.
import {secretValues} from '../plan/env.js'
import {batches, serviceTargets, type RoleGroups, type Step} from '../plan/steps.js'
import type {ClusterState, Plan, PlannedNode} from '../plan/types.js'
import {DEFAULTS, type ServiceSpec} from '../spec/types.js'
import {EXIT, ShoalError} from '../errors.js'

export interface ActionRequest {
  action: string
  role?: string
  node?: string
}

/** `actions.<name>` of the role, or for `restart` its restart service. */
function scriptOf(state: ClusterState, role: string, action: string): ServiceSpec | undefined {
  const spec = state.spec?.roles[role]
  return spec?.actions?.[action] ?? (action === 'restart' ? spec?.services?.restart : undefined)
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
  if (withScript.length === 0) {
    const known = [...new Set(roles.flatMap((r) => [...Object.keys(spec.roles[r]?.actions ?? {}), ...(spec.roles[r]?.services?.restart ? ['restart'] : [])]))].sort()
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
    const nodes = state.nodes.filter((n) => n.role === role && n.state === 'active')
    const group: RoleGroups = {role, spec: spec.roles[role], existing: nodes, joining: [], leaving: [], bootstrap: nodes.find((n) => n.bootstrap), installFresh: [], installChanged: [], installFinal: []}
    const targets = serviceTargets(group, 'restart', script.on ?? DEFAULTS.serviceOn).filter((n) => request.node === undefined || n.node_id === request.node)
    const list = batches(targets, canaries, maxInFlight, (script.order ?? DEFAULTS.serviceOrder) === 'serial')
    const health = request.action === 'restart' && spec.roles[role]?.health_check !== undefined
    list.forEach((b, index) => {
      const label = list.length > 1 ? ` (${b.canary ? 'canary ' : ''}batch ${index + 1}/${list.length})` : ''
      const batch = list.length > 1 ? {batch: {index: index + 1, of: list.length, canary: b.canary}} : {}
      const ids = b.nodes.map((n) => n.node_id)
      const count = `${ids.length} node${ids.length === 1 ? '' : 's'}`
      const which = spec.roles[role]?.actions?.[request.action] ? {action: request.action} : {service: 'restart' as const}
      steps.push({kind: 'run', title: `${role}: run ${request.action} on ${count}${label}`, role, nodes: ids, ...which, ...batch})
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
    operation: {kind: 'run', action: request.action, ...(request.role !== undefined ? {role: request.role} : {}), ...(request.node !== undefined ? {node: request.node} : {})},
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
