// Agents' reports written by metad, each to its own node's key under a lease: a report that stops coming (agent dead,
// node gone, metad gone) lets the key vanish, so `shoal status` tells a live agent from a dead one.
import {agentKey, type AgentReport} from '../registry/index.js'
import {StoreError, type Lease, type Store} from '../store/store.js'
import type {NodeRef} from './mirror.js'

/** An agent reports at least this often (its heartbeat); a key outlives a missed report or two. */
export const REPORT_TTL_SECONDS = 30

interface Held {
  lease: Lease
  /** The report as written, less `at`: an unchanged heartbeat costs no write. */
  written: string
  timer: NodeJS.Timeout
}

export class Reports {
  private readonly held = new Map<string, Held>()
  /** Per node, the write in flight: reports of one node are written in the order they came. */
  private readonly writing = new Map<string, Promise<void>>()

  constructor(private readonly store: Store, private readonly ttlSeconds = REPORT_TTL_SECONDS) {}

  /** Keep `report` as the node's; resolves once it is in the registry (or was already). */
  report(ref: NodeRef, report: Omit<AgentReport, 'at'>): Promise<void> {
    const key = agentKey(ref.cluster, ref.nodeId)
    const previous = this.writing.get(key) ?? Promise.resolve()
    const next = previous.catch(() => undefined).then(() => this.write(key, report))
    this.writing.set(key, next)
    void next.finally(() => this.writing.get(key) === next && this.writing.delete(key)).catch(() => undefined)
    return next
  }

  private async write(key: string, report: Omit<AgentReport, 'at'>, retried = false): Promise<void> {
    const written = JSON.stringify(report)
    let held = this.held.get(key)
    if (held) {
      clearTimeout(held.timer)
      held.timer = this.expiry(key)
      if (held.written === written) return
    }
    if (!held) {
      const lease = await this.store.grantLease(this.ttlSeconds)
      held = {lease, written: '', timer: this.expiry(key)}
      this.held.set(key, held)
    }
    const value: AgentReport = {...report, at: new Date().toISOString()}
    try {
      await this.store.txn([], [{type: 'put', key, value: JSON.stringify(value), lease: held.lease.id}])
    } catch (error) {
      // The lease ran out in the store (metad was cut off from it longer than the TTL): start with a new one.
      if (!(error instanceof StoreError && error.code === 'LEASE_NOT_FOUND') || retried) throw error
      clearTimeout(held.timer)
      this.held.delete(key)
      return this.write(key, report, true)
    }
    held.written = written
  }

  /** No report within the TTL: the agent is gone, and so is its key. */
  private expiry(key: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const held = this.held.get(key)
      if (!held) return
      this.held.delete(key)
      void held.lease.revoke().catch(() => undefined)
    }, this.ttlSeconds * 1000)
    timer.unref()
    return timer
  }

  /** metad stops: the keys stay until their leases run out, as long as an agent takes to report to the next metad. */
  close(): void {
    for (const held of this.held.values()) clearTimeout(held.timer)
    this.held.clear()
  }
}
