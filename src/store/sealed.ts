// Secrets at rest: a layer over any Store that stores each value holding a secret encrypted (AES-256-GCM, node:crypto)
// and decrypts on every read, so the registry, plans and scripts above it only ever see plain values.
//
// Which values: every put whose value contains a secret the caller declared with `protect` (the plan's secret values,
// raw or JSON-escaped, as redaction finds them: an env value, a rendered file or the recorded plan holding it), and
// any value that was read sealed (written back by a rollback). Format: `shoal-sealed:v1:<key id>:<base64 iv|tag|data>`,
// the store key as additional data (a sealed value moved to another key does not open). Without a key nothing is
// sealed; a sealed value read without the key is an error naming the flag, or a placeholder for `get` and `status`.
import {createCipheriv, createDecipheriv, createHash, randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {secretForms} from '../plan/show.js'
import {EXIT, ShoalError} from '../errors.js'
import type {Compare, KeyValue, Lease, Op, Store, StoreCounters, TxnResult, Watch, WatchEvent} from './store.js'

const PREFIX = 'shoal-sealed:v1:'
export const SEALED_PLACEHOLDER = '<encrypted: give --secrets-key-file or SHOAL_SECRETS_KEY to read it>'

/** The key from `--secrets-key-file` (raw 32 bytes, hex or base64) or SHOAL_SECRETS_KEY (hex or base64); the file wins. */
export function readSecretsKey(file: string | undefined, envValue: string | undefined): Buffer | undefined {
  let bytes: Buffer
  let from: string
  if (file !== undefined) {
    try {
      bytes = readFileSync(file)
    } catch (error) {
      throw new ShoalError(`--secrets-key-file ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'path-not-found', EXIT.usage)
    }
    from = `--secrets-key-file ${file}`
  } else if (envValue !== undefined && envValue !== '') {
    bytes = Buffer.from(envValue)
    from = 'SHOAL_SECRETS_KEY'
  } else return undefined
  if (bytes.length === 32) return bytes
  const text = bytes.toString('utf8').trim()
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex')
  const decoded = Buffer.from(text, 'base64')
  if (decoded.length === 32 && /^[A-Za-z0-9+/_-]+=*$/.test(text)) return decoded
  throw new ShoalError(`${from} is not a 32-byte key (give 32 raw bytes, 64 hex digits or base64 of 32 bytes, e.g. from \`openssl rand -hex 32\`)`, 'invalid-key', EXIT.usage)
}

function keyId(key: Buffer): string {
  return createHash('sha256').update('shoal secrets key').update(key).digest('hex').slice(0, 12)
}

export class SealedStore implements Store {
  private forms: string[] = []
  private readonly readSealed = new Set<string>()
  private readonly id: string | undefined

  /** `placeholder`: a sealed value that cannot be opened reads as SEALED_PLACEHOLDER instead of failing (get, status). */
  constructor(readonly inner: Store, private readonly key?: Buffer, private readonly options: {placeholder?: boolean} = {}) {
    this.id = key ? keyId(key) : undefined
  }

  get description(): string {
    return this.inner.description
  }
  get maxOpsPerTxn(): number {
    return this.inner.maxOpsPerTxn
  }
  get counters(): StoreCounters {
    return this.inner.counters
  }
  /** Whether values holding secrets are stored encrypted. */
  get sealing(): boolean {
    return this.key !== undefined
  }

  /** Values containing any of these are stored sealed from now on (in this process). */
  protect(secrets: readonly string[]): void {
    this.forms = secretForms([...new Set([...this.forms, ...secrets])])
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const kv = await this.inner.get(key)
    return kv && {...kv, value: this.open(key, kv.value)}
  }

  async range(prefix: string, options?: {revision?: number}): Promise<{kvs: KeyValue[]; revision: number}> {
    const result = await this.inner.range(prefix, options)
    return {revision: result.revision, kvs: result.kvs.map((kv) => (kv.value.startsWith(PREFIX) ? {...kv, value: this.open(kv.key, kv.value)} : kv))}
  }

  txn(compares: Compare[], ops: Op[]): Promise<TxnResult> {
    if (!this.key) return this.inner.txn(compares, ops)
    return this.inner.txn(compares, ops.map((op) => (op.type === 'put' && this.holdsSecret(op.value) ? {...op, value: this.seal(op.key, op.value)} : op)))
  }

  watch(prefix: string, afterRevision: number, onEvents: (events: WatchEvent[]) => void, onError: (err: Error) => void): Promise<Watch> {
    return this.inner.watch(prefix, afterRevision, (events) => {
      let opened: WatchEvent[]
      try {
        opened = events.map((e) => (e.value.startsWith(PREFIX) ? {...e, value: this.open(e.key, e.value)} : e))
      } catch (error) {
        onError(error as Error)
        return
      }
      onEvents(opened)
    }, onError)
  }

  grantLease(ttlSeconds: number): Promise<Lease> {
    return this.inner.grantLease(ttlSeconds)
  }

  async compact(revision: number): Promise<void> {
    await this.inner.compact?.(revision)
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  private holdsSecret(value: string): boolean {
    return this.readSealed.has(value) || this.forms.some((form) => value.includes(form))
  }

  private seal(key: string, value: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.key!, iv)
    cipher.setAAD(Buffer.from(key))
    const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()])
    return `${PREFIX}${this.id!}:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64')}`
  }

  private open(key: string, stored: string): string {
    if (!stored.startsWith(PREFIX)) return stored
    const rest = stored.slice(PREFIX.length)
    const colon = rest.indexOf(':')
    const id = rest.slice(0, colon)
    const fail = (why: string): string => {
      if (this.options.placeholder) return SEALED_PLACEHOLDER
      throw new ShoalError(`${this.description}: ${key} is stored encrypted ${why}`, 'secrets-key', EXIT.failure)
    }
    if (!this.key) return fail('and no key was given: pass --secrets-key-file FILE or set SHOAL_SECRETS_KEY')
    if (id !== this.id) return fail(`with another key (key id ${id}; the key given has id ${this.id!})`)
    const raw = Buffer.from(rest.slice(colon + 1), 'base64')
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12))
      decipher.setAAD(Buffer.from(key))
      decipher.setAuthTag(raw.subarray(12, 28))
      const value = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
      this.readSealed.add(value)
      return value
    } catch {
      return fail('and does not open with the key given (altered, or moved from another key)')
    }
  }
}

/** Declare a plan's secrets to the store it will be written to (only a SealedStore cares). */
export function protectSecrets(store: Store, secrets: readonly string[]): void {
  if (store instanceof SealedStore) store.protect(secrets)
}
