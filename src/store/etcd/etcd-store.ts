// The production store: etcd v3 through etcd3 1.1.2, keys under a prefix, with fail-fast fault handling.
// etcd3's defaults retry and then open a 5 s circuit breaker per host, so a CLI talking to a dead etcd hangs; here a
// call gets one deadline, is retried only when the request never reached a server (UNAVAILABLE: try the next
// member), and every failure becomes a StoreError that names the endpoints.
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {
  Etcd3,
  GRPCUnavailableError,
  type IOptions,
  type IOperation,
  type Lease as EtcdLease,
  type Namespace,
  type ComparatorBuilder,
  type Watcher,
} from 'etcd3'
import {
  StoreError,
  type Compare,
  type KeyValue,
  type Lease,
  type Op,
  type Store,
  type StoreCounters,
  type TxnResult,
  type Watch,
  type WatchEvent,
} from '../store.js'

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[]
  /** Every key lives under this prefix; default `/shoal/`. */
  prefix?: string
  tls?: {caFile?: string; certFile?: string; keyFile?: string}
  auth?: {user: string; password: string}
  /** Deadline of one unary call (get, range, txn, lease grant/revoke); default 5 s. */
  callTimeoutMs?: number
  /** etcd's server default is 128 (`--max-txn-ops`); tests lower it to exercise multi-transaction commits. */
  maxOpsPerTxn?: number
}

export const DEFAULT_ETCD_PREFIX = '/shoal/'

// cockatiel is etcd3's own dependency: resolve it from etcd3 so the policy objects match the ones etcd3 uses.
const requireFromEtcd3 = createRequire(createRequire(import.meta.url).resolve('etcd3'))
const cockatiel = requireFromEtcd3('cockatiel') as typeof import('cockatiel')

