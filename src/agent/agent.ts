// The node agent's loop: long-poll metad's /agent, render the role's templates with the planner's code, install what
// changed (staged → check → atomic rename) and reload, so a node's files follow the registry with no shoal command.
import {readFile, rename, stat, writeFile} from 'node:fs/promises'
import {request, type ClientRequest} from 'node:http'
import {ShoalError} from '../errors.js'
import {sha256, type SharedView} from '../plan/index.js'
import {renderNode} from '../plan/render.js'
import type {PlanError, RenderedFile} from '../plan/types.js'
import {parseTemplate, TemplateBudget, type ParsedTemplate} from '../render/engine.js'
import type {AgentPayload} from '../metad/agent-view.js'
import {nodeEnv} from '../lifecycle/membership.js'
import {checkCommand, installFiles, installLocalFile, restoreFile, type InstallResult} from '../transport/install.js'
import {LocalTransport, localHost} from '../transport/local.js'
import {octalMode, type TransportError} from '../transport/transport.js'

export interface AgentOptions {
  /** metad's base URL as this node reaches it, e.g. http://10.0.0.5:9611. */
  metad: string
  /** The local address requests leave from: metad knows the node by it. */
  bind?: string
  /** Where one address holds several nodes: which one, and its token (`.shoal/token` in its home). */
  node?: string
  token?: string
  /** How long one long-poll may wait at metad before it answers 304. */
  pollSeconds?: number
  /** Deadline of each check and reload command. */
  commandTimeoutMs?: number
  /**
   * Following metad: after each pass (or failed attempt to reach it) this file says how it went, in one line —
   * `applied REV`, `failed REV MESSAGE` or `unreachable MESSAGE`. It is how shoal, having just started the agent, learns
   * that its first pass applied shoal's commit, without a second Node.js process doing that pass first.
   */
  readyFile?: string
  log: (event: AgentEvent) => void
}

/** One line of the agent's log: a change applied (or refused), or the connection to metad lost and found again. */
export type AgentEvent =
  | {event: 'applied'; revision: number; changed: string[]; reloads: Array<{command: string; ok: boolean}>; errors: string[]; ms: number}
  | {event: 'unchanged'; revision: number; ms: number}
  | {event: 'refused'; revision: number; reason: string}
  | {event: 'held'; revision: number; reason: string}
  | {event: 'unreachable'; reason: string; retryInMs: number}
  | {event: 'reconnected'}
  | {event: 'warning'; message: string}

/** What one pass did: the revision it rendered, and why the node is not in sync if it is not. */
export interface PassResult {
  revision: number
  errors: string[]
}

/** A report metad did not take is sent again, this soon and then less often: nothing else would carry it. */
const REPORT_RETRY_FIRST_MS = 1000
const REPORT_RETRY_MAX_MS = 30_000
const BACKOFF_FIRST_MS = 250
/** Short: the agent must pick up at once when metad is back, and a node costs metad little while it is away. */
const BACKOFF_MAX_MS = 5000
const DEFAULT_COMMAND_TIMEOUT_MS = 60_000
const MAX_ANSWER_BYTES = 64 * 1024 * 1024

class MetadError extends ShoalError {
  constructor(message: string, readonly status?: number) {
    super(message, 'metad-unavailable')
  }
}

export class Agent {
  private readonly transport = new LocalTransport()
  private readonly host = localHost('this node')
  /** The revision the files on disk reflect (0 before the first pass). */
  private applied = 0
  /** The revision of the last answer, applied or refused: the next long-poll waits for a change after it. */
  private seen = 0
  private stopped = false
  /** What the ready file says now (written by this process). */
  private readyLine: string | undefined
  private current: {abort: () => void} | undefined
  /**
   * What the agent tells metad about its node, after every pass. There is no heartbeat: metad takes the long-poll the
   * agent holds open as the sign it is alive, so an idle agent does nothing between changes.
   */
  private state: {revision: number; files: Record<string, string>; errors: string[]} = {revision: 0, files: {}, errors: []}
  /** Set while following metad (`run`): a report that failed is then retried. */
  private following = false
  private reportRetry: {timer: NodeJS.Timeout | undefined; ms: number} = {timer: undefined, ms: 0}
  private reporting: Promise<void> | undefined
  private reportAgain = false
  /** Templates parsed in earlier passes, by their source: most changes are to the view, not to the templates. */
  private parsed = new Map<string, ParsedTemplate>()

