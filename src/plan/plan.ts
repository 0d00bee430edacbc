// The planner: spec + templates + inventory + registered state + operation → a Plan (pure: no I/O, clock or randomness).
import type {ParsedTemplate, TemplateBudget} from '../render/engine.js'
import type {ClusterView, HostView, LinkView} from '../render/view.js'
import {DEFAULTS, type ClusterSpec, type EnvValue, type RoleSpec} from '../spec/types.js'
import {parseSize} from '../util/units.js'
import {canonicalJson, sha256} from './canonical.js'
import {defaultEnv, envChanges, secretValues, withHistory, type ResolvedEnv} from './env.js'
import {allocate, NO_IDS, release, sidBounds} from './ids.js'
import type {HostUsage, Inventory} from './inventory.js'
import {hostSlots, milliCpu, occupy, placeRole, type Demand, type HostSlot} from './placement.js'
import {hostView, linkView} from './node-view.js'
import {byRole, compileTemplates, registeredSensitive, renderNode, secretReaders, sharedView, type RenderContext, type SecretNames, type SharedView} from './render.js'
import {buildSteps, type RoleGroups} from './steps.js'
import {byRoleThenSid, diffEntries, treeEntries, TreeKeys, type TreeEntries} from './tree.js'
import type {ClusterState, FileChange, NodeFacts, NodeRecord, Operation, Plan, PlanError, PlannedNode, RenderedFile, RoleIds} from './types.js'
import type {LifecycleService} from '../spec/types.js'

export interface PlanInput {
  /** A validated spec (for `destroy` and `scale` usually the registered one, `current.spec`). */
  spec: ClusterSpec
  /** Template path (as the spec names it) -> source. */
  templates: ReadonlyMap<string, string>
  inventory: Inventory
  /** What the registry holds for this cluster; undefined when it is not registered. */
  current?: ClusterState
  operation: Operation
  /** Host name -> resources used there by other clusters. */
  otherUsage?: Record<string, HostUsage>
  /** Registered state of every cluster this spec links to, by cluster name. */
  linked?: Record<string, ClusterState>
  /**
   * What scripts already did per node in earlier operations that did not finish (see NodeFacts), when known. With
   * facts, a pending node that is kept skips the scripts it finished, and one that leaves is stopped or destroyed only
   * where it was started or initialised. Without facts every script a node needs runs (scripts must be idempotent).
   */
  facts?: Record<string, NodeFacts>
  /** Time all template renders of this plan may take together (the caller's clock: the planner reads none itself). */
  templateBudget?: TemplateBudget
  /** Render only this node's files (`shoal render --node`): the plan is then for showing that node, never for applying. */
  renderOnly?: string
  /** The parameter values and their sources (plan/env.ts `resolveEnv`); default: the spec's defaults. */
  env?: ResolvedEnv
  /**
   * Values members may still run with besides the registered ones, oldest first: from unfinished operations this plan
   * supersedes (see env.ts `withHistory`). Their parameters count as changed where they differ; their secrets are redacted.
   */
  envHistory?: Record<string, EnvValue>[]
  /**
   * Nodes the unfinished operations this plan supersedes added. A rollback that stopped registered them leaving, but they
   * never became members: where they stay they join again (their join scripts run), and a scale does not count them.
   */
  joinedUnfinished?: readonly string[]
}

/** Stop rendering after this many template errors: one broken template on 10,000 nodes is one problem, not 10,000. */
const MAX_RENDER_ERRORS = 20

interface RolePlan {
  role: string
  spec: RoleSpec | undefined
  before: number
  after: number
  /** Members that stay (registered active, or leaving in an unfinished operation and kept now). */
  kept: NodeRecord[]
  /** Nodes registered pending by an unfinished operation that join now, keeping their identity and host. */
  reused: NodeRecord[]
  leaving: NodeRecord[]
  joining: HostView[]
  ids: RoleIds | undefined
  removedByRequest: boolean
  /** Identities handed to this role's joiners, before placement. */
  allocated: {nodeId: string; sid: number}[]
}

function failed(input: PlanInput, errors: PlanError[]): Plan {
  const base = input.current?.revision ?? 0
  // Errors can quote rendered text: they are redacted with every secret the plan would have known.
  const env = input.env ?? defaultEnv(input.spec)
  const secrets = new Set([...secretValues(env.values, env.secret), ...(input.current ? secretValues(input.current.env, input.current.secretEnv) : [])])
  return {cluster: input.spec.name, operation: input.operation, baseRevision: base, revision: base, specHash: '', nodes: [], desired: null, tree: [], changes: {puts: [], deletes: []}, steps: [], envChanges: [], errors, secrets: sortedSecrets(secrets)}
}

function isInt(n: unknown, min: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min
}

