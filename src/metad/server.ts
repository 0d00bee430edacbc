// The metad HTTP service: GET /self by caller address (with long-poll), /health and /metrics, over one registry mirror.
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {EXIT, ShoalError} from '../errors.js'
import type {Store} from '../store/store.js'
import {CONTENT_TYPES, negotiate, render, type Format} from './format.js'
import {callerAddress, identify, IdentityError, TrustedProxies} from './identity.js'
import {Metrics} from './metrics.js'
import {Mirror, type NodeRef} from './mirror.js'
import {Reports} from './reports.js'
import {parseAgentReport} from '../registry/index.js'
import {agentBody, agentFingerprint} from './agent-view.js'
import {answerFor, fingerprint, SECTIONS, selfChunks, selfTree, subtree, type NodeAnswer, type Section} from './view.js'

export interface MetadOptions {
  store: Store
  /** Address and port to listen on; port 0 picks a free one. */
  host: string
  port: number
  /** Addresses or CIDRs whose X-Forwarded-For is believed. */
  trustedProxies?: readonly string[]
  /** Changes are answered once the registry has been quiet this long... */
  quietMs?: number
  /** ...or this long after the first change of a burst, whichever comes first. */
  maxDelayMs?: number
  /** Default long-poll wait (`timeout` not given). */
  waitMs?: number
  probeIntervalMs?: number
  /** One line per request (`--verbose`). */
  verbose?: boolean
  log?: (line: string) => void
}

export const DEFAULTS = {quietMs: 5, maxDelayMs: 100, waitMs: 60_000, maxWaitMs: 3_600_000, probeIntervalMs: 2000} as const

/** What a request asks for: a node's view (/self...), or its agent's render inputs (/agent). */
type Served = 'self' | 'agent'

interface Waiter {
  res: ServerResponse
  served: Served
  ref: NodeRef
  path: string
  segments: string[]
  format: Format
  section: Section | undefined
  prevVersion: number
  /** The answer's fingerprint when it started waiting; undefined while metad has not yet seen `prevVersion`. */
  fingerprint: string | undefined
  timer: NodeJS.Timeout
}

/** A request that cannot be answered with a view: status, code and message, sent as `{"error": {...}}`. */
class HttpError extends ShoalError {
  constructor(readonly status: number, code: string, message: string) {
    super(message, code)
  }
}

export class Metad {
  readonly mirror: Mirror
  private readonly server: Server
  private readonly proxies: TrustedProxies
  private readonly metrics = new Metrics()
  private readonly reports: Reports
  private readonly waiters = new Set<Waiter>()
  private readonly log: (line: string) => void
  private readonly quietMs: number
  private readonly maxDelayMs: number
  private readonly waitMs: number
  /** Clusters changed since the last wake-up round, and when the first of those changes arrived. */
  private changed = new Set<string>()
  private firstChangeAt = 0
  private quietTimer: NodeJS.Timeout | undefined
  private maxTimer: NodeJS.Timeout | undefined
  private closing = false

