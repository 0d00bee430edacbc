// Agents' reports written by metad, each to its own node's key. An agent is alive while it holds a long-poll open at
// metad (an idle agent sends nothing else): its key goes once its agent has neither reported nor held a poll for the
// TTL, and every key is under one lease metad holds, so all go when metad goes.
import {agentKey, type AgentReport} from '../registry/index.js'
import {StoreError, type Lease, type Op, type Store} from '../store/store.js'
import type {NodeRef} from './mirror.js'

/** How long a node's key outlives its agent's last report or poll: an agent asks again at once after each answer. */
export const REPORT_TTL_SECONDS = 30
/** Reports arriving this close together go to the registry in one transaction (50 agents woken by one commit). */
const BATCH_MS = 10
/** Well below etcd's default limit of 128 operations per transaction. */
const MAX_BATCH = 100

interface Held {
  /** The report as written, less `at`: an unchanged report costs no write. */
  written: string
  /** Runs while no poll of the node's agent is open: the key goes when it fires. */
  timer: NodeJS.Timeout | undefined
  /** Long-polls of the node's agent open now. */
  polls: number
  /** When the key was last written or seen in the registry (ms): a poll or an unchanged report looks again after half the TTL. */
  checked: number
}

interface Pending {
  written: string
  value: string
  done: Array<{resolve: () => void; reject: (error: Error) => void}>
}

export class Reports {
  private readonly held = new Map<string, Held>()
  private readonly pending = new Map<string, Pending>()
  private flushing: Promise<void> | undefined
  private flushTimer: NodeJS.Timeout | undefined
  private lease: Promise<Lease> | undefined
  private closed = false

  constructor(private readonly store: Store, private readonly ttlSeconds = REPORT_TTL_SECONDS) {}

  /** Keep `report` as the node's; resolves once it is in the registry (or was already). */
  async report(ref: NodeRef, report: Omit<AgentReport, 'at'>): Promise<void> {
    const key = agentKey(ref.cluster, ref.nodeId)
    const written = JSON.stringify(report)
    const held = this.tracked(key)
    this.alive(key, held)
    if (held.written === written && !this.pending.has(key) && await this.present(key, held)) return
    return this.write(key, written)
  }

  /** A long-poll of the node's agent is open: the agent is alive until it closes (and for the TTL after). */
  pollOpened(ref: NodeRef): void {
    const key = agentKey(ref.cluster, ref.nodeId)
    const held = this.tracked(key)
    held.polls++
    this.alive(key, held)
    // A report whose key went behind metad's back is put back while its agent is alive.
    if (held.written === '' || this.pending.has(key)) return
    void this.present(key, held).then((present) => (present ? undefined : this.write(key, held.written))).catch(() => undefined)
  }

  pollClosed(ref: NodeRef): void {
    const key = agentKey(ref.cluster, ref.nodeId)
    const held = this.held.get(key)
    if (!held || held.polls === 0) return
    held.polls--
    this.alive(key, held)
  }

  private tracked(key: string): Held {
    let held = this.held.get(key)
    if (!held) this.held.set(key, (held = {written: '', timer: undefined, polls: 0, checked: 0}))
    return held
  }

  /** The agent was heard from: its key's expiry starts again, or waits while one of its polls is open. */
  private alive(key: string, held: Held): void {
    clearTimeout(held.timer)
    held.timer = held.polls > 0 ? undefined : this.expiry(key)
  }

  /**
   * Whether the node's key is still in the registry. It can go without metad deleting it (the lease lapsed in a store
   * that was slow or away): looked at again once half the TTL has passed since it was last written or seen.
   */
  private async present(key: string, held: Held): Promise<boolean> {
    if (Date.now() - held.checked >= (this.ttlSeconds * 1000) / 2 && (await this.store.get(key)) === undefined) return false
    held.checked = Date.now()
    return true
  }

  private write(key: string, written: string): Promise<void> {
    // A newer report of the node replaces one not yet written: the registry only ever needs the latest.
    const value = JSON.stringify({...(JSON.parse(written) as Omit<AgentReport, 'at'>), at: new Date().toISOString()} satisfies AgentReport)
    const entry = this.pending.get(key) ?? {written, value, done: []}
    entry.written = written
    entry.value = value
    this.pending.set(key, entry)
    this.schedule()
    return new Promise((resolve, reject) => entry.done.push({resolve, reject}))
  }

  private schedule(): void {
    if (this.flushTimer || this.flushing) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined
        if (this.pending.size > 0) this.schedule()
      })
    }, BATCH_MS)
  }

  /** Write the pending reports, up to MAX_BATCH in one transaction, under the shared lease. */
  private async flush(): Promise<void> {
    const batch = [...this.pending.entries()].slice(0, MAX_BATCH)
    for (const [key] of batch) this.pending.delete(key)
    try {
      await this.put(batch)
      for (const [key, entry] of batch) {
        const held = this.held.get(key)
        if (held) {
          held.written = entry.written
          held.checked = Date.now()
        }
        for (const d of entry.done) d.resolve()
      }
    } catch (error) {
      for (const [, entry] of batch) for (const d of entry.done) d.reject(error as Error)
    }
  }

  private async put(batch: Array<[string, Pending]>, retried = false): Promise<void> {
    if (this.closed) throw new StoreError('metad is stopping', 'CLOSED')
    this.lease ??= this.store.grantLease(this.ttlSeconds)
    const lease = await this.lease.catch((error: unknown) => {
      this.lease = undefined
      throw error
    })
    const ops: Op[] = batch.map(([key, entry]) => ({type: 'put', key, value: entry.value, lease: lease.id}))
    try {
      await this.store.txn([], ops)
    } catch (error) {
      // The lease ran out in the store (metad was cut off from it longer than the TTL): start with a new one.
      if (!(error instanceof StoreError && error.code === 'LEASE_NOT_FOUND') || retried) throw error
      this.lease = undefined
      return this.put(batch, true)
    }
  }

  /** Neither a report nor an open poll within the TTL: the agent is gone, and so is its key. */
  private expiry(key: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (!this.held.delete(key)) return
      void this.store.txn([], [{type: 'delete', key}]).catch(() => undefined)
    }, this.ttlSeconds * 1000)
    timer.unref()
    return timer
  }

  /** metad stops: the keys stay until the lease runs out, as long as an agent takes to report to the next metad. */
  close(): void {
    this.closed = true
    clearTimeout(this.flushTimer)
    for (const held of this.held.values()) clearTimeout(held.timer)
    this.held.clear()
  }
}
