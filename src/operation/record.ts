// The operation record in the registry, outside the cluster tree, so an interrupted operation can be resumed:
//
//   operations/<cluster>/current            {id, kind, started, holder, planDigest, planParts, requestDigest, baseModRevision}
//   operations/<cluster>/plan/<nnnn>        the recorded plan + what scripts need (JSON, split: etcd caps a request at 1.5 MiB)
//   operations/<cluster>/steps/<step>       a finished step (commit steps write it in their own registry transaction)
//   operations/<cluster>/steps/<step>/<node> a node finished (`done`) or was touched (`started`) by a step
//   operations/<cluster>/failure            why the operation stopped (step, node, exit code/signal/timeout, stderr tail)
//   operations/<cluster>/last               summary of the last operation {kind, result, step, finished}
//   operations/<cluster>/inventory          the inventory hosts (paths absolute), so later commands reach the hosts
//   operations/<cluster>/facts              what scripts did per node in operations that were superseded or abandoned
//                                           (NodeFacts), until one finishes: the next operation plans from them
//   operations/<cluster>/history|timings|logs  what each operation did (operation/history.ts)
//
// `current` is written last when an operation begins (its plan parts are complete before) and deleted when it ends.
import {canonicalJson, sha256} from '../plan/canonical.js'
import {secretForms} from '../plan/show.js'
import type {HostSpec} from '../inventory/types.js'
import type {ClusterState, NodeFacts, Operation, Plan} from '../plan/types.js'
import {agentsPrefix, defaultHolder, forgetHistory} from '../registry/index.js'
import type {ClusterSpec, EnvValue} from '../spec/types.js'
import type {Op, Store} from '../store/store.js'
import {EXIT, ShoalError} from '../errors.js'
import {factsOf, mergeFacts} from './facts.js'
import {beginRun, putSummary, readRun, type RunSummary} from './history.js'

/** Each plan part stays far below etcd's 1.5 MiB request limit. */
const PLAN_PART_CHARS = 512 * 1024

export function operationsPrefix(cluster: string): string {
  return `operations/${cluster}/`
}
const key = (cluster: string, rest: string): string => `${operationsPrefix(cluster)}${rest}`
export const currentKey = (cluster: string): string => key(cluster, 'current')
export const stepsPrefix = (cluster: string): string => key(cluster, 'steps/')
export const stepKey = (cluster: string, step: string): string => key(cluster, `steps/${step}`)
export const nodeStepKey = (cluster: string, step: string, node: string): string => key(cluster, `steps/${step}/${node}`)
export const failureKey = (cluster: string): string => key(cluster, 'failure')
export const lastKey = (cluster: string): string => key(cluster, 'last')
export const inventoryKey = (cluster: string): string => key(cluster, 'inventory')
export const factsKey = (cluster: string): string => key(cluster, 'facts')
/** metad's URL as the cluster's nodes reach it (a cluster with agents), recorded at create like the inventory. */
export const metadUrlKey = (cluster: string): string => key(cluster, 'metad')
const planPrefix = (cluster: string): string => key(cluster, 'plan/')

/** What executing a plan needs besides the plan: the specs (role scripts) and the env values scripts receive. */
export interface OperationData {
  plan: Plan
  /** The spec after the operation (undefined after destroy). */
  specAfter?: ClusterSpec
  /** The spec the cluster was registered with before (undefined at create): scripts of roles that left the spec. */
  specBefore?: ClusterSpec
  env: Record<string, EnvValue>
  /** The facts of earlier unfinished operations the plan was made from (carried on when this one is superseded too). */
  facts?: Record<string, NodeFacts>
  /** The templates registered before (undefined at create): what a rollback renders from. */
  templatesBefore?: Record<string, string>
  /** Values before the operation of the parameters it changes, for `configure` (`SHOAL_PREVIOUS_ENV_<NAME>`). */
  previousEnv?: Record<string, EnvValue>
  /** What the chain of unfinished operations this one belongs to started from (absent in records of older shoal). */
  chain?: OperationChain
}

/**
 * What stood before the first of a chain of unfinished operations, each superseding the one before (a rollback too),
 * carried on by each: what `shoal rollback` returns to, and which values members may still run with.
 */
