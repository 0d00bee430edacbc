// `shoal unlock`: remove a cluster's operation lock left by a process that is gone.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Unlock extends BaseCommand {
  static override summary = "Force-remove a cluster's operation lock"
  static override description = 'A lock normally disappears with the process holding it (its lease expires). Use this only when you know the holder is gone: it needs --force and the lock id printed by the command that found the cluster locked (or by running this command without --id).'

  static override examples = ['<%= config.bin %> unlock zk-main', '<%= config.bin %> unlock zk-main --force --id 6f1c…']

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    force: Flags.boolean({description: 'Really remove the lock', default: false}),
    id: Flags.string({description: 'Id of the lock to remove (refused when the current lock has another id)'}),
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Unlock)
    const {readLock, forceUnlock} = await import('../registry/index.js')
    const store = await openStoreFromFlags(flags)
    try {
      const lock = await readLock(store, args.cluster)
      if (!lock) {
        if (this.jsonEnabled()) return {cluster: args.cluster, locked: false}
        this.log(`cluster ${args.cluster} is not locked`)
        return undefined
      }
      if (!flags.force || flags.id === undefined) {
        if (this.jsonEnabled() && !flags.force) return {cluster: args.cluster, locked: true, lock}
        const message = `cluster ${args.cluster} is locked by ${lock.holder}, running "${lock.operation}" since ${lock.started} (id ${lock.id}). To remove it: shoal unlock ${args.cluster} --force --id ${lock.id}`
        if (!flags.force) {
          this.log(message)
          return undefined
        }
        throw new ShoalError(`--force needs --id. ${message}`, 'usage', EXIT.usage)
      }
      const removed = await forceUnlock(store, args.cluster, flags.id)
      if (this.jsonEnabled()) return {cluster: args.cluster, removed}
      this.log(`removed lock ${removed.id} of ${args.cluster} (held by ${removed.holder}, "${removed.operation}" since ${removed.started})`)
      return undefined
    } finally {
      await store.close()
    }
  }
}