  constructor(private readonly options: AgentOptions) {}

  /**
   * Render and install once (`--once`); throws when metad cannot be asked. With `atLeast`, metad must serve that
   * revision (shoal's own commit) or a later one: until `waitMs` has passed, an answer behind it, a metad that does not
   * know the node yet or cannot be reached is asked again.
   */
  async once(want: {atLeast?: number; waitMs?: number} = {}): Promise<PassResult> {
    const deadline = Date.now() + (want.waitMs ?? 0)
    for (;;) {
      let behind: string | undefined
      try {
        const answer = await this.ask(false)
        if (answer!.payload.revision >= (want.atLeast ?? 0)) {
          const result = await this.pass(answer!.payload)
          await this.report().catch(() => undefined)
          return result
        }
        behind = `metad serves revision ${answer!.payload.revision}, behind revision ${want.atLeast ?? 0}`
      } catch (error) {
        if (Date.now() >= deadline || (error instanceof MetadError && error.status !== undefined && error.status !== 404 && error.status !== 503)) throw error
      }
      if (Date.now() >= deadline) throw new MetadError(`${behind ?? 'metad did not answer'} after ${Math.round((want.waitMs ?? 0) / 1000)} s`)
      await this.sleep(200)
    }
  }

  /** Follow metad until `stop()`: each change is applied as it arrives; metad away means retry with backoff. */
  async run(): Promise<void> {
    let backoff = 0
    let wait = false
    this.following = true
    // The command driver is started now, not by the first change, when every agent of a cluster would start one at once.
    await this.transport.prepare()
    while (!this.stopped) {
      try {
        const answer = await this.ask(wait)
        if (backoff > 0) this.options.log({event: 'reconnected'})
        backoff = 0
        if (answer) {
          const result = await this.pass(answer.payload)
          void this.report().catch(() => undefined)
          await this.ready(result.errors.length ? `failed ${result.revision} ${oneLine(result.errors.join('; '))}` : `applied ${result.revision}`)
        }
        wait = true
      } catch (error) {
        if (this.stopped) break
        backoff = Math.min(BACKOFF_MAX_MS, backoff === 0 ? BACKOFF_FIRST_MS : backoff * 2)
        // Jitter: a metad coming back is not met by every node of a fleet in the same millisecond.
        const delay = Math.round(backoff / 2 + Math.random() * (backoff / 2))
        this.options.log({event: 'unreachable', reason: (error as Error).message, retryInMs: delay})
        await this.ready(`unreachable ${oneLine((error as Error).message)}`)
        wait = false
        await this.sleep(delay)
      }
    }
  }