export interface OperationChain {
  /** Nothing of the cluster was registered before the chain began (a create). */
  created: boolean
  spec?: ClusterSpec
  templates?: Record<string, string>
  env: Record<string, EnvValue>
  envSources: Record<string, string>
  /** The env each operation of the chain planned, oldest first (the last few). */
  targets: Record<string, EnvValue>[]
  /** Nodes the chain added: they leave on rollback, also where a commit already marked them active. */
  joined: string[]
}

const CHAIN_TARGETS_KEPT = 8

/** The chain a new operation belongs to: the one of the operation it supersedes, else one starting at `registered`. */
export function extendChain(chain: OperationChain | undefined, registered: ClusterState | undefined, plan: Plan): OperationChain {
  const joined = plan.nodes.filter((n) => n.change === 'create').map((n) => n.node_id)
  const target = plan.desired?.env ?? registered?.env ?? {}
  const start: OperationChain = chain ?? {
    created: registered === undefined,
    ...(registered?.spec ? {spec: registered.spec} : {}),
    ...(registered ? {templates: registered.templates} : {}),
    env: registered?.env ?? {},
    envSources: registered?.envSources ?? {},
    targets: [],
    joined: [],
  }
  return {...start, targets: [...start.targets, target].slice(-CHAIN_TARGETS_KEPT), joined: [...new Set([...start.joined, ...joined])]}
}

/** Values members may still run with, oldest first, besides the registered ones. */
export function chainEnvs(chain: OperationChain | undefined): Record<string, EnvValue>[] {
  return chain ? [chain.env, ...chain.targets] : []
}

export interface CurrentOperation {
  id: string
  kind: Operation['kind']
  /** `describeOperation`, e.g. `scale zk (add 2)`. */
  title: string
  started: string
  holder: string
  planDigest: string
  planParts: number
  /** Digest of the request (operation + spec + templates): the same command run again resumes instead of refusing. */
  requestDigest: string
  /** Mod revision of the cluster revision key the plan was made against. */
  baseModRevision: number
}

export interface FailureRecord {
  step: string
  title: string
  node?: string
  host?: string
  exitCode?: number | null
  signal?: string | null
  timedOut?: boolean
  /** Last stderr lines (secrets redacted). */
  stderr?: string
  message: string
  at: string
}

export interface LastOperation {
  id: string
  kind: Operation['kind']
  title: string
  result: 'ok' | 'failed'
  /** The step that failed. */
  step?: string
  message?: string
  started: string
  finished: string
}

export type NodeMark = 'started' | 'done'

/** Progress of an operation as recorded: finished steps, and per-step node marks. */
export interface Progress {
  steps: Set<string>
  nodes: Map<string, Map<string, NodeMark>>
}

/**
 * Identifies what a command asked for (operation, spec, templates, or a saved plan): the same request resumes its
 * operation. `create` and `apply` of one spec are one request (converge to that spec), digested as `create` was before
 * `apply` had its own kind, so an unfinished operation of either resumes under both commands.
 */
export function requestDigest(request: {operation: Operation; spec?: ClusterSpec; templates?: ReadonlyMap<string, string>; plan?: Plan; values?: Record<string, unknown>}): string {
  const {operation} = request
  return sha256(canonicalJson({
    operation: operation.kind === 'apply' && operation.follows === undefined ? {kind: 'create'} : operation,
    spec: request.spec ?? null,
    templates: request.templates ? Object.fromEntries(request.templates) : null,
    plan: request.plan ?? null,
    // Only when values were given, so the digest of a request without them is what it always was.
    ...(request.values ? {values: request.values} : {}),
  }))
}

function parse<T>(value: string, what: string): T {
  try {
    return JSON.parse(value) as T
  } catch {
    throw new ShoalError(`${what} in the registry is not valid JSON; inspect it (shoal status) and remove it by hand if it is garbage`, 'operation-record-invalid', EXIT.failure)
  }
}

export async function readCurrent(store: Store, cluster: string): Promise<CurrentOperation | undefined> {
  const kv = await store.get(currentKey(cluster))
  return kv ? parse<CurrentOperation>(kv.value, currentKey(cluster)) : undefined
}

