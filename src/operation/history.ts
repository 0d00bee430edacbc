// What an operation did, kept after it ended, for `shoal logs` and `shoal status`: one summary per operation, its
// step timings, and every script's output per step and node (bounded, secrets already redacted by the executor).
//
//   operations/<cluster>/history/<started>-<id>         {id, kind, title, started, finished?, result, supersededBy?}
//   operations/<cluster>/timings/<id>/<step>            {title, started, finished?, result}
//   operations/<cluster>/logs/<id>/<step>/<node>        {lines: ["| out", "! err"], dropped, exit?}
//
// The last KEEP_OPERATIONS operations are kept; `destroy` removes all of it with the cluster.
import type {Operation} from '../plan/types.js'
import type {Op, Store} from '../store/store.js'
/** Same root as the operation record (record.ts). */
const operationsPrefix = (cluster: string): string => `operations/${cluster}/`

export const KEEP_OPERATIONS = 10
/** Per step and node: the last this many lines, and at most this many characters in all. */
export const LOG_MAX_LINES = 2000
export const LOG_MAX_CHARS = 64 * 1024

export type RunResult = 'running' | 'ok' | 'failed' | 'superseded' | 'abandoned'

export interface RunSummary {
  id: string
  kind: Operation['kind']
  title: string
  started: string
  finished?: string
  result: RunResult
  /** The operation that replaced this one (fix forward, rollback, destroy). */
  supersededBy?: string
  /** Read-only actions run beside other operations, without the lock. */
  readOnly?: boolean
}

export interface StepTiming {
  step: string
  title: string
  started: string
  finished?: string
  result: 'running' | 'ok' | 'failed'
  /** Seconds the step took (so far, while running). */
  seconds?: number
}

export interface NodeLog {
  step: string
  node: string
  /** Output lines in order: `| ` stdout, `! ` stderr. */
  lines: string[]
  /** Lines dropped at the front to stay within the bounds. */
  dropped: number
  exit?: {exitCode?: number | null; signal?: string | null; timedOut?: boolean}
}

const historyPrefix = (cluster: string): string => `${operationsPrefix(cluster)}history/`
const historyKey = (cluster: string, run: Pick<RunSummary, 'id' | 'started'>): string => `${historyPrefix(cluster)}${run.started}-${run.id}`
export const timingsPrefix = (cluster: string, id: string): string => `${operationsPrefix(cluster)}timings/${id}/`
export const logsPrefix = (cluster: string, id: string): string => `${operationsPrefix(cluster)}logs/${id}/`
export const logKey = (cluster: string, id: string, step: string, node: string): string => `${logsPrefix(cluster, id)}${step}/${node}`
const timingKey = (cluster: string, id: string, step: string): string => `${timingsPrefix(cluster, id)}${step}`

function parse<T>(value: string): T | undefined {
  try {
    return JSON.parse(value) as T
  } catch {
    return undefined
  }
}

export function putSummary(cluster: string, run: RunSummary): Op {
  return {type: 'put', key: historyKey(cluster, run), value: JSON.stringify(run)}
}

/** Operations of the cluster, oldest first. */
export async function readHistory(store: Store, cluster: string): Promise<RunSummary[]> {
  const {kvs} = await store.range(historyPrefix(cluster))
  return kvs.sort((a, b) => (a.key < b.key ? -1 : 1)).map((kv) => parse<RunSummary>(kv.value)).filter((r): r is RunSummary => r !== undefined)
}

/** Record a new operation's summary, dropping the oldest ones (and their logs) beyond KEEP_OPERATIONS. */
export async function beginRun(store: Store, cluster: string, run: RunSummary): Promise<void> {
  const old = await readHistory(store, cluster)
  const drop = old.filter((r) => !r.readOnly || r.result !== 'running').slice(0, Math.max(0, old.length + 1 - KEEP_OPERATIONS))
  const ops: Op[] = [putSummary(cluster, run)]
  for (const r of drop) {
    ops.push({type: 'delete', key: historyKey(cluster, r)}, {type: 'deletePrefix', prefix: timingsPrefix(cluster, r.id)}, {type: 'deletePrefix', prefix: logsPrefix(cluster, r.id)})
  }
  await store.txn([], ops)
}

/** Update a summary in place (its key is fixed by start time and id). */
export async function updateRun(store: Store, cluster: string, run: RunSummary): Promise<void> {
  await store.txn([], [putSummary(cluster, run)])
}

export async function readRun(store: Store, cluster: string, id: string): Promise<RunSummary | undefined> {
  return (await readHistory(store, cluster)).find((r) => r.id === id)
}

export function timingOp(cluster: string, id: string, timing: StepTiming): Op {
  const {step, seconds: _seconds, ...rest} = timing
  return {type: 'put', key: timingKey(cluster, id, step), value: JSON.stringify({step, ...rest})}
}

/** Step timings of an operation in step order, with seconds (up to now for a running step). */
export async function readTimings(store: Store, cluster: string, id: string, now = Date.now()): Promise<StepTiming[]> {
  const prefix = timingsPrefix(cluster, id)
  const {kvs} = await store.range(prefix)
  return kvs
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((kv) => parse<StepTiming>(kv.value))
    .filter((t): t is StepTiming => t !== undefined)
    .map((t) => ({...t, seconds: Math.round(((t.finished ? Date.parse(t.finished) : now) - Date.parse(t.started)) / 100) / 10}))
}

export async function readLogs(store: Store, cluster: string, id: string): Promise<NodeLog[]> {
  const {kvs} = await store.range(logsPrefix(cluster, id))
  return kvs
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((kv) => parse<NodeLog>(kv.value))
    .filter((l): l is NodeLog => l !== undefined)
}

/** Collects one script's output on one node within the bounds (the newest lines are kept). */
export class LogBuffer {
  private readonly lines: string[] = []
  private chars = 0
  dropped = 0

  add(stream: 'stdout' | 'stderr', line: string): void {
    const text = `${stream === 'stderr' ? '!' : '|'} ${line.length > LOG_MAX_CHARS ? line.slice(0, LOG_MAX_CHARS) : line}`
    this.lines.push(text)
    this.chars += text.length
    while (this.lines.length > LOG_MAX_LINES || this.chars > LOG_MAX_CHARS) {
      this.chars -= this.lines.shift()!.length
      this.dropped++
    }
  }

  get size(): number {
    return this.lines.length
  }

  entry(step: string, node: string, exit?: NodeLog['exit']): NodeLog {
    return {step, node, lines: [...this.lines], dropped: this.dropped, ...(exit ? {exit} : {})}
  }
}

/** The last `count` lines of a node's log, as a person reads them. */
export function lastLines(log: NodeLog, count: number): string[] {
  return log.lines.slice(-count)
}
