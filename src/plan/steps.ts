// The step model: an operation as an ordered list of plain-data steps an executor walks (and resumes) one by one.
//
// Step kinds and what an executor does for each:
//   commit  apply `changes` (puts, deletes) to the registry in one transaction guarded by the planned revision.
//   install place the nodes' rendered files (`files: 'interim'` = PlannedNode.interim ?? files, `'final'` = files):
//           stage beside the destination, compare, `check`, atomic rename; when `reload`, run the reload command of
//           each file that changed (the service already runs there). Nodes are listed only when a file changes.
//           With agents (`agent: true`) nothing is pushed: new nodes get a started agent, and every listed node's agent
//           must report the step's files applied at the last commit.
//   run     run the role's `service` script on `nodes`, in parallel (the batch is already sized by the update policy).
//   health  wait until the role's health_check passes on `nodes`.
//   remove  delete the nodes' placed files and their home directory.
// Order (DESIGN.md lifecycle): commit register (new nodes pending, in adding-hosts; removed ones leaving, in
// deleting-hosts) → install interim files → when env changed, existing nodes configure (+ health, in update batches)
// → per role in declared order: init, then start + health in batches
// (canaries first) → existing nodes scale_out → remaining nodes scale_in → per role in reverse declared order: the
// leaving nodes stop, destroy, remove → commit finalize (nodes active, leaving ones and in-flight markers gone) →
// install final files where they differ from the interim ones. Destroy is the same walk with every node leaving and
// an empty final tree. Empty steps are left out; ids are `<nn>-<kind>[-<service>]-<role>[-b<batch>]`, stable for a plan.
import type {HostView} from '../render/view.js'
import {DEFAULTS, type CountOrPercent, type LifecycleService, type RoleSpec, type ServiceTarget, type UpdatePolicy} from '../spec/types.js'
import {resolveCountOrPercent} from '../util/units.js'
import type {TreeChanges} from './types.js'

export type StepKind = 'commit' | 'install' | 'run' | 'health' | 'remove'

export interface Step {
  /** Stable within a plan, so an executor can record progress and resume. */
  id: string
  kind: StepKind
  title: string
  role?: string
  /** Node ids, sid order. */
  nodes: string[]
  service?: LifecycleService
  /** A custom action of the role (`actions.<name>`), for operations `shoal run` builds; runs like `service`. */
  action?: string
  files?: 'interim' | 'final'
  reload?: boolean
  batch?: {index: number; of: number; canary: boolean}
  changes?: TreeChanges
}

/** The nodes of one role, grouped by what the operation does to them (each list sorted by sid). */
export interface RoleGroups {
  role: string
  /** Undefined for a role that left the spec (its nodes are all leaving). */
  spec: RoleSpec | undefined
  existing: HostView[]
  joining: HostView[]
  leaving: HostView[]
  bootstrap: HostView | undefined
  /** Nodes needing interim files: new ones (no reload) and existing ones whose files change (reload). */
  installFresh: string[]
  installChanged: string[]
  /** Remaining nodes whose final files differ from the interim ones. */
  installFinal: string[]
  /** Per node, services it does not need (finished, or never begun, in an earlier unfinished operation). */
  skip?: ReadonlyMap<string, ReadonlySet<LifecycleService>>
  /** Members an earlier unfinished operation stopped that stay: they start again (with health). */
  restarting?: HostView[]
}

export interface StepInput {
  /** Roles in declared order (roles that left the spec last). */
  roles: RoleGroups[]
  update: UpdatePolicy | undefined
  register: TreeChanges
  finalize: TreeChanges
  /** A parameter value changes: `configure` runs on the existing nodes, after their files were replaced. */
  envChanged?: boolean
  /**
   * The nodes' agents place the files (`agent: true`): an install step starts the agents of new nodes, or waits for
   * the agents to report the committed files applied. Agents apply a commit at once, so such a step is never batched.
   */
  agents?: boolean
}

type Batch = {nodes: HostView[]; canary: boolean}