/** The node count each role should have after the operation, or errors. */
function targetCounts(input: PlanInput, present: Map<string, NodeRecord[]>, errors: PlanError[]): {counts: Map<string, number>; remove: Set<string>} {
  const {spec, facts, operation: op} = input
  const counts = new Map<string, number>()
  const remove = new Set<string>()
  const currentCount = (role: string): number => present.get(role)?.length ?? 0
  /** Members a scale counts from: nodes an unfinished operation was adding are not members yet. */
  const notYet = notYetMember(input)
  const memberCount = (role: string): number => (present.get(role) ?? []).filter((n) => !notYet(n)).length
  const checkBounds = (role: string, count: number): void => {
    const scale = spec.roles[role]?.scale
    if ((scale?.min !== undefined && count < scale.min) || (scale?.max !== undefined && count > scale.max)) {
      errors.push({code: 'scale-bounds', role, message: `role ${role}: count ${count} is outside its scale bounds [${scale.min ?? 0}, ${scale.max ?? '∞'}] (roles.${role}.scale)`})
    }
  }
  if (op.kind === 'destroy') {
    for (const role of present.keys()) counts.set(role, 0)
    return {counts, remove}
  }
  if (op.kind === 'create' || op.kind === 'apply') {
    for (const [role, roleSpec] of Object.entries(spec.roles)) {
      counts.set(role, roleSpec.count)
      checkBounds(role, roleSpec.count)
    }
    for (const role of present.keys()) if (!counts.has(role)) counts.set(role, 0)
    return {counts, remove}
  }
  if (op.kind === 'rollback') {
    // Back to the members before the unfinished operation: joiners leave (also once its last commit marked them
    // active, before the files of the members that stay were re-rendered); leavers stay unless their data is gone.
    const joined = new Set(op.joined)
    for (const [role, nodes] of present) {
      for (const n of nodes) if (n.state === 'pending' || joined.has(n.node_id) || (n.state === 'leaving' && dataGone(facts, n.node_id))) remove.add(n.node_id)
      counts.set(role, nodes.filter((n) => !remove.has(n.node_id)).length)
    }
    return {counts, remove}
  }
  if (op.kind === 'run') {
    errors.push({code: 'invalid-value', message: `\`run ${op.action}\` changes no membership and is not planned from a spec (see lifecycle/action.ts)`})
    return {counts, remove}
  }
  // scale: only the named role changes; every other role keeps its nodes.
  for (const role of present.keys()) counts.set(role, currentCount(role))
  if (!(op.role in spec.roles)) {
    errors.push({code: 'unknown-role', role: op.role, message: `role ${op.role} is not in cluster ${spec.name}'s spec (roles: ${Object.keys(spec.roles).join(', ')})`})
    return {counts, remove}
  }
  const given = [op.count !== undefined, op.add !== undefined, op.remove !== undefined].filter(Boolean).length
  if (given !== 1) {
    errors.push({code: 'scale-args', role: op.role, message: 'scale needs exactly one of: a target count, a number of nodes to add, or the node ids to remove'})
    return {counts, remove}
  }
  const now = currentCount(op.role)
  let target = now
  if (op.count !== undefined) {
    if (!isInt(op.count, 0)) errors.push({code: 'scale-args', role: op.role, message: `count must be a whole number ≥ 0, got ${op.count}`})
    else target = op.count
  } else if (op.add !== undefined) {
    if (!isInt(op.add, 1)) errors.push({code: 'scale-args', role: op.role, message: `add must be a whole number ≥ 1, got ${op.add}`})
    else target = memberCount(op.role) + op.add
  } else {
    const ids = new Set((present.get(op.role) ?? []).map((n) => n.node_id))
    for (const id of op.remove!) {
      if (!ids.has(id)) errors.push({code: 'unknown-node', role: op.role, node: id, message: `node ${id} is not a node of role ${op.role} in cluster ${spec.name}`})
      else if (remove.has(id)) errors.push({code: 'scale-args', role: op.role, node: id, message: `node ${id} is named twice`})
      else remove.add(id)
    }
    if (op.remove!.length === 0) errors.push({code: 'scale-args', role: op.role, message: 'name at least one node id to remove'})
    target = now - remove.size
  }
  counts.set(op.role, target)
  if (!errors.length) checkBounds(op.role, target)
  return {counts, remove}
}

/** Whether a registered node has yet to join: pending, or added by an unfinished operation and then marked leaving. */
function notYetMember(input: PlanInput): (n: NodeRecord) => boolean {
  const joined = new Set(input.joinedUnfinished ?? [])
  return (n) => n.state === 'pending' || (n.state === 'leaving' && joined.has(n.node_id))
}

/** Whether a node's `destroy` began in an earlier operation: it cannot stay a member. */
function dataGone(facts: PlanInput['facts'], node: string): boolean {
  return facts?.[node]?.touched.includes('destroy') ?? false
}

