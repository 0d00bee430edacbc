// Flags shared by every command that talks to the registry: the embedded state directory or etcd.
import {Flags} from '@oclif/core'
import type {Store} from '../store/store.js'

export const storeFlags = {
  state: Flags.string({description: 'Embedded registry state directory (used when no etcd endpoints are given); or SHOAL_STATE', default: '.shoal', env: 'SHOAL_STATE', helpGroup: 'REGISTRY'}),
  etcd: Flags.string({description: 'Comma-separated etcd client URLs; the registry lives in etcd instead of --state', env: 'SHOAL_ETCD_ENDPOINTS', helpGroup: 'REGISTRY'}),
  'etcd-prefix': Flags.string({description: 'Key prefix of the metadata tree in etcd', default: '/shoal/', env: 'SHOAL_ETCD_PREFIX', helpGroup: 'REGISTRY'}),
  'etcd-ca': Flags.string({description: 'CA certificate file for etcd TLS', env: 'SHOAL_ETCD_CA', helpGroup: 'REGISTRY'}),
  'etcd-cert': Flags.string({description: 'Client certificate file for etcd TLS', env: 'SHOAL_ETCD_CERT', helpGroup: 'REGISTRY'}),
  'etcd-key': Flags.string({description: 'Client key file for etcd TLS', env: 'SHOAL_ETCD_KEY', helpGroup: 'REGISTRY'}),
  'etcd-user': Flags.string({description: 'etcd user (with SHOAL_ETCD_PASSWORD)', env: 'SHOAL_ETCD_USER', helpGroup: 'REGISTRY'}),
  'secrets-key-file': Flags.string({description: 'File holding the key secret values are stored encrypted with (32 bytes: raw, hex or base64); or the key itself in SHOAL_SECRETS_KEY', helpGroup: 'REGISTRY'}),
}

export interface StoreFlagValues {
  state: string
  etcd?: string
  'etcd-prefix': string
  'etcd-ca'?: string
  'etcd-cert'?: string
  'etcd-key'?: string
  'etcd-user'?: string
  'secrets-key-file'?: string
}

/**
 * Open the store the flags name. The etcd password and the secrets key come only from the environment or a file,
 * never from argv. `readOnly` (get, status, plan, render): an embedded state directory that does not exist is not
 * created, and nothing is written.
 */
export async function openStoreFromFlags(flags: StoreFlagValues, options: {readOnly?: boolean; sealedPlaceholder?: boolean} = {}): Promise<Store> {
  const [{openStore}, {readSecretsKey}] = await Promise.all([import('../store/open.js'), import('../store/sealed.js')])
  const key = readSecretsKey(flags['secrets-key-file'], process.env.SHOAL_SECRETS_KEY)
  return openStore({
    state: flags.state,
    ...(options.readOnly ? {readOnly: true} : {}),
    ...(options.sealedPlaceholder ? {sealedPlaceholder: true} : {}),
    ...(key ? {secretsKey: key} : {}),
    ...(flags.etcd !== undefined ? {etcd: flags.etcd} : {}),
    prefix: flags['etcd-prefix'],
    ...(flags['etcd-ca'] !== undefined ? {caFile: flags['etcd-ca']} : {}),
    ...(flags['etcd-cert'] !== undefined ? {certFile: flags['etcd-cert']} : {}),
    ...(flags['etcd-key'] !== undefined ? {keyFile: flags['etcd-key']} : {}),
    ...(flags['etcd-user'] !== undefined ? {user: flags['etcd-user'], password: process.env.SHOAL_ETCD_PASSWORD ?? ''} : {}),
  })
}
