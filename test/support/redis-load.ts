// Client operations on a Redis Cluster as a real application makes them: ioredis's cluster client (it follows MOVED
// and ASK redirections and refreshes its slot map by itself), each operation a SET and a GET of the same key. What
// was acknowledged is kept, so afterwards every key can be checked to hold its last acknowledged value.
import {Cluster} from 'ioredis'

const KEYS_PER_CLIENT = 200

export class RedisLoadClient {
  private readonly cluster: Cluster
  /** Key → the last value a SET of it was acknowledged with. */
  private readonly acknowledged = new Map<string, string>()
  /** Keys whose last SET failed: their value is not known. */
  private readonly uncertain = new Set<string>()
  private readonly counters = new Map<number, number>()

  constructor(seeds: ReadonlyArray<{host: string; port: number}>) {
    // The library's defaults otherwise: its own redirection and slot-refresh behaviour is what is measured.
    this.cluster = new Cluster([...seeds], {lazyConnect: true})
    // Connection and slot-refresh trouble the library recovers from by itself; an operation it fails is counted there.
    this.cluster.on('error', (error: Error) => this.events.push(error.message))
  }

  /** The client's own error events (not failed operations), e.g. a slot-map refresh from a node that just left. */
  readonly events: string[] = []

  async connect(): Promise<void> {
    await this.cluster.connect()
  }

  /** One operation of client `client`: SET a key of its own to a new value, GET it back, and compare. */
  readonly operation = async (client: number): Promise<void> => {
    const n = (this.counters.get(client) ?? 0) + 1
    this.counters.set(client, n)
    const key = `load:{c${client}k${n % KEYS_PER_CLIENT}}`
    const value = String(n)
    try {
      await this.cluster.set(key, value)
    } catch (error) {
      this.uncertain.add(key)
      throw new Error(`SET ${key}: ${(error as Error).message}`)
    }
    this.acknowledged.set(key, value)
    this.uncertain.delete(key)
    const read = await this.cluster.get(key).catch((error: Error) => Promise.reject(new Error(`GET ${key}: ${error.message}`)))
    if (read !== value) throw new Error(`GET ${key} answered ${JSON.stringify(read)}, not the ${value} just written`)
  }

  /** Keys that do not hold their last acknowledged value now (read through the cluster), as `key: expected ≠ found`. */
  async lost(): Promise<string[]> {
    const lost: string[] = []
    for (const [key, value] of this.acknowledged) {
      if (this.uncertain.has(key)) continue
      const found = await this.cluster.get(key)
      if (found !== value) lost.push(`${key}: ${value} ≠ ${JSON.stringify(found)}`)
    }
    return lost
  }

  get keys(): number {
    return this.acknowledged.size
  }

  async close(): Promise<void> {
    await this.cluster.quit().catch(() => this.cluster.disconnect())
  }
}