function roleDemand(role: string, spec: RoleSpec, errors: PlanError[]): Demand {
  const size = (field: 'memory' | 'disk'): number => {
    const bytes = parseSize(spec[field])
    if (bytes === undefined) errors.push({code: 'invalid-value', role, message: `role ${role}: ${field} ${JSON.stringify(spec[field])} is not a size such as 1Gi`})
    return bytes ?? 0
  }
  return {cpu: milliCpu(spec.cpu), memory: size('memory'), disk: size('disk')}
}

/** The spec as registered after the operation: each role's count is the number of nodes it will have. */
function effectiveSpec(spec: ClusterSpec, counts: Map<string, number>): ClusterSpec {
  const roles: ClusterSpec['roles'] = {}
  for (const [role, roleSpec] of Object.entries(spec.roles)) roles[role] = {...roleSpec, count: counts.get(role) ?? 0}
  return {...spec, roles}
}

function sameFiles(a: readonly RenderedFile[], b: readonly RenderedFile[]): boolean {
  return a.length === b.length && a.every((f, i) => f.dest === b[i]!.dest && f.hash === b[i]!.hash && f.mode === b[i]!.mode)
}

function differsFromRegistered(files: readonly RenderedFile[], registered: Record<string, string> | undefined): boolean {
  if (!registered) return files.length > 0
  if (Object.keys(registered).length !== files.length) return true
  return files.some((f) => registered[f.dest] !== f.content)
}

/** `wasSensitive`: destinations whose registered content came from a template that read a secret. */
function fileChanges(files: readonly RenderedFile[], registered: Record<string, string> = {}, wasSensitive: ReadonlySet<string> = new Set()): FileChange[] {
  const changes: FileChange[] = []
  const dests = new Set<string>()
  const mark = (dest: string, now: boolean | undefined): {sensitive?: true} => (now || wasSensitive.has(dest) ? {sensitive: true} : {})
  for (const f of files) {
    dests.add(f.dest)
    const before = registered[f.dest]
    if (before === undefined) changes.push({dest: f.dest, action: 'create', after: f.content, ...mark(f.dest, f.sensitive)})
    else if (before !== f.content) changes.push({dest: f.dest, action: 'update', before, after: f.content, ...mark(f.dest, f.sensitive)})
  }
  for (const dest of Object.keys(registered).sort()) if (!dests.has(dest)) changes.push({dest, action: 'delete', before: registered[dest], ...mark(dest, false)})
  return changes
}

/** Whether any template may read one of `names`: only by naming it, or through a computed `[...]` lookup. */
function templatesMayRead(templates: ReadonlyMap<string, string>, spec: ClusterSpec, names: readonly string[]): boolean {
  for (const roleSpec of Object.values(spec.roles)) {
    for (const file of roleSpec.files ?? []) {
      const source = templates.get(file.template) ?? ''
      if (source.includes('[') || names.some((name) => source.includes(name))) return true
    }
  }
  return false
}

/**
 * Plan an operation, in named stages: admit it, count each role's nodes, decide who stays and leaves, give joiners
 * identities and hosts, build the views templates see, render, build the registry states, and order the steps.
 */
export function planCluster(input: PlanInput): Plan {
  const errors = admissionErrors(input)
  if (errors.length) return failed(input, errors)
  const present = nodesByRole(input.current)
  const {counts, remove} = targetCounts(input, present, errors)
  if (errors.length) return failed(input, errors)
  const roles = splitMembership(input, present, counts, remove)
  allocateIdentities(input, roles, present, errors)
  if (errors.length) return failed(input, errors)
  placeJoiners(input, roles, errors)
  if (errors.length) return failed(input, errors)
  const draft = draftViews(input, roles, counts, errors)
  if (errors.length) return failed(input, errors)
  return finishPlan(draft, errors)
}

/**
 * Refusals before any planning: a state of another cluster, or nothing registered. A cluster with nodes still pending or
 * leaving (an unfinished operation) is planned from what stands: that is how an operation is fixed forward.
 */
function admissionErrors(input: PlanInput): PlanError[] {
  const {spec, current, operation: op} = input
  const errors: PlanError[] = []
  const name = spec.name
  if (current && current.name !== name) errors.push({code: 'cluster-mismatch', message: `the registered state is for cluster ${current.name}, the spec is for ${name}`})
  if (!current && op.kind !== 'create' && !(op.kind === 'apply' && op.follows === undefined)) errors.push({code: 'not-registered', message: `cluster ${name} is not registered: nothing to ${op.kind}`})
  // Switching agents on or off would leave the running nodes with no one delivering their files (or two).
  if (current?.spec && op.kind !== 'destroy' && (current.spec.agent === true) !== (spec.agent === true)) {
    errors.push({code: 'agent-switch', message: `cluster ${name} was created ${current.spec.agent ? 'with' : 'without'} agents (agent: ${current.spec.agent === true}); agent cannot be switched on or off for a registered cluster: set it back, or destroy and create the cluster again`})
  }
  return errors
}