  /** Write the ready file (see `readyFile`) whole, so a reader never sees half a line; a line it already says is not rewritten. */
  private async ready(line: string): Promise<void> {
    const file = this.options.readyFile
    if (file === undefined || line === this.readyLine) return
    try {
      await writeFile(`${file}.tmp`, `${line}\n`)
      await rename(`${file}.tmp`, file)
      this.readyLine = line
    } catch (error) {
      this.options.log({event: 'warning', message: `cannot write the ready file: ${(error as Error).message}`})
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.reportRetry.timer)
    this.current?.abort()
    await this.transport.close()
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.current = {abort: () => (clearTimeout(timer), resolve())}
    })
  }

  /**
   * Report the latest state, one report at a time: one asked for while another is on its way goes after it, with the
   * state as it is then (two in flight could reach metad in the wrong order and leave the older one standing).
   */
  private report(): Promise<void> {
    if (this.reporting) {
      this.reportAgain = true
      return this.reporting
    }
    clearTimeout(this.reportRetry.timer)
    const sending = this.post().then(() => void (this.reportRetry.ms = 0), (error: unknown) => {
      if (this.following && !this.stopped) {
        const retry = this.reportRetry
        retry.ms = Math.min(REPORT_RETRY_MAX_MS, retry.ms === 0 ? REPORT_RETRY_FIRST_MS : retry.ms * 2)
        retry.timer = setTimeout(() => void this.report().catch(() => undefined), retry.ms)
      }
      throw error
    }).finally(() => {
      this.reporting = undefined
      if (this.reportAgain) {
        this.reportAgain = false
        void this.report().catch(() => undefined)
      }
    })
    this.reporting = sending
    return sending
  }

  /** POST /agent: the revision the files reflect, each file's hash on disk, and what went wrong. */
  private post(): Promise<void> {
    const body = JSON.stringify(this.state)
    return new Promise((resolve, reject) => {
      const req = this.request('POST', {}, {'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body))}, 15)
      req.on('timeout', () => req.destroy(new MetadError('metad did not take the report in time')))
      req.on('error', reject)
      req.on('response', (res) => {
        res.resume()
        res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new MetadError(`metad refused the report: ${res.statusCode}`, res.statusCode))))
      })
      req.end(body)
    })
  }

  /** A request to metad's /agent as this node: from its address, naming it and proving it with its token where set. */
  private request(method: 'GET' | 'POST', params: Record<string, string>, headers: Record<string, string>, timeoutSeconds: number): ClientRequest {
    const url = new URL('/agent', this.options.metad)
    if (this.options.node !== undefined) url.searchParams.set('node', this.options.node)
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
    return request(url, {
      method,
      headers: {...headers, ...(this.options.token !== undefined ? {'x-shoal-token': this.options.token} : {})},
      ...(this.options.bind !== undefined ? {localAddress: this.options.bind} : {}),
      timeout: timeoutSeconds * 1000,
    })
  }

  /** GET /agent (a long-poll from the revision applied when `wait`); undefined when metad said unchanged (304). */
  private ask(wait: boolean): Promise<{payload: AgentPayload} | undefined> {
    const poll = this.options.pollSeconds ?? 55
    const params: Record<string, string> = wait ? {wait: 'true', prev_version: String(this.seen), timeout: `${poll}s`} : {}
    return new Promise((resolve, reject) => {
      // A metad that stops answering (paused, a dead link) is noticed: the poll's own wait plus a margin.
      const req = this.request('GET', params, {accept: 'application/json'}, wait ? poll + 15 : 15)
      this.current = {abort: () => req.destroy(new Error('agent stopping'))}
      req.on('timeout', () => req.destroy(new MetadError(`metad at ${this.options.metad} did not answer in time`)))
      req.on('error', (error) => reject(error instanceof MetadError ? error : new MetadError(`metad at ${this.options.metad}: ${error.message}`)))
      req.on('response', (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_ANSWER_BYTES) req.destroy(new MetadError(`metad's answer is larger than ${MAX_ANSWER_BYTES} bytes`))
          else chunks.push(chunk)
        })
        res.on('error', reject)
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8')
          if (res.statusCode === 304) return resolve(undefined)
          if (res.statusCode !== 200) return reject(new MetadError(`metad answered ${res.statusCode}: ${errorMessage(body)}`, res.statusCode))
          try {
            resolve({payload: JSON.parse(body) as AgentPayload})
          } catch {
            reject(new MetadError('metad sent an answer that is not JSON (cut off?)'))
          }
        })
      })
      req.end()
    })
  }

  /** Render the payload and install what changed; files stay as they are when the answer cannot be trusted. */
  private async pass(payload: AgentPayload): Promise<PassResult> {
    const started = performance.now()
    // A refused answer is not asked for again until something changes: a broken template must not spin the agent.
    if (Number.isInteger(payload?.revision) && payload.revision > 0) this.seen = payload.revision
    const reason = incomplete(payload, this.options.node)
    if (reason) return this.refuse(payload, reason)
    if (payload.revision < this.applied) return this.refuse(payload, `revision ${payload.revision} is behind revision ${this.applied}, which the files already reflect`)
    const own = (lists: Record<string, Array<{node_id: string}>>): boolean => Object.values(lists).some((list) => list.some((h) => h.node_id === payload.node))
    // A leaving node keeps the files it runs with until shoal stops and removes it (the SSH path leaves them too).
    if (own(payload.view.deleting_hosts)) return this.hold(payload, 'the node is leaving its cluster: its files stay as they are until it is removed')
    const {files, errors} = this.render(payload)
    if (errors.length) return this.refuse(payload, errors.join('; '))
    // A joining node's services have not been started yet: its files go in without their reloads.
    const joining = own(payload.view.adding_hosts)
    const installed: Array<{file: RenderedFile; result: InstallResult}> = []
    const failures: string[] = []
    // One file at a time: a file its check refuses keeps its old content, and the others still go in. A file already
    // as rendered costs no command (most passes change one file of many).
    for (const file of files) {
      try {
        if (await inPlace(file)) continue
        if (file.owner === undefined && file.check === undefined) {
          installed.push({file, result: await installLocalFile(file)})
          continue
        }
        const [result] = await installFiles(this.transport, this.host, [{
          path: file.path, content: file.content, mode: file.mode,
          ...(file.owner !== undefined ? {owner: file.owner} : {}),
          ...(file.check !== undefined ? {check: checkCommand(file.check)} : {}),
        }], this.timeout())
        installed.push({file, result: result!})
      } catch (error) {
        // The transport's message names this host first: the agent's log is the node's own.
        const message = (error as Error).message.replace(`${this.host.name}: `, '')
        failures.push(`${file.dest}: ${message}${(error as TransportError).code === 'file-check-failed' ? '; the old file is kept' : ''}`)
      }
    }
    const changed = installed.filter((i) => i.result.changed)
    const reloads = joining ? [] : await this.reload(payload, changed, failures)
    if (changed.length === 0 && failures.length === 0) this.options.log({event: 'unchanged', revision: payload.revision, ms: elapsed(started)})
    else this.options.log({event: 'applied', revision: payload.revision, changed: changed.map((i) => i.file.dest), reloads, errors: failures, ms: elapsed(started)})
    this.applied = payload.revision
    // With no failure every file is on disk as rendered; after one, what is there is read back.
    const reported = failures.length === 0 ? Object.fromEntries(files.map((f) => [f.dest, sha256(f.content)])) : await hashesOnDisk(files)
    this.state = {revision: payload.revision, files: reported, errors: failures}
    return {revision: payload.revision, errors: failures}
  }

  /** Each reload command once for the changed files that name it; a failed one puts their previous content back and reloads that. */
  private async reload(payload: AgentPayload, changed: Array<{file: RenderedFile; result: InstallResult}>, failures: string[]): Promise<Array<{command: string; ok: boolean}>> {
    const byCommand = new Map<string, Array<{file: RenderedFile; result: InstallResult}>>()
    for (const entry of changed) if (entry.file.reload !== undefined) byCommand.set(entry.file.reload, [...(byCommand.get(entry.file.reload) ?? []), entry])
    const env = reloadEnv(payload)
    const home = payload.view.self.home
    const out: Array<{command: string; ok: boolean}> = []
    for (const [command, entries] of byCommand) {
      const result = await this.transport.exec(this.host, command, {timeoutMs: this.timeout(), env, cwd: home})
      out.push({command, ok: result.exitCode === 0})
      if (result.exitCode === 0) continue
      const how = result.timedOut ? 'timed out' : result.signal ? `was killed by ${result.signal}` : `exited ${String(result.exitCode)}`
      const stderr = (result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')
      for (const entry of entries) await restoreFile(this.transport, this.host, entry.result, this.timeout()).catch((error: Error) => failures.push(`restoring ${entry.file.dest}: ${error.message}`))
      const again = await this.transport.exec(this.host, command, {timeoutMs: this.timeout(), env, cwd: home})
      failures.push(`the reload \`${command}\` of ${entries.map((e) => e.file.dest).join(', ')} ${how}${stderr ? ` (${stderr})` : ''}: the previous content is back${again.exitCode === 0 ? ' and reloaded' : `, and reloading it failed too (exit ${String(again.exitCode)})`}`)
    }
    return out
  }

  private hold(payload: AgentPayload, reason: string): PassResult {
    this.options.log({event: 'held', revision: payload.revision, reason})
    this.state = {...this.state, errors: []}
    return {revision: payload.revision, errors: []}
  }

  private refuse(payload: AgentPayload, reason: string): PassResult {
    const revision = typeof payload?.revision === 'number' ? payload.revision : 0
    this.options.log({event: 'refused', revision, reason})
    // The files still reflect the revision applied before: that is what is reported, with why this one was not.
    this.state = {...this.state, errors: [reason]}
    return {revision, errors: [reason]}
  }

  /** The node's files, rendered by the planner's own code from the served view and templates. */
  private render(payload: AgentPayload): {files: RenderedFile[]; errors: string[]} {
    const compiled = new Map<string, ParsedTemplate>()
    const parsed = new Map<string, ParsedTemplate>()
    const errors: PlanError[] = []
    for (const file of payload.files) {
      if (compiled.has(file.template)) continue
      const source = payload.templates[file.template]!
      try {
        const template = this.parsed.get(source) ?? parseTemplate(source)
        parsed.set(source, template)
        compiled.set(file.template, template)
      } catch (error) {
        errors.push({code: 'template-parse', template: file.template, message: `${file.template}: ${(error as Error).message}`})
      }
    }
    // Only this payload's templates are kept: a template changed many times does not pile up its old versions.
    this.parsed = parsed
    const {self, host: _host, ...shared} = payload.view
    const files = errors.length ? [] : renderNode(payload.files, self, shared as SharedView, {compiled, sensitive: new Set(), budget: new TemplateBudget()}, errors)
    return {files, errors: errors.map((e) => e.message)}
  }

  private timeout(): number {
    return this.options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
  }
}

