// The executor: walks a recorded plan's steps in order (commit, install, run, health, remove) and records progress in
// the registry, so an interrupted operation continues where it stopped and finished work is never done twice.
import {posix} from 'node:path'
import type {Step} from '../plan/steps.js'
import type {PlannedNode, RenderedFile} from '../plan/types.js'
import {clusterRevisionKey, ensureNodeTokenKey, NODE_TOKEN_FILE, nodeToken, readLock, type ClusterLock} from '../registry/index.js'
import {DEFAULTS, type RoleSpec, type ServiceSpec} from '../spec/types.js'
import type {Store} from '../store/store.js'
import {checkCommand, installFiles, restoreFile, type InstallFileOptions, type InstallResult} from '../transport/install.js'
import {Limiter} from '../transport/limiter.js'
import type {ExecResult, Transport, TransportHost} from '../transport/transport.js'
import {shellQuote} from '../util/shell.js'
import {parseDuration} from '../util/units.js'
import {EXIT, ShoalError} from '../errors.js'
import {readAgentReports} from '../registry/agent-report.js'
import {agentFiles, startAgentCommand, stopAgentCommand, waitForAgents} from './agents.js'
import {describeProbe, healthTiming, waitHealthy} from './health.js'
import type {HostLookup} from './hosts.js'
import {configureEnv, MEMBERSHIP_FILE, membershipOf, scriptEnv} from './membership.js'
import {LogBuffer, logKey, timingOp, type NodeLog, type StepTiming} from '../operation/history.js'
import {NodeMarks, readProgress, stepKey, stepRecordValue, type CurrentOperation, type FailureRecord, type NodeMark, type OperationData} from '../operation/record.js'
import {redact, type Reporter} from './progress.js'
import {commitStep} from './register.js'

export interface ExecuteContext {
  store: Store
  transport: Transport
  hosts: HostLookup
  /** The cluster lock, held for the whole run; undefined for a read-only action (no lock, no progress records). */
  lock: ClusterLock | undefined
  current: CurrentOperation
  data: OperationData
  reporter: Reporter
  /** metad's URL as the nodes reach it: a cluster with `agent: true` gets its files from agents that ask it. */
  metad?: string
  /** How long an install step waits for the agents to report their files applied (default 2 min). */
  agentWaitMs?: number
  /**
   * Nodes of one step worked on at once. Default 256: a batch is already sized by the update policy, and a lower cap
   * splits one batch into waves (with 32, a 1 s script on 50 nodes took 2 s); the transport bounds handshakes itself.
   */
  parallel?: number
}

export interface ExecuteResult {
  /** Steps run now (not counting those finished in an earlier run). */
  ran: number
  skipped: number
}

/** A step failed: the operation stops there; the record says where and why. */
export class StepFailed extends ShoalError {
  constructor(readonly failure: FailureRecord) {
    super(failure.message, 'step-failed', EXIT.failure)
    this.name = 'StepFailed'
  }
}

const INSTALL_TIMEOUT_MS = 60_000
const AGENT_WAIT_MS = 120_000
const NODE_HOME_ROOT = DEFAULTS.nodeHomeRoot

/**
 * The hosts the plan's steps reach over the transport, in the order they are first needed: the nodes of its scripts,
 * health checks, removals and installs (with agents, only the new nodes' installs: each gets its agent started; the
 * other installs wait for reports). Unknown hosts are left for the step to report.
 */
export function hostsReached(data: OperationData, hosts: HostLookup): TransportHost[] {
  const agents = (data.specAfter ?? data.specBefore)?.agent === true
  const byId = new Map(data.plan.nodes.map((n) => [n.node_id, n]))
  const out = new Map<string, TransportHost>()
  for (const step of data.plan.steps) {
    if (step.kind === 'commit' || (step.kind === 'install' && agents && step.reload)) continue
    for (const id of step.nodes) {
      const node = byId.get(id)
      if (!node) continue
      try {
        const host = hosts(node)
        out.set(`${host.user}@${host.address}:${host.port}`, host)
      } catch {
        // the step names the unknown host
      }
    }
  }
  return [...out.values()]
}