/** Registered nodes by role, each list in sid order. */
function nodesByRole(current: ClusterState | undefined): Map<string, NodeRecord[]> {
  const present = new Map<string, NodeRecord[]>()
  for (const node of current?.nodes ?? []) {
    const list = present.get(node.role)
    if (list) list.push(node)
    else present.set(node.role, [node])
  }
  for (const list of present.values()) list.sort((a, b) => a.sid - b.sid)
  return present
}

/** Which registered members stay rather than pending ones, and rather than leaving ones. */
const STAY_RANK: Record<NodeRecord['state'], number> = {active: 0, leaving: 1, pending: 2}

/**
 * Which nodes of each role stay and which leave (named ones, else the highest sids). Active members stay first, then
 * members an unfinished operation was removing, then nodes it had registered pending (they join again, keeping their
 * ids); a node whose destroy already ran never stays. New joiners come later.
 */
function splitMembership(input: PlanInput, present: Map<string, NodeRecord[]>, counts: Map<string, number>, remove: Set<string>): RolePlan[] {
  const {spec, current, operation: op} = input
  const notYet = notYetMember(input)
  const roleOrder = [...Object.keys(spec.roles), ...[...present.keys()].filter((r) => !(r in spec.roles)).sort()]
  return roleOrder.map((role) => {
    const nodes = present.get(role) ?? []
    const after = counts.get(role) ?? 0
    const byRequest = ((op.kind === 'scale' && op.role === role) || op.kind === 'rollback') && remove.size > 0
    const rank = (n: NodeRecord): number => (notYet(n) ? STAY_RANK.pending : STAY_RANK[n.state])
    const staying = byRequest
      ? nodes.filter((n) => !remove.has(n.node_id))
      : nodes.filter((n) => !dataGone(input.facts, n.node_id)).sort((a, b) => rank(a) - rank(b) || a.sid - b.sid).slice(0, after)
    const stays = new Set(staying.map((n) => n.node_id))
    const kept = staying.filter((n) => !notYet(n)).sort((a, b) => a.sid - b.sid)
    const reused = staying.filter(notYet).sort((a, b) => a.sid - b.sid)
    const leaving = nodes.filter((n) => !stays.has(n.node_id))
    return {role, spec: spec.roles[role], before: nodes.length, after, kept, reused, leaving, joining: [], ids: current?.ids[role], removedByRequest: byRequest && op.kind === 'scale', allocated: []}
  })
}

/** Node ids and sids for every joiner (lowest never-used sid first; see ids.ts). */
function allocateIdentities(input: PlanInput, roles: RolePlan[], present: Map<string, NodeRecord[]>, errors: PlanError[]): void {
  for (const r of roles) {
    const joining = r.after - r.kept.length - r.reused.length
    if (joining <= 0 || !r.spec) continue
    const bounds = sidBounds(r.spec)
    const inUse = new Set((present.get(r.role) ?? []).map((n) => n.sid))
    const allocation = allocate(input.spec.name, r.role, r.ids ?? NO_IDS, bounds, inUse, joining)
    if (!allocation) {
      errors.push({code: 'sid-exhausted', role: r.role, message: `role ${r.role}: no server id left for ${joining} new node${joining === 1 ? '' : 's'} in [${bounds.start}, ${bounds.upperBound}] (every sid is in use or held by a node still present); raise roles.${r.role}.server_id.upper_bound or remove nodes first`})
      continue
    }
    r.ids = allocation.ids
    r.allocated = allocation.nodes
  }
}

/** Put every joiner on a host with room for it (capacity, labels, max per host), after the registered nodes. */
function placeJoiners(input: PlanInput, roles: RolePlan[], errors: PlanError[]): void {
  const name = input.spec.name
  const {slots, errors: inventoryErrors} = hostSlots(input.inventory, input.otherUsage)
  errors.push(...inventoryErrors)
  const slotByName = new Map<string, HostSlot>(slots.map((s) => [s.name, s]))
  for (const node of input.current?.nodes ?? []) {
    const slot = slotByName.get(node.host)
    if (slot) occupy(slot, node.role, {cpu: milliCpu(node.cpu), memory: node.memory_bytes, disk: node.disk_bytes})
  }
  if (errors.length) return
  for (const r of roles) {
    // A reused pending node keeps its host and identity; it takes the spec's image (it never ran the old one).
    r.joining = r.reused.map((n) => ({...hostView(n, false), ...(r.spec ? {image: r.spec.image} : {})}))
    if (r.allocated.length === 0 || !r.spec) continue
    const spec = r.spec
    const demand = roleDemand(r.role, spec, errors)
    const placed = placeRole(slots, {role: r.role, count: r.allocated.length, demand, labels: spec.placement?.labels ?? {}, maxPerHost: spec.placement?.max_per_host ?? DEFAULTS.maxPerHost})
    if ('error' in placed) {
      errors.push(placed.error)
      continue
    }
    r.joining = [...r.joining, ...r.allocated.map(({nodeId, sid}, i) => ({
      node_id: nodeId, role: r.role, sid, ip: placed.hosts[i]!.address, host: placed.hosts[i]!.name, image: spec.image,
      cpu: spec.cpu, memory: spec.memory, memory_bytes: demand.memory, disk: spec.disk, disk_bytes: demand.disk,
      bootstrap: false, home: `${DEFAULTS.nodeHomeRoot}/${name}/${nodeId}`,
    }))]
  }
}