  constructor(private readonly options: MetadOptions) {
    this.proxies = new TrustedProxies(options.trustedProxies ?? [])
    this.reports = new Reports(options.store)
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`))
    this.quietMs = options.quietMs ?? DEFAULTS.quietMs
    this.maxDelayMs = options.maxDelayMs ?? DEFAULTS.maxDelayMs
    this.waitMs = options.waitMs ?? DEFAULTS.waitMs
    this.mirror = new Mirror({
      store: options.store,
      probeIntervalMs: options.probeIntervalMs ?? DEFAULTS.probeIntervalMs,
      onChange: (clusters) => this.registryChanged(clusters),
      log: this.log,
    })
    this.server = createServer({keepAliveTimeout: 65_000}, (req, res) => this.handle(req, res))
  }

  /** Listen, then read the registry (a registry that is away is retried; /self answers 503 until the first read). */
  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new ShoalError(`cannot listen on ${this.options.host}:${this.options.port}: ${error.message}`, 'listen-failed', EXIT.failure)))
      this.server.listen(this.options.port, this.options.host, () => resolve())
    })
    await this.mirror.start()
    return this.server.address() as AddressInfo
  }

  async close(): Promise<void> {
    this.closing = true
    clearTimeout(this.quietTimer)
    clearTimeout(this.maxTimer)
    for (const waiter of [...this.waiters]) {
      this.finish(waiter)
      this.sendError(waiter.res, new HttpError(503, 'shutting-down', 'metad is shutting down; ask again'))
    }
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    // Answers just sent get a moment to leave; idle keep-alive connections go at once, anything else after that.
    this.server.closeIdleConnections()
    const grace = setTimeout(() => this.server.closeAllConnections(), 1000)
    await closed
    clearTimeout(grace)
    this.reports.close()
    await this.mirror.close()
  }

  private registryChanged(clusters: ReadonlySet<string>): void {
    if (this.changed.size === 0) this.firstChangeAt = performance.now()
    for (const name of clusters) this.changed.add(name)
    // A burst is answered once, when it has been quiet for a moment; constant churn still gets answered in time.
    clearTimeout(this.quietTimer)
    this.quietTimer = setTimeout(() => this.wake(), this.quietMs)
    this.maxTimer ??= setTimeout(() => this.wake(), this.maxDelayMs)
  }

  private wake(): void {
    clearTimeout(this.quietTimer)
    clearTimeout(this.maxTimer)
    this.quietTimer = this.maxTimer = undefined
    const changed = this.changed
    const since = this.firstChangeAt
    this.changed = new Set()
    for (const waiter of [...this.waiters]) {
      if (waiter.fingerprint !== undefined && !this.touches(waiter.ref.cluster, changed)) continue
      const answer = this.answer(waiter.ref)
      if (!answer) {
        this.finish(waiter)
        this.sendError(waiter.res, new HttpError(404, 'unknown-node', 'this node is no longer registered'))
        continue
      }
      const now = printOf(waiter.served, answer, waiter.section)
      if (waiter.fingerprint === undefined) {
        if (this.mirror.revision < waiter.prevVersion) continue
        if (answer.version === waiter.prevVersion) {
          waiter.fingerprint = now
          continue
        }
      } else if (now === waiter.fingerprint) continue
      this.finish(waiter)
      this.sendAnswer(waiter.res, waiter.served, answer, waiter.segments, waiter.format, waiter.path)
      this.metrics.woke((performance.now() - since) / 1000)
    }
  }

  /** Whether a change to `changed` clusters can alter what a node of `cluster` sees (its own, or a linked one). */
  private touches(cluster: string, changed: ReadonlySet<string>): boolean {
    if (changed.has(cluster)) return true
    const entry = this.mirror.cluster(cluster)
    return entry !== undefined && Object.values(entry.state.links).some((target) => changed.has(target))
  }

  private answer(ref: NodeRef): NodeAnswer | undefined {
    const entry = this.mirror.cluster(ref.cluster)
    return entry && answerFor(entry, ref.nodeId, (name) => this.mirror.cluster(name))
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now()
    const url = new URL(req.url ?? '/', 'http://metad')
    let node = ''
    res.on('finish', () => {
      this.metrics.request(res.statusCode)
      if (this.options.verbose) {
        this.log(`${new Date().toISOString()} ${callerAddress(req.socket.remoteAddress ?? '', undefined, this.proxies)} ${req.method} ${req.url} ${res.statusCode} ${(performance.now() - started).toFixed(1)}ms${node}`)
      }
    })
    try {
      if (req.method === 'POST' && url.pathname === '/agent') return void this.agentReport(req, url, res).then((ref) => void (ref && (node = ` ${ref.cluster}/${ref.nodeId}`)))
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method-not-allowed', 'metad only reads (use GET), but for an agent reporting on its own node (POST /agent)')
      if (url.pathname === '/health') return this.health(res)
      if (url.pathname === '/metrics') return this.sendText(res, 200, this.metrics.render(this.gauges()), 'text/plain; version=0.0.4; charset=utf-8')
      const served: Served | undefined = url.pathname === '/self' || url.pathname.startsWith('/self/') ? 'self' : url.pathname === '/agent' ? 'agent' : undefined
      if (!served) throw new HttpError(404, 'not-found', `no such path ${url.pathname}; metad serves /self, /agent, /health and /metrics`)
      const ref = this.self(req, url, res, served)
      if (ref) node = ` ${ref.cluster}/${ref.nodeId}`
    } catch (error) {
      this.sendError(res, error)
    }
  }

  /**
   * `GET /self...` or `GET /agent`: the caller's view (or its agent's render inputs) now, or once it changed (long-poll).
   * Returns who asked when that is known.
   */
  private self(req: IncomingMessage, url: URL, res: ServerResponse, served: Served): NodeRef | undefined {
    if (!this.mirror.ready) throw new HttpError(503, 'registry-unavailable', `the registry has not been read yet${this.mirror.stale ? `: ${this.mirror.stale.reason}` : ''}`)
    const format = negotiate(req.headers.accept)
    if (!format) throw new HttpError(406, 'not-acceptable', 'metad answers application/json, text/plain or application/yaml')
    if (served === 'agent' && format !== 'json') throw new HttpError(406, 'not-acceptable', '/agent answers application/json only')
    const params = url.searchParams
    const wait = params.get('wait')
    if (wait !== null && wait !== 'true' && wait !== 'false') throw new HttpError(400, 'invalid-parameter', `wait must be true or false, not "${wait}"`)
    const {ref, address} = this.identifyCaller(req, url)
    const segments = served === 'agent' ? [] : url.pathname.split('/').slice(2).filter((s) => s.length > 0).map(decodeURIComponent)
    const section = segments[0] as Section | undefined
    if (section !== undefined && !SECTIONS.includes(section)) throw new HttpError(404, 'no-such-path', `nothing at ${url.pathname}`)
    const answer = this.answer(ref)
    if (!answer) throw new HttpError(404, 'unknown-node', `no node is registered at ${address}`)
    if (wait === 'true') {
      const prev = params.get('prev_version')
      if (prev === null || !/^\d+$/.test(prev)) throw new HttpError(400, 'invalid-parameter', 'a long-poll needs prev_version=N: the X-Shoal-Revision of the answer you have')
      const timeoutMs = waitTimeout(params.get('timeout'), this.waitMs)
      const prevVersion = Number(prev)
      // Behind the caller (another metad answered it from a later revision): wait until this one has caught up.
      const known = this.mirror.revision >= prevVersion
      if (!known || answer.version === prevVersion) {
        this.park({res, served, ref, path: url.pathname, segments, format, section, prevVersion, fingerprint: known ? printOf(served, answer, section) : undefined, timer: undefined!}, timeoutMs)
        return ref
      }
    }
    this.sendAnswer(res, served, answer, segments, format, url.pathname)
    return ref
  }

  /** `POST /agent`: the caller's agent reports on its own node (identified as for GET); written to that node's key only. */
  private async agentReport(req: IncomingMessage, url: URL, res: ServerResponse): Promise<NodeRef | undefined> {
    try {
      if (!this.mirror.ready) throw new HttpError(503, 'registry-unavailable', 'the registry has not been read yet')
      const {ref} = this.identifyCaller(req, url)
      if (!this.answer(ref)) throw new HttpError(404, 'unknown-node', 'this node is not registered')
      const body = await readBody(req, MAX_REPORT_BYTES)
      let report
      try {
        report = parseAgentReport(JSON.parse(body))
      } catch (error) {
        throw new HttpError(400, 'invalid-report', `not a report: ${(error as Error).message}`)
      }
      try {
        await this.reports.report(ref, report)
      } catch (error) {
        throw new HttpError(503, 'registry-unavailable', `the report could not be written: ${(error as Error).message}`)
      }
      res.writeHead(204, {'Cache-Control': 'no-store'}).end()
      return ref
    } catch (error) {
      this.sendError(res, error)
      return undefined
    }
  }

  private identifyCaller(req: IncomingMessage, url: URL): {ref: NodeRef; address: string} {
    const address = callerAddress(req.socket.remoteAddress ?? '', header(req, 'x-forwarded-for'), this.proxies)
    try {
      return {address, ref: identify(this.mirror, address, url.searchParams.get('node') ?? undefined, header(req, 'x-shoal-token'))}
    } catch (error) {
      if (error instanceof IdentityError) throw new HttpError(error.status, error.code, error.message)
      throw error
    }
  }

  private park(waiter: Waiter, timeoutMs: number): void {
    waiter.timer = setTimeout(() => {
      this.finish(waiter)
      const answer = this.answer(waiter.ref)
      if (!answer) return this.sendError(waiter.res, new HttpError(404, 'unknown-node', 'this node is no longer registered'))
      // Unchanged: the revision it is current at (a linked cluster's unrelated commit moves it without a change).
      waiter.res.writeHead(304, this.revisionHeaders(answer.version)).end()
    }, timeoutMs)
    waiter.res.on('close', () => this.finish(waiter))
    this.waiters.add(waiter)
    // An agent holding its poll open is alive: that is its heartbeat, and it costs the agent nothing.
    if (waiter.served === 'agent') this.reports.pollOpened(waiter.ref)
  }

  private finish(waiter: Waiter): void {
    clearTimeout(waiter.timer)
    if (this.waiters.delete(waiter) && waiter.served === 'agent') this.reports.pollClosed(waiter.ref)
  }

  private sendAnswer(res: ServerResponse, served: Served, answer: NodeAnswer, segments: string[], format: Format, path: string): void {
    let body: string | Buffer | readonly Buffer[]
    if (served === 'agent') body = agentBody(answer)
    else if (segments.length === 0 && format === 'json') body = selfChunks(answer)
    else {
      const tree = subtree(selfTree(answer), segments)
      if (tree === undefined) return this.sendError(res, new HttpError(404, 'no-such-path', `nothing at ${path}`), answer.version)
      body = render(tree, format, path)
    }
    this.sendText(res, 200, body, CONTENT_TYPES[format], this.revisionHeaders(answer.version))
  }

  private revisionHeaders(version: number): Record<string, string> {
    const headers: Record<string, string> = {'X-Shoal-Revision': String(version), 'Cache-Control': 'no-store'}
    const stale = this.mirror.stale
    if (stale) {
      headers['X-Shoal-Stale'] = 'true'
      headers['X-Shoal-Stale-Since'] = stale.since.toISOString()
    }
    return headers
  }

  private health(res: ServerResponse): void {
    const stale = this.mirror.stale
    const status = !this.mirror.ready ? 'starting' : stale ? 'stale' : 'ok'
    const body = {
      status,
      registry: this.options.store.description,
      revision: this.mirror.revision,
      clusters: this.mirror.clusterCount,
      long_polls: this.waiters.size,
      ...(stale ? {stale_since: stale.since.toISOString(), reason: stale.reason} : {}),
    }
    // A balancer in front of several metad processes should prefer one that sees the registry.
    this.sendText(res, status === 'ok' ? 200 : 503, `${JSON.stringify(body)}\n`, CONTENT_TYPES.json, {'Cache-Control': 'no-store'})
  }

  private gauges(): Parameters<Metrics['render']>[0] {
    return {openLongPolls: this.waiters.size, registryRevision: this.mirror.revision, stale: this.mirror.stale !== undefined, clusters: this.mirror.clusterCount, resyncs: this.mirror.resyncs}
  }

  private sendError(res: ServerResponse, error: unknown, version?: number): void {
    if (res.headersSent) return void res.destroy()
    const known = error instanceof HttpError
    if (!known) this.log(`internal error: ${(error as Error).stack ?? String(error)}`)
    const status = known ? error.status : 500
    const body = {error: {code: known ? error.code : 'internal', message: known ? error.message : 'metad failed to answer; see its log'}}
    this.sendText(res, status, `${JSON.stringify(body)}\n`, CONTENT_TYPES.json, version !== undefined ? this.revisionHeaders(version) : {'Cache-Control': 'no-store'})
  }

  /** Sends `body` (several buffers are written together, as one answer's bytes in one write). */
  private sendText(res: ServerResponse, status: number, body: string | Buffer | readonly Buffer[], contentType: string, headers: Record<string, string> = {}): void {
    if (this.closing) res.setHeader('Connection', 'close')
    const chunks = typeof body === 'string' || Buffer.isBuffer(body) ? [body] : body
    let length = 0
    for (const chunk of chunks) length += Buffer.byteLength(chunk)
    res.writeHead(status, {...headers, 'Content-Type': contentType, 'Content-Length': length})
    if (res.req.method === 'HEAD') return void res.end()
    res.cork()
    for (let i = 0; i < chunks.length - 1; i++) res.write(chunks[i])
    res.end(chunks.at(-1))
  }
}

function printOf(served: Served, answer: NodeAnswer, section: Section | undefined): string {
  return served === 'agent' ? agentFingerprint(answer) : fingerprint(answer, section)
}

const MAX_REPORT_BYTES = 256 * 1024
const REPORT_READ_MS = 10_000

/**
 * A request body up to `limit` bytes, read within a deadline. A larger one is read on and dropped (so the caller gets
 * its 413 rather than a reset connection), up to a point where the sender is just cut off.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (error?: Error): void => {
      clearTimeout(timer)
      if (error) reject(error)
      else if (size > limit) reject(new HttpError(413, 'report-too-large', `a report is at most ${limit} bytes`))
      else resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const timer = setTimeout(() => {
      done(new HttpError(408, 'request-timeout', 'the report did not arrive in time'))
      req.destroy()
    }, REPORT_READ_MS)
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
      else if (size > 16 * limit) req.destroy()
    })
    req.on('end', () => done())
    req.on('error', (error) => done(error))
    req.on('close', () => done(new HttpError(400, 'invalid-report', 'the report was cut off')))
  })
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(',') : value
}

/** `timeout=` as seconds (`30`) or a duration (`30s`, `500ms`, `2m`). */
function waitTimeout(text: string | null, fallback: number): number {
  if (text === null) return fallback
  const m = /^(\d+)(ms|s|m)?$/.exec(text)
  const ms = m ? Number(m[1]) * ({ms: 1, s: 1000, m: 60_000}[m[2] ?? 's'] ?? 1000) : NaN
  if (!(ms > 0) || ms > DEFAULTS.maxWaitMs) throw new HttpError(400, 'invalid-parameter', `timeout must be a duration up to 1h (e.g. 30 or 30s), not "${text}"`)
  return ms
}