export async function executePlan(ctx: ExecuteContext): Promise<ExecuteResult> {
  const {plan} = ctx.data
  const {lock} = ctx
  const progress = lock ? await readProgress(ctx.store, plan.cluster) : {steps: new Set<string>(), nodes: new Map<string, Map<string, NodeMark>>()}
  const runner = new StepRunner(ctx)
  let modRevision = lock ? await guardRevision(ctx, progress.steps) : 0
  const timing = (step: Step, started: string, result: StepTiming['result']): ReturnType<typeof timingOp> =>
    timingOp(plan.cluster, ctx.current.id, {step: step.id, title: step.title, started, result, ...(result === 'running' ? {} : {finished: new Date().toISOString()})})
  let ran = 0
  let skipped = 0
  const agents = (ctx.data.specAfter ?? ctx.data.specBefore)?.agent === true
  for (let index = 0; index < plan.steps.length; index++) {
    const step = plan.steps[index]!
    if (progress.steps.has(step.id)) {
      ctx.reporter.skipped(step, index, plan.steps.length)
      skipped++
      continue
    }
    const pipeline = pipelineFrom(plan.steps, index, progress.steps, agents)
    if (pipeline.length > 1) {
      await runPipeline(ctx, runner, pipeline, index, progress.nodes, timing)
      ran += pipeline.length
      index += pipeline.length - 1
      continue
    }
    if (lock) await assertLockHeld(ctx, lock)
    const marks = progress.nodes.get(step.id) ?? new Map<string, NodeMark>()
    ctx.reporter.step(step, index, plan.steps.length, marks.size > 0)
    const started = new Date().toISOString()
    await ctx.store.txn([], [timing(step, started, 'running')])
    try {
      if (step.kind === 'commit') {
        if (!lock) throw new ShoalError('a registry commit needs the cluster lock', 'lock-required')
        // The step's progress record (and its timing) is part of the commit itself: applied and recorded, or neither.
        const done = timing(step, started, 'ok') as {key: string; value: string}
        const result = await commitStep(ctx.store, plan, step, modRevision, lock, {[stepKey(plan.cluster, step.id)]: stepRecordValue(), [done.key]: done.value})
        modRevision = result.modRevision
      } else {
        await runner.run(step, marks, modRevision)
        await ctx.store.txn([], [...(lock ? [{type: 'put' as const, key: stepKey(plan.cluster, step.id), value: stepRecordValue()}] : []), timing(step, started, 'ok')])
      }
    } catch (error) {
      await ctx.store.txn([], [timing(step, started, 'failed')]).catch(() => undefined)
      if (error instanceof StepFailed) throw error
      throw new StepFailed({step: step.id, title: step.title, message: `step ${step.id} (${step.title}) failed: ${(error as Error).message}`, at: new Date().toISOString()})
    }
    ran++
  }
  return {ran, skipped}
}

/**
 * The steps from `index` on that run node by node: the same nodes of one role, each going on to its next step as soon
 * as its own part of the previous one is done (its `init` needs only its own files, its `start` only its own `init`).
 * That is the walk of a role's new nodes — place files, init, start — when nothing orders them across nodes: no
 * batches (canaries, max_in_flight, `order: serial`), no reloads of running services, no agents to wait for. A node's
 * start may so begin while another node still inits; the health wait after them begins once every node has started.
 */
export function pipelineFrom(steps: readonly Step[], index: number, done: ReadonlySet<string>, agents: boolean): Step[] {
  const first = steps[index]
  if (!first || !nodeByNode(first, agents)) return []
  const nodes = first.nodes.join('\u0000')
  const out = [first]
  for (const step of steps.slice(index + 1)) {
    if (done.has(step.id) || !nodeByNode(step, agents) || step.role !== first.role || step.nodes.join('\u0000') !== nodes) break
    out.push(step)
  }
  return out
}

function nodeByNode(step: Step, agents: boolean): boolean {
  if (step.batch) return false
  if (step.kind === 'install') return !step.reload && !agents
  // Health stays a barrier: a start_period counts from when every node has started, as documented.
  return step.kind === 'run' && step.action === undefined && (step.service === 'init' || step.service === 'start')
}

