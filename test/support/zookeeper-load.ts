// Client operations on a ZooKeeper ensemble as an application makes them: one session (node-zookeeper-client, its own
// reconnection to another server of its connect string, no retries of its own by default), each operation a write of
// a znode and a read of it back. The session's state changes are kept, to show what the clients went through.
import zookeeper, {type Client} from 'node-zookeeper-client'

export class ZooKeeperLoadClient {
  private readonly client: Client
  private readonly counters = new Map<number, number>()
  /** `+ms state` for every session state change after connecting (disconnected, syncConnected, expired...). */
  readonly states: string[] = []
  private readonly started = performance.now()

  constructor(servers: ReadonlyArray<{host: string; port: number}>, private readonly root = '/shoal-load') {
    this.client = zookeeper.createClient(servers.map((s) => `${s.host}:${s.port}`).join(','), {sessionTimeout: 30_000})
    this.client.on('state', (state) => this.states.push(`+${Math.round(performance.now() - this.started)}ms ${String(state)}`))
  }

  /** Connects (bounded) and makes the root znode and one znode per client. */
  async connect(clients: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ZooKeeper session within 30 s')), 30_000)
      this.client.once('connected', () => {
        clearTimeout(timer)
        resolve()
      })
      this.client.connect()
    })
    for (let i = 0; i < clients; i++) {
      await new Promise<void>((resolve, reject) => this.client.mkdirp(`${this.root}/c${i}`, (error) => (error ? reject(error) : resolve())))
    }
  }

  /** One operation of client `index`: set its znode to a new value and read it back. */
  readonly operation = async (index: number): Promise<void> => {
    const n = (this.counters.get(index) ?? 0) + 1
    this.counters.set(index, n)
    const path = `${this.root}/c${index}`
    const value = Buffer.from(String(n))
    await new Promise<void>((resolve, reject) => this.client.setData(path, value, (error) => (error ? reject(new Error(`setData ${path}: ${String(error)}`)) : resolve())))
    const read = await new Promise<Buffer>((resolve, reject) => this.client.getData(path, (error, data) => (error ? reject(new Error(`getData ${path}: ${String(error)}`)) : resolve(data))))
    if (read.toString() !== value.toString()) throw new Error(`getData ${path} answered ${read.toString()}, not the ${n} just written`)
  }

  /** The value each client wrote last (with no failed operation, what its znode must hold). */
  written(clients: number): string[] {
    return Array.from({length: clients}, (_, i) => String(this.counters.get(i) ?? ''))
  }

  /** The last value each client's znode holds now, read back (missing ones as ''). */
  async values(clients: number): Promise<string[]> {
    const out: string[] = []
    for (let i = 0; i < clients; i++) {
      out.push(await new Promise<string>((resolve) => this.client.getData(`${this.root}/c${i}`, (error, data) => resolve(error ? '' : data.toString()))))
    }
    return out
  }

  close(): void {
    this.client.close()
  }
}