/** Everything rendering and the states need, decided once: host views, lists per phase, env, links, templates. */
interface Draft {
  input: PlanInput
  roles: RolePlan[]
  roleOrder: string[]
  finalSpec: ClusterSpec
  specHash: string
  /** One view object per node, shared by every list and view it appears in. */
  views: Map<string, HostView>
  staying: HostView[]
  leaving: HostView[]
  joiningIds: Set<string>
  env: ResolvedEnv
  secrets: Set<string>
  links: Record<string, LinkView>
  compiled: Map<string, ParsedTemplate>
  /** The parsed templates, which of them read a secret (their files are sensitive) and the command's budget. */
  renderCtx: RenderContext
  /** Per role, the destinations whose registered content came from a template that read a secret. */
  wasSensitive: Map<string, Set<string>>
  templatesStored: Record<string, string>
  lists: {final: Record<string, HostView[]>; interim: Record<string, HostView[]>; empty: Record<string, HostView[]>; adding: Record<string, HostView[]>; deleting: Record<string, HostView[]>}
  /** Whether nodes see anything else while the operation runs than after it (leaving nodes, adding lists). */
  inFlightDiffers: boolean
  destroying: boolean
}

function draftViews(input: PlanInput, roles: RolePlan[], counts: Map<string, number>, errors: PlanError[]): Draft {
  const {spec, current} = input
  const roleOrder = roles.map((r) => r.role)
  const finalSpec = effectiveSpec(spec, counts)
  const views = new Map<string, HostView>()
  for (const r of roles) {
    const stayingSids = [...r.kept.map((n) => n.sid), ...r.joining.map((n) => n.sid)]
    const bootSid = stayingSids.reduce<number | undefined>((low, sid) => (low === undefined || sid < low ? sid : low), undefined)
    for (const n of r.kept) views.set(n.node_id, hostView(n, n.sid === bootSid))
    for (const n of r.joining) {
      n.bootstrap = n.sid === bootSid
      views.set(n.node_id, n)
    }
    for (const n of r.leaving) views.set(n.node_id, hostView(n, false))
  }
  const viewsOf = (nodes: readonly {node_id: string}[]): HostView[] => nodes.map((n) => views.get(n.node_id)!)

  const env = input.env ?? defaultEnv(spec)
  const secretEnv = env.secret
  // The registered (old) values too: a secret that changes must not show its old value in a diff's `before`, and a
  // configure script may print the old value it authenticates with.
  const secrets = new Set([
    ...secretValues(env.values, env.secret),
    ...(current ? secretValues(current.env, current.secretEnv) : []),
    ...(input.envHistory ?? []).flatMap((values) => secretValues(values, env.secret)),
  ])
  const linkSecrets = new Map<string, ReadonlySet<string>>()
  const links = linkViews(input, secrets, linkSecrets, errors)

  const destroying = input.operation.kind === 'destroy'
  let compiled = new Map<string, ParsedTemplate>()
  if (!destroying) {
    const result = compileTemplates(spec, input.templates)
    compiled = result.compiled
    errors.push(...result.errors)
  }
  const templatesStored: Record<string, string> = {}
  for (const path of [...compiled.keys()].sort()) templatesStored[path] = input.templates.get(path)!
  const secretNames: SecretNames = {env: new Set(secretEnv), links: linkSecrets}
  const renderCtx: RenderContext = {compiled, sensitive: secretReaders(compiled, secretNames), ...(input.templateBudget ? {budget: input.templateBudget} : {})}
  const wasSensitive = current && (current.secretEnv.length > 0 || linkSecrets.size > 0) ? registeredSensitive(current, linkSecrets) : new Map<string, Set<string>>()

  const staying = viewsOf(roles.flatMap((r) => [...r.kept, ...r.joining]))
  const leaving = viewsOf(roles.flatMap((r) => r.leaving))
  const joiningIds = new Set(roles.flatMap((r) => r.joining.map((n) => n.node_id)))
  const final = byRole(staying, roleOrder)
  const empty = byRole([], roleOrder)
  // The in-flight view differs by the leaving nodes in hosts and by adding/deleting lists, which few templates read.
  // Joiners are in adding_hosts during create too: joining means the same in templates, env and the membership file.
  const inFlightDiffers = leaving.length > 0 || (joiningIds.size > 0 && templatesMayRead(input.templates, spec, ['adding_hosts']))
  return {
    input, roles, roleOrder, finalSpec, specHash: sha256(canonicalJson(finalSpec)), views, staying, leaving, joiningIds, env, secrets, links, compiled, renderCtx, wasSensitive, templatesStored,
    lists: {
      final, empty,
      interim: leaving.length ? byRole([...staying, ...leaving], roleOrder) : final,
      adding: byRole(viewsOf(roles.flatMap((r) => r.joining)), roleOrder),
      deleting: byRole(leaving, roleOrder),
    },
    inFlightDiffers, destroying,
  }
}