/**
 * Runs a pipeline (see pipelineFrom). Each step begins (lock check, progress line, timing) when its first node reaches
 * it and is recorded done, in step order, when its last node is done. After a failure no node begins another step;
 * those running finish; the failure of the earliest step (first node in order) is reported, as a single step reports.
 */
async function runPipeline(
  ctx: ExecuteContext,
  runner: StepRunner,
  steps: Step[],
  first: number,
  marksByStep: ReadonlyMap<string, Map<string, NodeMark>>,
  timing: (step: Step, started: string, result: StepTiming['result']) => ReturnType<typeof timingOp>,
): Promise<void> {
  const {plan} = ctx.data
  const {lock} = ctx
  const marks = steps.map((step) => marksByStep.get(step.id) ?? new Map<string, NodeMark>())
  const began: Array<{started: string; entry: Promise<void>} | undefined> = steps.map(() => undefined)
  const left = steps.map((step) => new Set(step.nodes))
  const failures: Array<{step: number; node: number; error: unknown}> = []
  let recorded: Promise<unknown> = Promise.resolve()
  const begin = (k: number): Promise<void> => {
    const step = steps[k]!
    began[k] ??= {
      started: new Date().toISOString(),
      entry: (async () => {
        if (lock) await assertLockHeld(ctx, lock)
        ctx.reporter.step(step, first + k, plan.steps.length, marks[k]!.size > 0)
        await ctx.store.txn([], [timing(step, began[k]!.started, 'running')])
      })(),
    }
    return began[k].entry
  }
  await Promise.all(steps[0]!.nodes.map(async (id, node) => {
    for (const [k, step] of steps.entries()) {
      if (failures.length > 0 || runner.failing) return
      try {
        await begin(k)
        if (failures.length > 0 || runner.failing) return
        // Its done mark rides with its next step's first mark (one group commit instead of two in a row).
        await runner.runNode(step, id, marks[k]!.get(id), k < steps.length - 1)
      } catch (error) {
        failures.push({step: k, node, error})
        return
      }
      left[k]!.delete(id)
      if (left[k]!.size === 0) {
        const {started} = began[k]!
        // A record that cannot be written stops the pipeline like a failed node (and never goes unhandled).
        recorded = recorded
          .then(() => ctx.store.txn([], [...(lock ? [{type: 'put' as const, key: stepKey(plan.cluster, step.id), value: stepRecordValue()}] : []), timing(step, started, 'ok')]))
          .catch((error: unknown) => void failures.push({step: k, node: -1, error}))
      }
    }
  }))
  // A node that stopped after a step (a failure elsewhere) leaves that step's done mark queued: written here, unless
  // the lock was lost (then nothing more is written). A mark that could not be written is reported after any failure
  // of a node's own (it sorts last), as the last step's.
  const lostLock = (f: {error: unknown}): boolean => f.error instanceof ShoalError && f.error.code === 'lock-lost'
  if (!failures.some(lostLock)) await runner.marksLanded().catch((error: unknown) => void failures.push({step: steps.length - 1, node: Number.MAX_SAFE_INTEGER, error}))
  await recorded
  const failure = failures.sort((a, b) => a.step - b.step || a.node - b.node)[0]
  if (!failure) return
  // A lost lock is not the step's failure: someone else may run the operation now, and nothing more is written.
  const lost = failures.find(lostLock)
  if (lost) throw lost.error
  for (const [k, step] of steps.entries()) {
    if (began[k] && left[k]!.size > 0) await ctx.store.txn([], [timing(step, began[k].started, 'failed')]).catch(() => undefined)
  }
  const {error} = failure
  const step = steps[failure.step]!
  if (error instanceof StepFailed) throw error
  throw new StepFailed({step: step.id, title: step.title, message: `step ${step.id} (${step.title}) failed: ${(error as Error).message}`, at: new Date().toISOString()})
}