export async function readLast(store: Store, cluster: string): Promise<LastOperation | undefined> {
  const kv = await store.get(lastKey(cluster))
  return kv ? parse<LastOperation>(kv.value, lastKey(cluster)) : undefined
}

export async function readFailure(store: Store, cluster: string): Promise<FailureRecord | undefined> {
  const kv = await store.get(failureKey(cluster))
  return kv ? parse<FailureRecord>(kv.value, failureKey(cluster)) : undefined
}

export async function readStoredInventory(store: Store, cluster: string): Promise<HostSpec[] | undefined> {
  const kv = await store.get(inventoryKey(cluster))
  return kv ? parse<HostSpec[]>(kv.value, inventoryKey(cluster)) : undefined
}

export async function readStoredMetadUrl(store: Store, cluster: string): Promise<string | undefined> {
  return (await store.get(metadUrlKey(cluster)))?.value
}

/** The recorded plan of the current operation, checked against its digest. */
export async function readOperationData(store: Store, cluster: string, current: CurrentOperation): Promise<OperationData> {
  const {kvs} = await store.range(planPrefix(cluster))
  const parts = kvs.sort((a, b) => (a.key < b.key ? -1 : 1)).map((kv) => kv.value)
  const text = parts.join('')
  if (parts.length !== current.planParts || sha256(text) !== current.planDigest) {
    throw new ShoalError(
      `the recorded plan of operation ${current.id} on ${cluster} is incomplete or altered (${parts.length} of ${current.planParts} parts, digest mismatch); ` +
        `it cannot be resumed safely. Inspect the cluster with shoal status; to drop the record: shoal resume ${cluster} --abandon`,
      'operation-record-invalid',
      EXIT.failure,
    )
  }
  return parse<OperationData>(text, `the plan of operation ${current.id}`)
}

export async function readProgress(store: Store, cluster: string): Promise<Progress> {
  const prefix = stepsPrefix(cluster)
  const {kvs} = await store.range(prefix)
  const progress: Progress = {steps: new Set(), nodes: new Map()}
  for (const kv of kvs) {
    const [step, node] = kv.key.slice(prefix.length).split('/')
    if (!step) continue
    if (node === undefined) progress.steps.add(step)
    else {
      const marks = progress.nodes.get(step) ?? new Map<string, NodeMark>()
      marks.set(node, kv.value === 'done' ? 'done' : 'started')
      progress.nodes.set(step, marks)
    }
  }
  return progress
}

/**
 * The recorded plan cut into parts of at most PLAN_PART_CHARS, never inside a secret: a sealed store seals each part
 * that holds one, and a secret cut in two would be held by neither.
 */
export function planParts(text: string, forms: readonly string[]): string[] {
  const parts: string[] = []
  let start = 0
  while (start < text.length) {
    let end = Math.min(start + PLAN_PART_CHARS, text.length)
    for (let moved = end < text.length; moved; ) {
      moved = false
      for (const form of forms) {
        const at = text.lastIndexOf(form, end - 1)
        if (at > start && at < end && at + form.length > end) {
          end = at
          moved = true
        }
      }
    }
    parts.push(text.slice(start, end))
    start = end
  }
  return parts
}

/**
 * Record a new operation: clear leftovers of an abandoned beginning, write the plan parts, then `current` — guarded so
 * two processes can never both begin one (the caller holds the cluster lock as well).
 */
