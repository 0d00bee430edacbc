// A steady stream of client operations against a cluster while shoal changes it, and what the clients saw: operations,
// failures, the longest stretch without a successful one, and latency. Used by the end-to-end tests and the benchmark.
//
// An operation is whatever a real client of the service does (an HTTP request through the lb, a znode write and read);
// it either resolves (success) or throws (failure, kept with its message). The generator retries nothing itself.
import {request} from 'node:http'

export interface LoadOptions {
  /** Clients running operations side by side, each one after the other. */
  clients: number
  /** Each client waits this long after an operation before its next one (a steady rate, not a flood). */
  pauseMs: number
}

export interface LoadReport {
  operations: number
  failed: number
  /** The first few failures, as `+<ms since start> <message>`. */
  failures: string[]
  /** Longest time without any client completing a successful operation (start and stop count as edges). */
  longestGapMs: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  durationMs: number
}

const KEPT_FAILURES = 10

export class Load {
  private readonly latencies: number[] = []
  private readonly failures: string[] = []
  private failed = 0
  private started = 0
  private lastSuccess = 0
  private longestGap = 0
  private running = false
  private clients: Array<Promise<void>> = []

  constructor(private readonly operation: (client: number) => Promise<void>, private readonly options: LoadOptions) {}

  start(): this {
    this.started = this.lastSuccess = performance.now()
    this.running = true
    this.clients = Array.from({length: this.options.clients}, (_, i) => this.client(i))
    return this
  }

  /** Stops the clients (each finishes the operation it is in) and reports. */
  async stop(): Promise<LoadReport> {
    this.running = false
    await Promise.all(this.clients)
    const end = performance.now()
    this.longestGap = Math.max(this.longestGap, end - this.lastSuccess)
    const sorted = [...this.latencies].sort((a, b) => a - b)
    const at = (p: number): number => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : 0
    return {
      operations: this.latencies.length, failed: this.failed, failures: this.failures,
      longestGapMs: Math.round(this.longestGap), p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(sorted.at(-1) ?? 0),
      durationMs: Math.round(end - this.started),
    }
  }

  private async client(index: number): Promise<void> {
    while (this.running) {
      const begun = performance.now()
      try {
        await this.operation(index)
        const done = performance.now()
        this.longestGap = Math.max(this.longestGap, done - this.lastSuccess)
        this.lastSuccess = Math.max(this.lastSuccess, done)
      } catch (error) {
        this.failed++
        if (this.failures.length < KEPT_FAILURES) this.failures.push(`+${Math.round(begun - this.started)}ms ${(error as Error).message}`)
      }
      this.latencies.push(performance.now() - begun)
      if (this.running) await new Promise((resolve) => setTimeout(resolve, this.options.pauseMs))
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10
}

/** One line for a test's message or the benchmark's table. */
export function describeLoad(report: LoadReport): string {
  return `${report.operations} operations in ${(report.durationMs / 1000).toFixed(1)} s, ${report.failed} failed, longest gap ${report.longestGapMs} ms, `
    + `latency p50 ${report.p50Ms} / p99 ${report.p99Ms} / max ${report.maxMs} ms${report.failures.length ? `; first failures: ${report.failures.join('; ')}` : ''}`
}

/**
 * A GET as a plain HTTP client makes it: a connection of its own (no keep-alive to race a closing server), the body
 * read whole. Anything but a 200 in time is a failure.
 */
export function httpGet(host: string, port: number, path = '/', timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({host, port, path, agent: false, timeout: timeoutMs}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body.trim().slice(0, 120)}`))))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** Runs `change` while `load` runs (started here), then stops the load and reports what its clients saw. */
export async function during(load: Load, change: () => Promise<unknown>): Promise<LoadReport> {
  load.start()
  try {
    await change()
  } catch (error) {
    await load.stop()
    throw error
  }
  return load.stop()
}
