// Flags shared by commands that change a cluster: registry-only mode and how long to wait for the cluster lock.
import {Flags} from '@oclif/core'
import {parseDuration} from '../util/units.js'
import {EXIT, ShoalError} from './base.js'

export const operationFlags = {
  'registry-only': Flags.boolean({description: 'Only register the change in the registry; run no scripts on hosts', default: false}),
  'lock-wait': Flags.string({description: 'How long to wait for another operation on the cluster to finish (a duration, e.g. 30s; 0 = fail at once)', default: '0s'}),
}

export function lockWaitMs(value: string): number {
  const ms = value === '0' ? 0 : parseDuration(value)
  if (ms === undefined) throw new ShoalError(`--lock-wait ${value} is not a duration such as 30s or 2m`, 'usage', EXIT.usage)
  return ms
}

/** The SSH executor is not built yet: say so instead of pretending a registry-only apply ran the scripts. */
export function requireRegistryOnly(registryOnly: boolean): void {
  if (!registryOnly) {
    throw new ShoalError('running lifecycle scripts on hosts is not available in this version; pass --registry-only to register the change without running scripts', 'executor-unavailable', EXIT.usage)
  }
}