export async function beginOperation(
  store: Store,
  data: OperationData,
  options: {id: string; title: string; requestDigest: string; baseModRevision: number; inventory?: HostSpec[]; metad?: string},
): Promise<CurrentOperation> {
  const cluster = data.plan.cluster
  const noCurrent = [{key: currentKey(cluster), target: 'mod' as const, equals: 0}]
  const unfinished = (): ShoalError => new ShoalError(`cluster ${cluster} has an unfinished operation; run: shoal resume ${cluster}`, 'operation-unfinished', EXIT.failure)
  const cleared = await store.txn(noCurrent, [
    {type: 'deletePrefix', prefix: planPrefix(cluster)},
    {type: 'deletePrefix', prefix: stepsPrefix(cluster)},
    {type: 'delete', key: failureKey(cluster)},
  ])
  if (!cleared.succeeded) throw unfinished()
  const text = JSON.stringify(data)
  const parts = planParts(text, secretForms(data.plan.secrets))
  for (const [i, part] of parts.entries()) {
    const written = await store.txn(noCurrent, [{type: 'put', key: `${planPrefix(cluster)}${String(i).padStart(4, '0')}`, value: part}])
    if (!written.succeeded) throw unfinished()
  }
  const current: CurrentOperation = {
    id: options.id,
    kind: data.plan.operation.kind,
    title: options.title,
    started: new Date().toISOString(),
    holder: defaultHolder(),
    planDigest: sha256(text),
    planParts: parts.length,
    requestDigest: options.requestDigest,
    baseModRevision: options.baseModRevision,
  }
  // The facts this plan was made from now live in its data.
  const ops: Op[] = [{type: 'put', key: currentKey(cluster), value: JSON.stringify(current)}, {type: 'delete', key: factsKey(cluster)}]
  if (options.inventory) ops.push({type: 'put', key: inventoryKey(cluster), value: JSON.stringify(options.inventory)})
  if (options.metad !== undefined) ops.push({type: 'put', key: metadUrlKey(cluster), value: options.metad})
  const begun = await store.txn(noCurrent, ops)
  if (!begun.succeeded) throw unfinished()
  await beginRun(store, cluster, runSummary(current, 'running'))
  return current
}

export function runSummary(current: CurrentOperation, result: RunSummary['result'], extra: Partial<RunSummary> = {}): RunSummary {
  return {id: current.id, kind: current.kind, title: current.title, started: current.started, result, ...extra}
}

/** Mark one node of a step (a plain write: the caller holds the lock). */
export async function markNode(store: Store, cluster: string, step: string, node: string, mark: NodeMark): Promise<void> {
  await store.txn([], [{type: 'put', key: nodeStepKey(cluster, step, node), value: mark}])
}

/**
 * Node marks of one operation, written together: marks asked for while a write is in flight go into the next
 * transaction, so 50 nodes finishing at once cost a few registry writes instead of 50 (each one a rewrite of the whole
 * state file on the embedded store). A mark's promise settles only once its write has landed, so a node is still never
 * treated as done before the registry says so.
 */
export class NodeMarks {
  private readonly pending = new Map<string, {value: string; settle: Array<{resolve: () => void; reject: (error: unknown) => void}>}>()
  private writing = false
  private inflight: Promise<void> | undefined
  /** The first write that failed: no mark is written after it (a deferred mark in it may be lost), and every later call fails with it. */
  private failure: {error: unknown} | undefined

  constructor(private readonly store: Store, private readonly cluster: string) {}

