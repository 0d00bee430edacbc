// Opens the store a command should use: etcd when endpoints are given (flag or SHOAL_ETCD_ENDPOINTS), else embedded.
import {SealedStore} from './sealed.js'
import {StoreError, type Store} from './store.js'

export interface OpenStoreOptions {
  /** Comma-separated etcd client URLs (`--etcd`); falls back to SHOAL_ETCD_ENDPOINTS. */
  etcd?: string
  /** Embedded state directory (`--state`); default `.shoal`. */
  state?: string
  /** etcd key prefix; default `/shoal/`. */
  prefix?: string
  caFile?: string
  certFile?: string
  keyFile?: string
  user?: string
  password?: string
  callTimeoutMs?: number
  /** Environment to read SHOAL_ETCD_ENDPOINTS from; default process.env. */
  env?: Record<string, string | undefined>
  /** Never create the embedded state directory, never write (read-only commands). */
  readOnly?: boolean
  /** Values holding a secret are stored encrypted with this key (store/sealed.ts); without it they are stored as given. */
  secretsKey?: Buffer
  /** A value stored encrypted that cannot be opened reads as a placeholder instead of failing (`get`, `status`). */
  sealedPlaceholder?: boolean
}

export const DEFAULT_STATE_DIR = '.shoal'

/** The store the options name, always behind the sealing layer (it decrypts what an earlier run encrypted). */
export async function openStore(options: OpenStoreOptions = {}): Promise<SealedStore> {
  return new SealedStore(await openInner(options), options.secretsKey, {placeholder: options.sealedPlaceholder === true})
}

async function openInner(options: OpenStoreOptions): Promise<Store> {
  const env = options.env ?? process.env
  const endpoints = parseEndpoints(options.etcd ?? env.SHOAL_ETCD_ENDPOINTS ?? '')
  if (endpoints.length > 0) {
    if ((options.user === undefined) !== (options.password === undefined)) {
      throw new StoreError('etcd authentication needs both a user and a password', 'INVALID_REQUEST')
    }
    // etcd3 costs ~76 ms to import: load it only when etcd is really used.
    const {EtcdStore} = await import('./etcd/etcd-store.js')
    return new EtcdStore({
      endpoints,
      ...(options.prefix !== undefined ? {prefix: options.prefix} : {}),
      tls: {caFile: options.caFile, certFile: options.certFile, keyFile: options.keyFile},
      ...(options.user !== undefined && options.password !== undefined ? {auth: {user: options.user, password: options.password}} : {}),
      ...(options.callTimeoutMs !== undefined ? {callTimeoutMs: options.callTimeoutMs} : {}),
    })
  }
  const {EmbeddedStore} = await import('./embedded/embedded-store.js')
  return EmbeddedStore.open({dir: options.state ?? DEFAULT_STATE_DIR, ...(options.readOnly ? {readOnly: true} : {})})
}

/** `http://a:2379, https://b:2379` → URLs; anything that is not an http(s) URL is refused with the offending entry. */
export function parseEndpoints(value: string): string[] {
  const endpoints = value
    .split(',')
    .map(s => s.trim())
    .filter(s => s.length > 0)
  for (const endpoint of endpoints) {
    let url: URL
    try {
      url = new URL(endpoint)
    } catch {
      throw new StoreError(`etcd endpoint "${endpoint}" is not a URL; expected e.g. http://127.0.0.1:2379`, 'INVALID_REQUEST')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new StoreError(`etcd endpoint "${endpoint}" must use http:// or https://`, 'INVALID_REQUEST')
    }
  }
  return endpoints
}