/** What templates see of each linked cluster; its secret values join the ones plans redact, its secret names `linkSecrets`. */
function linkViews(input: PlanInput, secrets: Set<string>, linkSecrets: Map<string, ReadonlySet<string>>, errors: PlanError[]): Record<string, LinkView> {
  const links: Record<string, LinkView> = {}
  for (const [linkName, other] of Object.entries(input.spec.links ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const state = input.linked?.[other]
    if (!state) {
      errors.push({code: 'link-missing', message: `link ${linkName}: cluster ${other} is not registered; create it first or fix links.${linkName}`})
      continue
    }
    links[linkName] = linkView(state)
    for (const s of secretValues(state.env, state.secretEnv)) secrets.add(s)
    linkSecrets.set(linkName, new Set(state.secretEnv))
  }
  return links
}

/** Every staying node's files, as it sees them after the operation (`final`) and while it runs (`interim`). */
interface Rendered {
  final: Map<string, RenderedFile[]>
  interim: Map<string, RenderedFile[]>
}

function renderAll(draft: Draft, revision: number, errors: PlanError[]): Rendered {
  const {spec} = draft.input
  const cluster: ClusterView = {name: spec.name, description: spec.description ?? '', spec_hash: draft.specHash, revision}
  const {lists} = draft
  const finalView: SharedView = sharedView(cluster, draft.env.values, draft.links, lists.final, lists.empty, lists.empty)
  const interimView: SharedView = draft.inFlightDiffers ? sharedView(cluster, draft.env.values, draft.links, lists.interim, lists.adding, lists.deleting) : finalView
  const out: Rendered = {final: new Map(), interim: new Map()}
  if (draft.destroying) return out
  for (const r of draft.roles) {
    if (!r.spec) continue
    for (const node of [...r.kept, ...r.joining]) {
      // The budget error names the template that used it up; what would follow is the same template again.
      if (errors.length >= MAX_RENDER_ERRORS || errors.some((e) => e.code === 'template-budget')) return out
      if (draft.input.renderOnly !== undefined && node.node_id !== draft.input.renderOnly) continue
      const self = draft.views.get(node.node_id)!
      const known = errors.length
      const finalFiles = renderNode(r.spec.files, self, finalView, draft.renderCtx, errors)
      out.final.set(self.node_id, finalFiles)
      // A template that failed for the node's final view is reported once, not again for the view while it joins.
      const again = draft.inFlightDiffers && errors.length === known
      out.interim.set(self.node_id, again ? renderNode(r.spec.files, self, interimView, draft.renderCtx, errors) : finalFiles)
    }
  }
  return out
}

/** The registry states: `interim` while the operation runs (joiners pending, leavers leaving), `final` after it. */
function buildStates(draft: Draft, revision: number, rendered: Rendered, record: (view: HostView, state: NodeRecord['state']) => NodeRecord): {interim: ClusterState; final: ClusterState} {
  const {spec, current} = draft.input
  const ids: Record<string, RoleIds> = {...current?.ids}
  const finalIds: Record<string, RoleIds> = {...current?.ids}
  for (const r of draft.roles) {
    if (!r.ids) continue
    ids[r.role] = r.ids
    finalIds[r.role] = release(r.ids, r.leaving.map((n) => n.sid))
  }
  const common = {
    name: spec.name, description: spec.description ?? '', specHash: draft.specHash, revision, spec: draft.finalSpec,
    templates: draft.destroying ? (current?.templates ?? {}) : draft.templatesStored, env: draft.env.values, secretEnv: draft.env.secret, ...(Object.keys(draft.env.sources).length ? {envSources: draft.env.sources} : {}), links: {...spec.links},
  }
  const interimNodes: NodeRecord[] = [
    ...draft.roles.flatMap((r) => r.kept.map((n) => record(draft.views.get(n.node_id)!, 'active'))),
    ...draft.roles.flatMap((r) => r.joining.map((n) => record(n, 'pending'))),
    ...draft.leaving.map((n) => record(n, 'leaving')),
  ].sort(byRoleThenSid)
  const interimFiles: Record<string, Record<string, string>> = {}
  const finalFiles: Record<string, Record<string, string>> = {}
  for (const node of draft.leaving) if (current?.files[node.node_id]) interimFiles[node.node_id] = current.files[node.node_id]!
  for (const [id, files] of rendered.interim) if (files.length) interimFiles[id] = Object.fromEntries(files.map((f) => [f.dest, f.content]))
  for (const [id, files] of rendered.final) if (files.length) finalFiles[id] = Object.fromEntries(files.map((f) => [f.dest, f.content]))
  return {
    interim: {...common, nodes: interimNodes, adding: [...draft.joiningIds].sort(), deleting: draft.leaving.map((n) => n.node_id).sort(), ids, files: interimFiles},
    final: {...common, nodes: draft.staying.map((v) => record(v, 'active')).sort(byRoleThenSid), adding: [], deleting: [], ids: finalIds, files: finalFiles},
  }
}

/** Render, build the states and trees at the right revision, and order the steps; an unchanged cluster plans none. */
function finishPlan(draft: Draft, errors: PlanError[]): Plan {
  const {input, destroying} = draft
  const {spec, current, operation: op} = input
  const name = spec.name
  const baseRevision = current?.revision ?? 0
  // One record object per node and state, shared by the states of this plan (their tree entries are then built once).
  const records = new Map<string, NodeRecord>()
  const record = (view: HostView, state: NodeRecord['state']): NodeRecord => {
    const key = `${state}:${view.node_id}`
    let rec = records.get(key)
    if (!rec) records.set(key, (rec = {...view, state}))
    return rec
  }

  const keys = new TreeKeys()
  const before = current ? treeEntries(current, keys) : []
  let revision = current ? baseRevision : 1
  let rendered = renderAll(draft, revision, errors)
  if (errors.length) return failed(input, errors)
  let states = buildStates(draft, revision, rendered, record)
  let finalTree: TreeEntries = destroying ? [] : treeEntries(states.final, keys)
  const changedEnv = destroying ? [] : withHistory(envChanges(current, draft.env), input.envHistory, draft.env)
  const base = {cluster: name, operation: op, baseRevision, specHash: draft.specHash, envChanges: changedEnv, errors: [], secrets: sortedSecrets(draft.secrets)}
  const staleFiles = draft.staying.some((v) => input.facts?.[v.node_id]?.filesStale === true)
  if (current && !destroying && draft.joiningIds.size === 0 && draft.leaving.length === 0 && !staleFiles && changedEnv.length === 0) {
    const unchanged = diffEntries(before, finalTree)
    if (unchanged.puts.length === 0 && unchanged.deletes.length === 0) {
      return {...base, revision, nodes: plannedNodes(draft, rendered), desired: states.final, tree: finalTree, changes: unchanged, steps: []}
    }
  }
  if (current) {
    revision = baseRevision + 1
    if (!destroying && templatesMayRead(input.templates, spec, ['revision'])) {
      rendered = renderAll(draft, revision, errors)
      if (errors.length) return failed(input, errors)
    }
    states = buildStates(draft, revision, rendered, record)
    finalTree = destroying ? [] : treeEntries(states.final, keys)
  }
  const interimTree = treeEntries(states.interim, keys)
  const steps = buildSteps({roles: roleGroups(draft, rendered), update: spec.update, register: diffEntries(before, interimTree), finalize: diffEntries(interimTree, finalTree), envChanged: changedEnv.length > 0, agents: spec.agent === true})
  return {...base, revision, nodes: plannedNodes(draft, rendered), desired: destroying ? null : states.final, tree: finalTree, changes: diffEntries(before, finalTree), steps}
}

/** Per node: what happens to it and why, with its files and their changes against the registry. */
function plannedNodes(draft: Draft, rendered: Rendered): PlannedNode[] {
  const {current} = draft.input
  const input = draft.input
  const out: PlannedNode[] = []
  for (const r of draft.roles) {
    for (const n of r.kept) {
      const view = draft.views.get(n.node_id)!
      const files = rendered.final.get(n.node_id) ?? []
      const interim = rendered.interim.get(n.node_id) ?? files
      const changes = fileChanges(files, current?.files[n.node_id], draft.wasSensitive.get(n.role))
      const drift = r.spec && (n.image !== r.spec.image || n.cpu !== r.spec.cpu || n.memory !== r.spec.memory || n.disk !== r.spec.disk)
      const reason = [changes.length ? `files change: ${changes.map((c) => c.dest).join(', ')}` : 'unchanged', ...(drift ? ['image or resources differ from the spec (not changed by this operation)'] : [])].join('; ')
      out.push({...view, state: 'active', change: 'keep', reason, files, ...(sameFiles(interim, files) ? {} : {interim}), fileChanges: changes})
    }
    const reusedIds = new Set(r.reused.map((n) => n.node_id))
    for (const n of r.joining) {
      const files = rendered.final.get(n.node_id) ?? []
      const interim = rendered.interim.get(n.node_id) ?? files
      const members = r.kept.length
      const reason =
        reusedIds.has(n.node_id) ? 'registered by an unfinished operation; joins now (scripts it finished there are not run again)'
        : !current ? 'new cluster' : members === 0 ? `role ${r.role} added` : `scale out ${r.role} ${members} → ${r.after}`
      out.push({...n, state: 'active', change: 'create', reason, files, ...(sameFiles(interim, files) ? {} : {interim}), fileChanges: fileChanges(files)})
    }
    for (const n of r.leaving) {
      const reason = n.state === 'pending' ? 'registered by an unfinished operation; leaves again' : draft.destroying ? 'cluster destroyed' : input.operation.kind === 'rollback' ? (n.state === 'leaving' ? 'its destroy already ran: it cannot be restored' : 'rolled back') : r.removedByRequest ? 'removal requested' : !r.spec ? `role ${r.role} is no longer in the spec` : `scale in ${r.role} ${r.before} → ${r.after} (highest sids leave first)`
      out.push({...draft.views.get(n.node_id)!, state: 'leaving', change: 'remove', reason, files: [], fileChanges: []})
    }
  }
  return out
}

/**
 * Scripts a node does not need, from the facts of earlier unfinished operations: a joiner skips the init and start it
 * finished (start only counts once its health passed); a leaver skips the stop and destroy it finished, and one that was
 * only ever pending is stopped only where start began and destroyed only where init began.
 */
function skipsOf(draft: Draft): Map<string, Set<LifecycleService>> {
  const {facts} = draft.input
  const skip = new Map<string, Set<LifecycleService>>()
  if (!facts) return skip
  for (const r of draft.roles) {
    for (const n of r.reused) {
      // A start that a later operation's stop undid (a rollback removing it) runs again.
      const f = facts[n.node_id]
      skip.set(n.node_id, new Set((f?.done ?? []).filter((s) => s === 'init' || (s === 'start' && !f?.touched.includes('stop')))))
    }
    for (const n of r.leaving) {
      const f = facts[n.node_id] ?? {done: [], touched: []}
      const skips = new Set<LifecycleService>(f.done.filter((s) => s === 'stop' || s === 'destroy'))
      if (n.state === 'pending') {
        if (!f.touched.includes('start')) skips.add('stop')
        if (!f.touched.includes('init')) skips.add('destroy')
      }
      skip.set(n.node_id, skips)
    }
  }
  return skip
}

/** The step builder's input per role: who exists, joins, leaves, and which nodes need files installed when. */
function roleGroups(draft: Draft, rendered: Rendered): RoleGroups[] {
  const {current, facts} = draft.input
  const viewsOf = (nodes: readonly {node_id: string}[]): HostView[] => nodes.map((n) => draft.views.get(n.node_id)!)
  const skip = skipsOf(draft)
  const stale = (id: string): boolean => facts?.[id]?.filesStale === true
  return draft.roles.map((r) => {
    const kept = viewsOf(r.kept)
    // Members an unfinished scale-in had already stopped start again when they stay.
    const restarting = viewsOf(r.kept.filter((n) => n.state === 'leaving' && (facts?.[n.node_id]?.touched.includes('stop') ?? false)))
    const stayingViews = [...kept, ...r.joining].sort((a, b) => a.sid - b.sid)
    return {
      role: r.role,
      spec: r.spec ?? current?.spec?.roles[r.role],
      existing: kept,
      joining: r.joining,
      leaving: viewsOf(r.leaving),
      bootstrap: stayingViews.find((v) => v.bootstrap),
      installFresh: r.joining.filter((n) => (rendered.interim.get(n.node_id) ?? []).length > 0).map((n) => n.node_id),
      installChanged: r.kept.filter((n) => stale(n.node_id) || differsFromRegistered(rendered.interim.get(n.node_id) ?? [], current?.files[n.node_id])).map((n) => n.node_id),
      installFinal: stayingViews.filter((n) => !sameFiles(rendered.interim.get(n.node_id) ?? [], rendered.final.get(n.node_id) ?? [])).map((n) => n.node_id),
      ...(skip.size ? {skip} : {}),
      ...(restarting.length ? {restarting} : {}),
    }
  })
}

/** Longest first, so a secret containing another is redacted whole. */
function sortedSecrets(secrets: Set<string>): string[] {
  return [...secrets].sort((a, b) => b.length - a.length || (a < b ? -1 : 1))
}