/** Whether the file is on disk as rendered, with its mode (an owner is left to the install, which sets it). */
async function inPlace(file: RenderedFile): Promise<boolean> {
  if (file.owner !== undefined) return false
  try {
    const [content, info] = await Promise.all([readFile(file.path, 'utf8'), stat(file.path)])
    return info.isFile() && (info.mode & 0o7777) === parseInt(octalMode(file.mode), 8) && content === file.content
  } catch {
    return false
  }
}

/** Each file's sha256 as it is on disk now (a refused file keeps its old content, a failed reload puts the previous one back). */
async function hashesOnDisk(files: readonly RenderedFile[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const file of files) {
    try {
      out[file.dest] = sha256(await readFile(file.path, 'utf8'))
    } catch {
      // missing: not reported
    }
  }
  return out
}

/** Why an answer cannot be rendered from (a cut-off or partial answer, another node's), or undefined when it can. */
function incomplete(payload: AgentPayload, node: string | undefined): string | undefined {
  if (payload === null || typeof payload !== 'object') return 'the answer is empty'
  if (!Number.isInteger(payload.revision) || payload.revision <= 0) return 'the answer has no revision'
  const view = payload.view
  if (!view || typeof view !== 'object' || !view.self || !view.hosts || !view.cluster || !view.env || !view.links) return 'the answer has no complete node view'
  if (node !== undefined && payload.node !== node) return `the answer is for node ${payload.node}, not ${node}`
  if (view.self.node_id !== payload.node || !Object.values(view.hosts).some((list) => list.some((h) => h.node_id === payload.node))) return `node ${payload.node} is not among its cluster's hosts in the answer`
  if (!Array.isArray(payload.files) || !payload.templates || typeof payload.templates !== 'object') return 'the answer has no file list'
  const missing = payload.files.filter((f) => typeof payload.templates[f.template] !== 'string').map((f) => f.template)
  if (missing.length) return `the answer lacks the templates ${missing.join(', ')}`
  return undefined
}

/** What a reload is told: what the SSH path tells it, the operation being the agent's change, with its revision. */
function reloadEnv(payload: AgentPayload): Record<string, string> {
  const {self, env, adding_hosts: adding, deleting_hosts: deleting} = payload.view
  const ids = (lists: Record<string, Array<{node_id: string}>>): string[] => Object.values(lists).flat().map((h) => h.node_id)
  return {...nodeEnv({cluster: payload.cluster, operation: 'agent', node: self, env, joining: ids(adding), leaving: ids(deleting)}), SHOAL_REVISION: String(payload.revision)}
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' | ')
}

function errorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as {error?: {code?: string; message?: string}}
    if (parsed.error?.message) return `${parsed.error.code ?? 'error'}: ${parsed.error.message}`
  } catch {
    // not JSON: show the start of it
  }
  return body.slice(0, 200)
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started)
}