  /** Mark a node of a step; `extra` puts (e.g. the node's script output) ride in the same transaction. */
  mark(step: string, node: string, mark: NodeMark, extra: Record<string, string> = {}): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error)
    return new Promise((resolve, reject) => {
      // A later value of the same key replaces an unwritten earlier one (one key may appear once in a transaction).
      for (const [key, value] of Object.entries(extra)) {
        const entry = this.pending.get(key) ?? {value, settle: []}
        entry.value = value
        this.pending.set(key, entry)
      }
      const key = nodeStepKey(this.cluster, step, node)
      const entry = this.pending.get(key) ?? {value: mark, settle: []}
      entry.value = mark
      entry.settle.push({resolve, reject})
      // Re-inserted last, so the mark is never written in an earlier transaction than its extras.
      this.pending.delete(key)
      this.pending.set(key, entry)
      this.flush()
    })
  }

  /**
   * Write a mark no caller waits for: it goes in the next transaction, as `mark()`'s would, but the node goes on at once
   * (a pipelined node's `done` of one step and its `started` of the next share a group commit when a write is in
   * flight, the common case at many nodes). It is written now, not held for a later mark: a node that waits for its
   * next step to begin must not leave a finished script unrecorded meanwhile (a kill then would run it again).
   * `landed()` says when it has been written.
   */
  defer(step: string, node: string, mark: NodeMark, extra: Record<string, string> = {}): void {
    for (const [key, value] of Object.entries({...extra, [nodeStepKey(this.cluster, step, node)]: mark})) {
      const entry = this.pending.get(key) ?? {value, settle: []}
      entry.value = value
      this.pending.delete(key)
      this.pending.set(key, entry)
    }
    this.flush()
  }

  /** Settles once every mark asked for so far (deferred ones included) has been written; rejects if one was not. */
  async landed(): Promise<void> {
    if (this.failure) throw this.failure.error
    const last = [...this.pending.values()].at(-1)
    // Batches are taken in the order marks were asked for: once the last one landed, all before it did.
    if (last) return new Promise((resolve, reject) => {
      last.settle.push({resolve, reject})
      this.flush()
    })
    await this.inflight
    // The write awaited may have failed (its own marks were told); so may one of deferred marks only.
    const failed = this.failure as {error: unknown} | undefined
    if (failed) throw failed.error
  }

  private flush(): void {
    if (this.failure) {
      // After a failed write nothing more is written: a mark must never land after an earlier one that was lost.
      for (const {settle} of this.pending.values()) settle.forEach((s) => s.reject(this.failure!.error))
      this.pending.clear()
      return
    }
    if (this.writing || this.pending.size === 0) return
    const batch = [...this.pending].slice(0, Math.max(1, Math.min(this.store.maxOpsPerTxn, 1000)))
    for (const [key] of batch) this.pending.delete(key)
    this.writing = true
    const write = this.store.txn([], batch.map(([key, {value}]) => ({type: 'put' as const, key, value})))
    this.inflight = write.then(() => undefined)
    this.inflight.catch(() => undefined)
    write.then(
      () => batch.forEach(([, {settle}]) => settle.forEach((s) => s.resolve())),
      (error: unknown) => {
        this.failure ??= {error}
        batch.forEach(([, {settle}]) => settle.forEach((s) => s.reject(error)))
      },
    ).finally(() => {
      this.writing = false
      this.flush()
    })
  }
}

export async function markStep(store: Store, cluster: string, step: string): Promise<void> {
  await store.txn([], [{type: 'put', key: stepKey(cluster, step), value: stepRecordValue()}])
}

export function stepRecordValue(): string {
  return JSON.stringify({done: true, at: new Date().toISOString()})
}

/** The operation stopped: record why; `current` stays so `shoal resume` can continue it. */
export async function recordFailure(store: Store, cluster: string, current: CurrentOperation, failure: FailureRecord): Promise<void> {
  const last: LastOperation = {
    id: current.id, kind: current.kind, title: current.title, result: 'failed', step: failure.step, message: failure.message, started: current.started, finished: failure.at,
  }
  await store.txn([], [
    {type: 'put', key: failureKey(cluster), value: JSON.stringify(failure)},
    {type: 'put', key: lastKey(cluster), value: JSON.stringify(last)},
    putSummary(cluster, runSummary(current, 'failed', {finished: failure.at})),
  ])
}

/**
 * The operation ended: drop its plan and progress and the facts it was planned from, keep the summary (after a destroy
 * nothing of the cluster stays). A failed action ends too (`result: 'failed'`): actions never block the cluster.
 */
export async function finishOperation(store: Store, cluster: string, current: CurrentOperation, destroyed: boolean, failure?: FailureRecord): Promise<LastOperation> {
  const finished = failure?.at ?? new Date().toISOString()
  const last: LastOperation = {
    id: current.id, kind: current.kind, title: current.title, result: failure ? 'failed' : 'ok', ...(failure ? {step: failure.step, message: failure.message} : {}), started: current.started, finished,
  }
  const ops: Op[] = destroyed
    // The agents' reports go too: the agents stopped when their nodes were removed.
    ? [{type: 'deletePrefix', prefix: operationsPrefix(cluster)}, {type: 'deletePrefix', prefix: agentsPrefix(cluster)}]
    : [
        {type: 'delete', key: currentKey(cluster)},
        {type: 'deletePrefix', prefix: planPrefix(cluster)},
        {type: 'deletePrefix', prefix: stepsPrefix(cluster)},
        {type: 'delete', key: failureKey(cluster)},
        {type: 'put', key: lastKey(cluster), value: JSON.stringify(last)},
        ...(failure ? [] : [{type: 'delete' as const, key: factsKey(cluster)}]),
        putSummary(cluster, runSummary(current, failure ? 'failed' : 'ok', {finished})),
      ]
  await store.txn([], ops)
  // The plan record (with the values the operation replaced) is gone now: let the store forget it too.
  await forgetHistory(store)
  return last
}