/** A process that stalled past its lease has lost the lock (someone may be resuming): it must not run another step. */
async function assertLockHeld(ctx: ExecuteContext, lock: ClusterLock): Promise<void> {
  const held = await readLock(ctx.store, lock.cluster)
  if (held?.id !== lock.info.id) {
    throw new ShoalError(
      `lost the lock of cluster ${lock.cluster} (its lease expired${held ? `; now held by ${held.holder} for "${held.operation}"` : ''}); stopping before the next step`,
      'lock-lost',
      EXIT.failure,
    )
  }
}

/**
 * The mod revision the next commit is guarded by: the plan's base until a commit of this operation landed; after
 * that, the revision key must still hold the value this operation wrote (otherwise someone changed the cluster).
 */
async function guardRevision(ctx: ExecuteContext, done: Set<string>): Promise<number> {
  const {plan} = ctx.data
  const commits = plan.steps.filter((s) => s.kind === 'commit')
  const lastDone = [...commits].reverse().find((s) => done.has(s.id))
  if (!lastDone) return ctx.current.baseModRevision
  const revisionKey = clusterRevisionKey(plan.cluster)
  const kv = await ctx.store.get(revisionKey)
  if (!kv && lastDone.changes?.deletes.includes(revisionKey)) return 0
  if (kv && kv.value === String(plan.revision)) return kv.modRevision
  throw new ShoalError(
    `cluster ${plan.cluster} changed since operation ${ctx.current.id} committed step ${lastDone.id} (${revisionKey} is ${kv ? `revision ${kv.value}` : 'gone'}, expected revision ${plan.revision}); ` +
      `the operation cannot continue safely: inspect it with shoal status ${plan.cluster}`,
    'operation-stale',
    EXIT.failure,
  )
}

/** Runs the non-registry steps on the nodes' hosts. */
class StepRunner {
  private readonly nodes: Map<string, PlannedNode>
  private readonly membership: string
  private readonly prepared = new Set<string>()
  private readonly limiter: Limiter
  private readonly marks: NodeMarks
  /** Output of the script (or reloads) running per step and node, kept in the registry when the node is done there. */
  private readonly logs = new Map<string, LogBuffer>()
  private tokenKey: Promise<string> | undefined
  private failingNode = false

  constructor(private readonly ctx: ExecuteContext) {
    this.nodes = new Map(ctx.data.plan.nodes.map((n) => [n.node_id, n]))
    this.membership = `${JSON.stringify(membershipOf(ctx.data.plan), null, 2)}\n`
    this.limiter = new Limiter(ctx.parallel ?? 256)
    this.marks = new NodeMarks(ctx.store, ctx.data.plan.cluster)
  }

  async run(step: Step, marks: Map<string, NodeMark>, revision: number): Promise<void> {
    if (step.kind === 'install' && this.agents()) return this.agentInstall(step, marks, revision)
    const results = await Promise.allSettled(step.nodes.map((id) => this.runNode(step, id, marks.get(id))))
    // Every node of the step has finished (none is abandoned mid-script); the first failure in node order is reported.
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
  }

  /**
   * One node's part of a step that is not an agents' install (those wait for every node's agent at once). With
   * `goesOn` (the node's next step follows at once, in a pipeline) its `done` mark is not waited for: it is written
   * with the node's next mark, or by `marksLanded()`.
   */
  runNode(step: Step, id: string, mark: NodeMark | undefined, goesOn = false): Promise<void> {
    if (step.kind === 'install' && this.agents()) return Promise.reject(new Error(`internal: step ${step.id} waits for agents, not node by node`))
    const work = {install: this.install, run: this.script, health: this.health, remove: this.remove}[step.kind as 'install' | 'run' | 'health' | 'remove']
    return this.limiter.run(() => work.call(this, step, this.node(id), mark, goesOn))
  }

  /** A node's part of a step has failed (its failure may still be on its way to the caller). */
  get failing(): boolean {
    return this.failingNode
  }

  /** Every node mark asked for, deferred ones included, has been written. */
  marksLanded(): Promise<void> {
    return this.marks.landed()
  }