/** Canaries first (one batch), then batches of max_in_flight resolved against the target count; serial = one by one. */
export function batches(nodes: HostView[], canaries: number, maxInFlight: CountOrPercent, serial: boolean): Batch[] {
  if (nodes.length === 0) return []
  const size = serial ? 1 : (resolveCountOrPercent(maxInFlight, nodes.length) ?? 1)
  const out: Batch[] = []
  const lead = Math.min(canaries, nodes.length)
  if (lead > 0) out.push({nodes: nodes.slice(0, lead), canary: true})
  for (let i = lead; i < nodes.length; i += size) out.push({nodes: nodes.slice(i, i + size), canary: false})
  return out
}

type Subject = 'joining' | 'leaving' | 'present' | 'existing'

// configure concerns running members only: joiners start with the new values, leavers are going away.
const SUBJECT: Partial<Record<LifecycleService, Subject>> = {
  init: 'joining', start: 'joining', stop: 'leaving', destroy: 'leaving', scale_out: 'present', scale_in: 'present', pre_scale_out: 'existing', pre_scale_in: 'leaving',
  configure: 'existing',
}

/** The nodes a service runs on: its `on` target within the nodes the service concerns. */
export function serviceTargets(g: RoleGroups, service: LifecycleService, on: ServiceTarget): HostView[] {
  const subject = SUBJECT[service] ?? 'present'
  const present = [...g.existing, ...g.joining, ...g.leaving].sort((a, b) => a.sid - b.sid)
  const inSubject = subject === 'joining' ? g.joining : subject === 'leaving' ? g.leaving : subject === 'existing' ? g.existing : present
  const chosen =
    on === 'all' ? inSubject
    : on === 'existing' ? g.existing
    : on === 'joining' ? g.joining
    : on === 'leaving' ? g.leaving
    : g.bootstrap ? [g.bootstrap] : []
  const allowed = new Set(inSubject.map((n) => n.node_id))
  return chosen.filter((n) => allowed.has(n.node_id))
}