/**
 * What scripts did per node in the unfinished operation (its plan and progress) and in the ones it superseded, or
 * those left by an abandoned one; undefined when nothing is known. A record that cannot be read yields no facts.
 */
export async function standingFacts(store: Store, cluster: string, current: CurrentOperation | undefined): Promise<{facts?: Record<string, NodeFacts>; data?: OperationData}> {
  const kept = await store.get(factsKey(cluster))
  const older = kept ? parse<Record<string, NodeFacts>>(kept.value, factsKey(cluster)) : undefined
  if (!current) return older ? {facts: older} : {}
  let data: OperationData
  try {
    data = await readOperationData(store, cluster, current)
  } catch {
    return older ? {facts: older} : {}
  }
  return {facts: mergeFacts(mergeFacts(older, data.facts ?? {}), factsOf(data.plan, await readProgress(store, cluster))), data}
}

/**
 * End an unfinished operation without running the rest of it, keeping what its scripts did as facts for the next
 * operation: `superseded` when another one replaces it (fix forward, rollback, destroy), `abandoned` for `resume --abandon`.
 */
export async function closeUnfinished(store: Store, cluster: string, current: CurrentOperation, facts: Record<string, NodeFacts> | undefined, result: 'superseded' | 'abandoned', by?: string): Promise<void> {
  const old = await readRun(store, cluster, current.id)
  await store.txn([], [
    {type: 'delete', key: currentKey(cluster)},
    {type: 'deletePrefix', prefix: planPrefix(cluster)},
    {type: 'deletePrefix', prefix: stepsPrefix(cluster)},
    {type: 'delete', key: failureKey(cluster)},
    ...(facts ? [{type: 'put' as const, key: factsKey(cluster), value: JSON.stringify(facts)}] : []),
    putSummary(cluster, {...(old ?? runSummary(current, result)), result, finished: old?.finished ?? new Date().toISOString(), ...(by ? {supersededBy: by} : {})}),
  ])
  await forgetHistory(store)
}

/** Forget an unfinished operation without running the rest of it (`shoal resume --abandon`); what it did stays known. */
export async function abandonOperation(store: Store, cluster: string): Promise<void> {
  const current = await readCurrent(store, cluster)
  if (!current) return
  const {facts} = await standingFacts(store, cluster, current)
  await closeUnfinished(store, cluster, current, facts, 'abandoned')
}

/** Why a new operation cannot begin while one is unfinished, with what to do. */
export async function unfinishedError(store: Store, cluster: string, current: CurrentOperation): Promise<ShoalError> {
  const failure = await readFailure(store, cluster)
  const where = failure ? `; it stopped at step ${failure.step}${failure.node ? ` on ${failure.node}` : ''}` : ''
  return new ShoalError(
    `cluster ${cluster} has an unfinished operation "${current.title}" (id ${current.id}, started ${current.started} by ${current.holder})${where}. ` +
      `${waysOut(cluster)}`,
    'operation-unfinished',
    EXIT.failure,
  )
}

/** The ways out of an unfinished operation, named in every error about one. */
export function waysOut(cluster: string): string {
  return (
    `Fix the cause and run the same command again (create, apply, scale or destroy plan from what stands and keep finished work), ` +
    `continue the recorded plan with: shoal resume ${cluster}, or undo it with: shoal rollback ${cluster} (its output: shoal logs ${cluster})`
  )
}

/** Refuse registry-only changes while an operation is unfinished (they would change the cluster under it). */
export async function assertNoUnfinished(store: Store, cluster: string): Promise<void> {
  const current = await readCurrent(store, cluster)
  if (current) throw await unfinishedError(store, cluster, current)
}