  /** Whether the cluster's nodes get their files from their agents (`agent: true`). */
  private agents(): boolean {
    return (this.ctx.data.specAfter ?? this.ctx.data.specBefore)?.agent === true
  }

  /**
   * An install step of a cluster with agents: nothing is pushed. New nodes get their home files, the agent bundle and
   * a started agent (its first pass applies the registry commit); then every node's agent must report the step's
   * files applied at the last commit's revision, within the wait.
   */
  private async agentInstall(step: Step, marks: Map<string, NodeMark>, revision: number): Promise<void> {
    const metad = this.ctx.metad
    const cluster = this.ctx.data.plan.cluster
    if (metad === undefined) throw new ShoalError(`cluster ${cluster} runs agents (agent: true) but no metad URL is recorded with it; give --metad URL (metad as its nodes reach it)`, 'metad-required', EXIT.usage)
    const todo = step.nodes.filter((id) => marks.get(id) !== 'done').map((id) => this.node(id))
    // New nodes get their agent; so does any other node of the step with no live report (its agent died with its
    // supervisor, the host restarted without systemd, or the node was registered with --registry-only).
    const reports = step.reload ? await readAgentReports(this.ctx.store, cluster) : undefined
    const starting = reports ? todo.filter((node) => !reports.has(node.node_id)) : todo
    for (const node of reports ? starting : []) this.ctx.reporter.note(`${node.node_id}: no live report from its agent; starting it`)
    if (starting.length > 0) {
      const started = await Promise.allSettled(starting.map((node) => this.limiter.run(() => this.startAgent(step, node, metad, revision))))
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed) throw failed.reason
    }
    const expected = todo.map((node) => ({node: node.node_id, files: step.files === 'final' ? node.files : (node.interim ?? node.files)}))
    await waitForAgents(this.ctx.store, cluster, revision, expected, {timeoutMs: this.ctx.agentWaitMs ?? AGENT_WAIT_MS})
    // Marked together, so they go in one transaction: one after another they were 50 durable writes of the embedded
    // store (5 s of a 50-node scale-out here, after the agents had all reported).
    await Promise.all(todo.map((node) => this.done(step, node, 'done')))
  }

  private async startAgent(step: Step, node: PlannedNode, metad: string, revision: number): Promise<void> {
    const cluster = this.ctx.data.plan.cluster
    const host = this.ctx.hosts(node)
    assertHome(cluster, node)
    try {
      await installFiles(this.ctx.transport, host, [...(await this.nodeFiles(node)), ...agentFiles(metad, node)], INSTALL_TIMEOUT_MS)
    } catch (error) {
      throw await this.fail(step, node, host, `placing the agent: ${(error as Error).message}`)
    }
    this.prepared.add(node.node_id)
    const result = await this.ctx.transport.exec(host, startAgentCommand(cluster, node, metad, revision), {timeoutMs: INSTALL_TIMEOUT_MS})
    if (result.exitCode !== 0) throw await this.fail(step, node, host, result.exitCode === 3 ? 'starting the agent: Node.js 20 or later is needed on the host' : `starting the agent (its first pass, asking metad at ${metad})`, result)
  }

  private node(id: string): PlannedNode {
    const node = this.nodes.get(id)
    if (!node) throw new ShoalError(`the plan lists node ${id} in a step but not among its nodes; the recorded plan is inconsistent`, 'operation-record-invalid')
    return node
  }

  private role(name: string | undefined): RoleSpec {
    const role = name === undefined ? undefined : (this.ctx.data.specAfter?.roles[name] ?? this.ctx.data.specBefore?.roles[name])
    if (!role) throw new ShoalError(`the recorded operation has no spec for role ${String(name)}`, 'operation-record-invalid')
    return role
  }

  /** SHOAL_* values of the operation, plus SHOAL_STEP: the step running (as `shoal logs --step` names it). */
  private env(node: PlannedNode, step: Step): Record<string, string> {
    const env = {...scriptEnv(this.ctx.data.plan, this.ctx.data.env, node), SHOAL_STEP: step.id}
    if (step.service !== 'configure') return env
    const {plan, previousEnv} = this.ctx.data
    return {...env, ...configureEnv((plan.envChanges ?? []).map((c) => c.name), previousEnv ?? {})}
  }

  private output(step: Step, node: PlannedNode): {onStdoutLine: (line: string) => void; onStderrLine: (line: string) => void} {
    const secrets = this.ctx.data.plan.secrets
    const key = `${step.id}\u0000${node.node_id}`
    let log = this.logs.get(key)
    if (!log) this.logs.set(key, (log = new LogBuffer()))
    const buffer = log
    const line = (stream: 'stdout' | 'stderr') => (text: string): void => {
      const clean = redact(text, secrets)
      buffer.add(stream, clean)
      this.ctx.reporter.output(node.node_id, stream, clean)
    }
    return {onStdoutLine: line('stdout'), onStderrLine: line('stderr')}
  }

  /** The node's log of a step as registry puts (none when it printed nothing and ended well). */
  private logEntry(step: Step, node: PlannedNode, exit?: NodeLog['exit']): Record<string, string> {
    const key = `${step.id}\u0000${node.node_id}`
    const log = this.logs.get(key)
    this.logs.delete(key)
    // A script that printed nothing and ended well leaves no entry: 50 silent nodes would add 50 keys per step.
    if (!log?.size && (!exit || (exit.exitCode === 0 && !exit.signal && !exit.timedOut))) return {}
    return {[logKey(this.ctx.data.plan.cluster, this.ctx.current.id, step.id, node.node_id)]: JSON.stringify((log ?? new LogBuffer()).entry(step.id, node.node_id, exit))}
  }

  /** Mark a node of a step (with its log); a read-only action records only the log. `defer`: see runNode's `goesOn`. */
  private async done(step: Step, node: PlannedNode, mark: NodeMark, exit?: NodeLog['exit'], defer = false): Promise<void> {
    const log = mark === 'done' ? this.logEntry(step, node, exit) : {}
    if (this.ctx.lock && defer) this.marks.defer(step.id, node.node_id, mark, log)
    else if (this.ctx.lock) await this.marks.mark(step.id, node.node_id, mark, log)
    else if (Object.keys(log).length) await this.ctx.store.txn([], Object.entries(log).map(([key, value]) => ({type: 'put' as const, key, value})))
  }

  /** The node home exists and holds this operation's membership file and the node's metad token (once per node and run). */
  private async prepare(node: PlannedNode, host: TransportHost): Promise<void> {
    if (this.prepared.has(node.node_id)) return
    assertHome(this.ctx.data.plan.cluster, node)
    await installFiles(this.ctx.transport, host, await this.nodeFiles(node), INSTALL_TIMEOUT_MS)
    this.prepared.add(node.node_id)
  }

  /** Files every node home holds besides the rendered ones; nothing once this run placed them. */
  private async nodeFiles(node: PlannedNode): Promise<InstallFileOptions[]> {
    if (this.prepared.has(node.node_id)) return []
    const cluster = this.ctx.data.plan.cluster
    this.tokenKey ??= ensureNodeTokenKey(this.ctx.store, cluster)
    const token = {path: `${node.home}/${NODE_TOKEN_FILE}`, content: `${nodeToken(await this.tokenKey, cluster, node.node_id)}\n`, mode: '0600'}
    // A read-only action runs beside other operations (no lock): the membership file is theirs, not its own to replace.
    if (!this.ctx.lock) return [token]
    return [{path: `${node.home}/${MEMBERSHIP_FILE}`, content: this.membership, mode: '0644'}, token]
  }

  private async fail(step: Step, node: PlannedNode, host: TransportHost, what: string, result?: ExecResult): Promise<StepFailed> {
    // Known from here on, before its log is written: a pipelined node must not begin its next step meanwhile.
    this.failingNode = true
    const exit = result ? {exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut} : {exitCode: null}
    const log = this.logEntry(step, node, exit)
    if (Object.keys(log).length) await this.ctx.store.txn([], Object.entries(log).map(([key, value]) => ({type: 'put' as const, key, value}))).catch(() => undefined)
    return this.failure(step, node, host, what, result)
  }

  private failure(step: Step, node: PlannedNode, host: TransportHost, what: string, result?: ExecResult): StepFailed {
    const secrets = this.ctx.data.plan.secrets
    const stderr = result ? redact((result.stderr ?? '').trim().split('\n').slice(-10).join('\n'), secrets) : undefined
    const how = result ? (result.timedOut ? 'timed out (the remote process group was killed)' : result.signal ? `was killed by ${result.signal}` : `exited ${String(result.exitCode)}`) : ''
    const tail = stderr ? `; last stderr lines:\n${stderr.split('\n').map((l) => `    ${l}`).join('\n')}` : ''
    return new StepFailed({
      step: step.id,
      title: step.title,
      node: node.node_id,
      host: host.name,
      ...(result ? {exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut} : {}),
      ...(stderr ? {stderr} : {}),
      message: `step ${step.id} (${step.title}) failed on ${node.node_id} (host ${host.name}): ${what}${how ? ` ${how}` : ''}${tail}`,
      at: new Date().toISOString(),
    })
  }

  private async install(step: Step, node: PlannedNode, mark: NodeMark | undefined, goesOn: boolean): Promise<void> {
    if (mark === 'done') return
    const {transport} = this.ctx
    const host = this.ctx.hosts(node)
    // A node interrupted mid-install may have new files whose reload never ran: reload them all on the retry.
    const retry = mark === 'started'
    if (step.reload) await this.done(step, node, 'started')
    assertHome(this.ctx.data.plan.cluster, node)
    const files = step.files === 'final' ? node.files : (node.interim ?? node.files)
    // The node's own files (once per node and run) and its rendered files go in one command: each command costs a session.
    const membership = await this.nodeFiles(node)
    let results: InstallResult[]
    try {
      results = await installFiles(transport, host, [
        ...membership,
        ...files.map((file) => ({
          path: file.path,
          content: file.content,
          mode: file.mode,
          ...(file.owner !== undefined ? {owner: file.owner} : {}),
          ...(file.check !== undefined ? {check: checkCommand(file.check)} : {}),
        })),
      ], INSTALL_TIMEOUT_MS)
    } catch (error) {
      throw await this.fail(step, node, host, `installing files: ${(error as Error).message}`)
    }
    this.prepared.add(node.node_id)
    const installed = files.map((file, i) => ({file, result: results[membership.length + i]!}))
    if (step.reload) {
      const reloads = new Map<string, Array<{file: RenderedFile; result: InstallResult}>>()
      for (const entry of installed) {
        if (entry.file.reload === undefined || !(entry.result.changed || retry)) continue
        reloads.set(entry.file.reload, [...(reloads.get(entry.file.reload) ?? []), entry])
      }
      for (const [command, entries] of reloads) {
        const result = await transport.exec(host, command, {timeoutMs: serviceTimeoutMs(undefined), env: this.env(node, step), cwd: node.home, ...this.output(step, node)})
        if (result.exitCode !== 0) {
          for (const entry of entries) await restoreFile(transport, host, entry.result, INSTALL_TIMEOUT_MS)
          throw await this.fail(step, node, host, `the reload \`${command}\` of ${entries.map((e) => e.file.dest).join(', ')} (restored to the previous content)`, result)
        }
      }
    }
    await this.done(step, node, 'done', undefined, goesOn)
  }

  private async script(step: Step, node: PlannedNode, mark: NodeMark | undefined, goesOn: boolean): Promise<void> {
    const name = step.action ?? step.service
    if (mark === 'done') {
      this.ctx.reporter.note(`${node.node_id}: ${String(name)} already ran (recorded), not running it again`)
      return
    }
    const role = this.role(step.role)
    const spec: ServiceSpec | undefined = step.action !== undefined ? role.actions?.[step.action] : step.service !== undefined ? role.services?.[step.service] : undefined
    if (!spec) throw new ShoalError(`role ${String(step.role)} has no ${String(name)} script, yet the plan runs it`, 'operation-record-invalid')
    const host = this.ctx.hosts(node)
    await this.prepare(node, host)
    // Recorded as begun before it runs: an operation that stops now still knows the script touched this node.
    await this.done(step, node, 'started')
    const op = this.ctx.data.plan.operation
    const args = op.kind === 'run' && step.action !== undefined ? (op.args ?? []) : []
    const cmd = args.length ? `${spec.cmd} ${args.map(shellQuote).join(' ')}` : spec.cmd
    const result = await this.ctx.transport.exec(host, cmd, {timeoutMs: serviceTimeoutMs(spec), env: this.env(node, step), cwd: node.home, ...this.output(step, node)})
    if (result.exitCode !== 0) throw await this.fail(step, node, host, `${String(name)} (\`${spec.cmd}\`)`, result)
    await this.done(step, node, 'done', {exitCode: 0}, goesOn)
  }

  private async health(step: Step, node: PlannedNode, mark: NodeMark | undefined): Promise<void> {
    if (mark === 'done') return
    const check = this.role(step.role).health_check
    if (!check) return
    const host = this.ctx.hosts(node)
    await this.prepare(node, host)
    const timing = healthTiming(check)
    const outcome = await waitHealthy((timeoutMs) => this.ctx.transport.exec(host, check.cmd, {timeoutMs, env: this.env(node, step), cwd: node.home}), timing)
    if (!outcome.healthy) {
      throw await this.fail(step, node, host, `not healthy within start_period ${check.start_period ?? DEFAULTS.healthStartPeriod} (${outcome.tries} tries of \`${check.cmd}\`; last: ${redact(describeProbe(outcome.last), this.ctx.data.plan.secrets)})`)
    }
    await this.done(step, node, 'done')
  }

  private async remove(step: Step, node: PlannedNode, mark: NodeMark | undefined): Promise<void> {
    if (mark === 'done') return
    const host = this.ctx.hosts(node)
    const home = assertHome(this.ctx.data.plan.cluster, node)
    // Absolute destinations as the role's spec names them (a removed node's planned files are empty) and as the plan deletes them.
    const specFiles = this.ctx.data.specBefore?.roles[node.role]?.files ?? this.ctx.data.specAfter?.roles[node.role]?.files ?? []
    const absolute = [...new Set([...specFiles.map((f) => f.dest), ...node.fileChanges.filter((c) => c.action === 'delete').map((c) => c.dest)])].filter((d) => d.startsWith('/'))
    const files = absolute.flatMap((p) => [p, `${p}.shoal-new`, `${p}.shoal-bak`]).map(shellQuote)
    const clusterDir = posix.dirname(home)
    const command = [
      // The node's agent (if it has one) stops before its home goes.
      stopAgentCommand(this.ctx.data.plan.cluster, node),
      'set -e',
      `rm -rf -- ${shellQuote(home)}`,
      ...(files.length ? [`rm -f -- ${files.join(' ')}`] : []),
      // The cluster's directory goes with its last node (rmdir only removes an empty one).
      `rmdir -- ${shellQuote(clusterDir)} 2>/dev/null || true`,
    ].join('\n')
    const result = await this.ctx.transport.exec(host, command, {timeoutMs: INSTALL_TIMEOUT_MS})
    if (result.exitCode !== 0) throw await this.fail(step, node, host, `removing ${home}`, result)
    await this.done(step, node, 'done')
  }
}

/** A node's home must be exactly `/srv/shoal/<cluster>/<node-id>`: it is removed with `rm -rf`. */
export function assertHome(cluster: string, node: {node_id: string; home: string}): string {
  const expected = `${NODE_HOME_ROOT}/${cluster}/${node.node_id}`
  if (node.home !== expected || posix.normalize(node.home) !== expected || node.node_id.includes('/') || node.node_id.startsWith('.')) {
    throw new ShoalError(`node ${node.node_id} has home ${JSON.stringify(node.home)}, not ${expected}; refusing to touch it`, 'unsafe-home', EXIT.failure)
  }
  return expected
}

export function serviceTimeoutMs(spec: ServiceSpec | undefined): number {
  return parseDuration(spec?.timeout ?? DEFAULTS.serviceTimeout) ?? 600_000
}