export class EtcdStore implements Store {
  readonly description: string
  readonly maxOpsPerTxn: number
  readonly counters: StoreCounters = {txns: 0, ops: 0, bytes: 0}
  private readonly client: Etcd3
  private readonly ns: Namespace
  private readonly prefix: string
  private readonly leases = new Set<EtcdLease>()
  private readonly watches = new Set<Watch>()
  private readonly callTimeoutMs: number
  private closed = false

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new StoreError('no etcd endpoints given', 'INVALID_REQUEST')
    this.prefix = options.prefix ?? DEFAULT_ETCD_PREFIX
    this.description = `etcd ${options.endpoints.join(',')} (prefix ${this.prefix})`
    this.maxOpsPerTxn = options.maxOpsPerTxn ?? 128
    this.callTimeoutMs = options.callTimeoutMs ?? 5000
    const timeout = this.callTimeoutMs
    const etcdOptions: IOptions = {
      hosts: options.endpoints,
      // Streams (watch, lease keepalive) live long; every unary call gets a deadline.
      defaultCallOptions: context => (context.isStream ? {} : {deadline: Date.now() + timeout}),
      faultHandling: {
        host: () => cockatiel.noop,
        // UNAVAILABLE covers a dead member (connection refused) and an election in progress (no leader): both
        // mean the request was not applied, and both pass within about a second, so retry ~2.5 s across members.
        global: cockatiel.retry(
          cockatiel.handleWhen(error => error instanceof GRPCUnavailableError),
          {maxAttempts: 6, backoff: new cockatiel.ExponentialBackoff({initialDelay: 50, maxDelay: 1000})},
        ),
      },
      grpcOptions: {'grpc.max_receive_message_length': 256 * 1024 * 1024},
    }
    const tlsFiles = options.tls && (options.tls.caFile || options.tls.certFile || options.tls.keyFile)
    if (tlsFiles || options.endpoints.some(e => e.startsWith('https:'))) {
      etcdOptions.credentials = {
        // grpc's createSsl uses the system roots when no CA is given; etcd3's type insists on a Buffer.
        rootCertificate: readTlsFile(options.tls?.caFile, 'CA certificate') as Buffer,
        ...(options.tls?.certFile ? {certChain: readTlsFile(options.tls.certFile, 'client certificate')} : {}),
        ...(options.tls?.keyFile ? {privateKey: readTlsFile(options.tls.keyFile, 'client key')} : {}),
      }
    }
    if (options.auth) etcdOptions.auth = {username: options.auth.user, password: options.auth.password}
    this.client = new Etcd3(etcdOptions)
    this.ns = this.client.namespace(this.prefix)
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call(`get ${key}`, () => this.ns.get(key).exec())
    const kv = res.kvs[0]
    // Unlike getAll(), a single get returns the key with the namespace prefix still on.
    return kv ? {...toKeyValue(kv), key} : undefined
  }

  async range(prefix: string, options: {revision?: number} = {}): Promise<{kvs: KeyValue[]; revision: number}> {
    const res = await this.call(`range ${prefix}`, () => {
      const builder = this.ns.getAll().prefix(prefix)
      if (options.revision !== undefined) builder.revision(options.revision)
      return builder.exec()
    })
    return {kvs: res.kvs.map(toKeyValue), revision: options.revision ?? Number(res.header.revision)}
  }

  async txn(compares: Compare[], ops: Op[]): Promise<TxnResult> {
    if (ops.length > this.maxOpsPerTxn) {
      throw new StoreError(`transaction has ${ops.length} ops; ${this.description} accepts at most ${this.maxOpsPerTxn}`, 'INVALID_REQUEST')
    }
    this.counters.txns++
    for (const op of ops) {
      this.counters.ops++
      this.counters.bytes += Buffer.byteLength(this.prefix) + Buffer.byteLength(op.type === 'deletePrefix' ? op.prefix : op.key)
      if (op.type === 'put') this.counters.bytes += Buffer.byteLength(op.value)
    }
    const res = await this.call('transaction', () => {
      let builder: ComparatorBuilder
      const [first, ...rest] = compares
      if (first) {
        builder = this.ns.if(first.key, first.target === 'mod' ? 'Mod' : 'Value', '==', first.equals)
        for (const c of rest) builder = builder.and(c.key, c.target === 'mod' ? 'Mod' : 'Value', '==', c.equals)
      } else {
        // The builder needs one compare; every key's mod revision is > -1, present or not.
        builder = this.ns.if(ops[0]?.type === 'deletePrefix' ? ops[0].prefix : (ops[0]?.key ?? ''), 'Mod', '>', -1)
      }
      return builder.then(...ops.map(op => this.toOperation(op))).commit()
    })
    return {succeeded: res.succeeded, revision: Number(res.header.revision)}
  }

  async watch(
    prefix: string,
    afterRevision: number,
    onEvents: (events: WatchEvent[]) => void,
    onError: (err: Error) => void,
  ): Promise<Watch> {
    this.assertOpen()
    let seen = afterRevision
    const watcher: Watcher = await this.call(`watch ${prefix}`, () =>
      withDeadline(this.ns.watch().prefix(prefix).startRevision(String(afterRevision + 1)).create(), this.callTimeoutMs, `watch ${prefix}`),
    )
    const handle: Watch = {
      close: async () => {
        this.watches.delete(handle)
        await watcher.cancel().catch(() => undefined)
      },
    }
    watcher.on('data', res => {
      const events: WatchEvent[] = res.events.map(ev => ({
        type: ev.type === 'Put' ? 'put' : 'delete',
        key: ev.kv.key.toString(),
        value: ev.type === 'Put' ? ev.kv.value.toString() : '',
        modRevision: Number(ev.kv.mod_revision),
      }))
      if (events.length === 0) return
      seen = events[events.length - 1]!.modRevision
      onEvents(events)
    })
    watcher.on('error', err => {
      this.watches.delete(handle)
      void this.explainWatchError(prefix, seen, err).then(onError)
    })
    this.watches.add(handle)
    return handle
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    const lease = this.ns.lease(ttlSeconds, {autoKeepAlive: true})
    lease.on('lost', () => this.leases.delete(lease)) // keys are gone with it; the next guarded write notices
    this.leases.add(lease)
    let id: string
    try {
      id = await this.call('lease grant', () => lease.grant())
    } catch (error) {
      this.leases.delete(lease)
      lease.release()
      throw error
    }
    return {
      id,
      revoke: async () => {
        this.leases.delete(lease)
        await this.call('lease revoke', () => lease.revoke())
      },
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    // Revoke first: an unrevoked lease keeps a keepalive stream (and the process) alive, and its keys would linger.
    await Promise.all([...this.leases].map(lease => lease.revoke().catch(() => lease.release())))
    this.leases.clear()
    await Promise.all([...this.watches].map(w => w.close()))
    this.closed = true
    this.client.close()
  }

  private toOperation(op: Op): IOperation {
    if (op.type === 'put') {
      const put = this.ns.put(op.key).value(op.value)
      return op.lease === undefined ? put : put.lease(op.lease)
    }
    if (op.type === 'delete') return this.ns.delete().key(op.key)
    return this.ns.delete().prefix(op.prefix)
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.assertOpen()
    try {
      return await fn()
    } catch (error) {
      throw this.toStoreError(what, error)
    }
  }

  private toStoreError(what: string, error: unknown): StoreError {
    if (error instanceof StoreError) return error
    const message = error instanceof Error ? error.message : String(error)
    if (/compacted/i.test(message)) return new StoreError(`${this.description}: ${what}: ${message} (etcd history was compacted)`, 'COMPACTED')
    if (/lease not found/i.test(message)) return new StoreError(`${this.description}: ${what}: ${message}`, 'LEASE_NOT_FOUND')
    if (/too many operations|duplicate key/i.test(message)) return new StoreError(`${this.description}: ${what}: ${message}`, 'INVALID_REQUEST')
    return new StoreError(
      `${this.description}: ${what} failed: ${message}; check that etcd is running and reachable (--etcd / SHOAL_ETCD_ENDPOINTS)`,
      'STORE_UNAVAILABLE',
    )
  }

  /** etcd cancels a watch whose start revision was compacted without saying so: probe the history to tell. */
  private async explainWatchError(prefix: string, seen: number, error: unknown): Promise<StoreError> {
    if (seen > 0) {
      try {
        await this.ns.getAll().prefix(prefix).revision(seen).limit(1).exec()
      } catch (probeError) {
        const mapped = this.toStoreError(`watch ${prefix}`, probeError)
        if (mapped.code === 'COMPACTED') {
          return new StoreError(`watch on "${prefix}" needs changes after revision ${seen}, which ${this.description} compacted; re-read and watch again`, 'COMPACTED')
        }
      }
    }
    return this.toStoreError(`watch ${prefix}`, error)
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError(`${this.description} is closed`, 'CLOSED')
  }
}

function toKeyValue(kv: {key: Buffer; value: Buffer; mod_revision: string; create_revision: string}): KeyValue {
  return {key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision), createRevision: Number(kv.create_revision)}
}

function readTlsFile(file: string | undefined, what: string): Buffer | undefined {
  if (!file) return undefined
  try {
    return readFileSync(file)
  } catch (error) {
    throw new StoreError(`cannot read etcd ${what} ${file}: ${(error as Error).message}`, 'INVALID_REQUEST')
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError(`${what}: no answer from etcd within ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