export function buildSteps(input: StepInput): Step[] {
  const steps: Omit<Step, 'id'>[] = []
  const ids = (nodes: HostView[]): string[] => nodes.map((n) => n.node_id)
  const canaries = input.update?.canaries ?? DEFAULTS.canaries
  const maxInFlight = input.update?.max_in_flight ?? DEFAULTS.maxInFlight

  const pushBatches = (kind: 'run' | 'install', g: RoleGroups, nodes: HostView[], service: LifecycleService | undefined, withCanaries: boolean, extra: Partial<Step>, health: boolean, whole = false): void => {
    const serial = service !== undefined && g.spec?.services?.[service]?.order === 'serial'
    const all = whole || (kind === 'install' && input.agents === true)
    const list = batches(nodes, withCanaries ? canaries : 0, all ? Math.max(1, nodes.length) : maxInFlight, serial)
    list.forEach((b, index) => {
      const what = kind === 'run' ? `run ${service}` : input.agents ? 'wait for the agents to install changed files and reload' : 'install changed files and reload'
      const batch = list.length > 1 ? {batch: {index: index + 1, of: list.length, canary: b.canary}} : {}
      const label = list.length > 1 ? ` (${b.canary ? 'canary ' : ''}batch ${index + 1}/${list.length})` : ''
      steps.push({kind, title: `${g.role}: ${what} on ${b.nodes.length} node${b.nodes.length === 1 ? '' : 's'}${label}`, role: g.role, nodes: ids(b.nodes), ...(service ? {service} : {}), ...extra, ...batch})
      if (health) steps.push({kind: 'health', title: `${g.role}: wait for health on ${b.nodes.length} node${b.nodes.length === 1 ? '' : 's'}${label}`, role: g.role, nodes: ids(b.nodes), ...batch})
    })
  }
  const runService = (g: RoleGroups, service: LifecycleService, withCanaries = false, health = false, only?: HostView[], whole = false): void => {
    const spec = g.spec?.services?.[service]
    if (!spec) return
    const targets = (only ?? serviceTargets(g, service, spec.on ?? DEFAULTS.serviceOn)).filter((n) => !g.skip?.get(n.node_id)?.has(service))
    pushBatches('run', g, targets, service, withCanaries, {}, health && g.spec?.health_check !== undefined, whole)
  }
  const waitHealth = (g: RoleGroups, nodes: HostView[]): void => {
    if (nodes.length === 0 || g.spec?.health_check === undefined) return
    steps.push({kind: 'health', title: `${g.role}: wait for health on ${nodes.length} node${nodes.length === 1 ? '' : 's'}`, role: g.role, nodes: ids(nodes)})
  }
  const byId = (g: RoleGroups, list: string[]): HostView[] => {
    const wanted = new Set(list)
    return [...g.existing, ...g.joining].filter((n) => wanted.has(n.node_id))
  }

  if (input.register.puts.length + input.register.deletes.length > 0) {
    steps.push({kind: 'commit', title: 'registry: register the operation (new nodes pending, removed nodes leaving)', nodes: [], changes: input.register})
  }
  for (const g of input.roles) {
    const fresh = g.installFresh.length
    if (fresh > 0) steps.push({kind: 'install', title: `${g.role}: ${input.agents ? 'start the agents of' : 'place files on'} ${fresh} new node${fresh === 1 ? '' : 's'}${input.agents ? ' (their first pass places the files)' : ''}`, role: g.role, nodes: g.installFresh, files: 'interim', reload: false})
    pushBatches('install', g, byId(g, g.installChanged), undefined, false, {files: 'interim', reload: true}, false)
  }
  if (input.envChanged) for (const g of input.roles) if (g.existing.length > 0) runService(g, 'configure', true, true)
  // Existing members learn of the joiners before these start (e.g. a quorum store adds a member from an existing one).
  for (const g of input.roles) if (g.joining.length > 0 && g.existing.length > 0) runService(g, 'pre_scale_out')
  for (const g of input.roles) {
    if (g.joining.length === 0) continue
    // A role being created has no running member to protect: its nodes init and start at once (one node at a time only
    // for `order: serial`; the executor lets each node go on by itself, see pipelineFrom), then health is awaited, so
    // members that are healthy only together (a quorum) can form.
    // The update policy governs changes to running nodes: the joiners of a scale out start canary first.
    const creating = g.existing.length === 0
    runService(g, 'init', false, false, undefined, creating)
    if (!creating) runService(g, 'start', true, true)
    else {
      runService(g, 'start', false, false, undefined, true)
      waitHealth(g, g.joining)
    }
  }
  for (const g of input.roles) {
    if (!g.restarting?.length) continue
    runService(g, 'start', true, true, g.restarting)
  }
  for (const g of input.roles) if (g.joining.length > 0 && g.existing.length > 0) runService(g, 'scale_out')
  // Leaving members act before anyone else is told (e.g. hand their data over), then the members that stay.
  for (const g of input.roles) if (g.leaving.length > 0) runService(g, 'pre_scale_in')
  for (const g of input.roles) if (g.leaving.length > 0 && g.existing.length + g.joining.length > 0) runService(g, 'scale_in')
  for (const g of [...input.roles].reverse()) {
    if (g.leaving.length === 0) continue
    runService(g, 'stop')
    runService(g, 'destroy')
    steps.push({kind: 'remove', title: `${g.role}: remove files and homes of ${g.leaving.length} leaving node${g.leaving.length === 1 ? '' : 's'}`, role: g.role, nodes: ids(g.leaving)})
  }
  if (input.finalize.puts.length + input.finalize.deletes.length > 0) {
    steps.push({kind: 'commit', title: 'registry: finish the operation (nodes active, leaving nodes and in-flight markers gone)', nodes: [], changes: input.finalize})
  }
  for (const g of input.roles) pushBatches('install', g, byId(g, g.installFinal), undefined, false, {files: 'final', reload: true}, false)

  const width = String(steps.length).length
  return steps.map((s, i) => ({id: `${String(i + 1).padStart(width, '0')}-${s.kind}${s.service ? `-${s.service}` : ''}${s.role ? `-${s.role}` : ''}${s.batch ? `-b${s.batch.index}` : ''}`, ...s}))
}
