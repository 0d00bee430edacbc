// `shoal rollback`: undo a cluster's unfinished operation as far as it can.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {inventoryHosts, lockFlags, operationOptions, outcomeText, reportOutcome, sshFlags} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'

export default class Rollback extends BaseCommand {
  static override summary = "Undo a cluster's unfinished operation as far as it can"
  static override description = `For an operation that failed or was interrupted (or abandoned with resume --abandon), under the cluster lock:
a create is undone whole: nodes stopped where their start ran, destroyed where their init ran, homes and files removed, and nothing of the cluster left in the registry;
a scale out: the joining nodes are stopped, destroyed and removed, the membership is restored and re-rendered on the members (reloaded where files change);
a scale in: the leaving nodes whose destroy has not run stay (started again where they were stopped); those already destroyed cannot be restored and their removal is completed;
an apply: back to the spec, templates and members registered before it.
What cannot be undone (scripts that ran on the members, destroyed nodes) is printed. The rollback is an operation of its own: when it fails, run it again, or fix forward.`

  static override examples = ['<%= config.bin %> rollback zk-main', '<%= config.bin %> rollback zk-main --lock-wait 30s']

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); default: the one recorded with the cluster'}),
    ...lockFlags,
    ...sshFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Rollback)
    const [{runOperation}, {planRollback, cannotUndo}, {readStoredInventory}] = await Promise.all([
      import('../lifecycle/operation.js'), import('../lifecycle/rollback.js'), import('../operation/record.js'),
    ])
    const given = await inventoryHosts(flags.hosts)
    const store = await openStoreFromFlags(flags)
    const options = await operationOptions(flags, this.jsonEnabled())
    let notes: string[] = []
    try {
      const outcome = await runOperation(store, {
        cluster: args.cluster,
        operation: {kind: 'rollback', of: 'unfinished'},
        ...(given ? {inventory: given} : {}),
        plan: async (standing) => {
          const planned = await planRollback(store, args.cluster, standing, {hosts: given ?? (await readStoredInventory(store, args.cluster)) ?? []})
          notes = cannotUndo(planned.plan, standing.facts)
          for (const note of notes) options.reporter.note(`cannot undo: ${note}`)
          return planned
        },
      }, options)
      const what = outcome.superseded ? `Rolled back "${outcome.superseded.title}" of ${args.cluster}` : `${args.cluster}: rolled back`
      const text = [outcome.changed ? `${what}: ${outcome.ran} step${outcome.ran === 1 ? '' : 's'} run.` : `${what}; nothing was left to undo.`, ...notes.map((n) => `  cannot undo: ${n}`)].join('\n')
      const json = reportOutcome(outcome, this.jsonEnabled(), (line) => this.log(line), outcome.changed ? text : text || outcomeText(outcome))
      return json ? {...json, ...(outcome.superseded ? {rolledBack: {id: outcome.superseded.id, title: outcome.superseded.title}} : {}), cannotUndo: notes} : undefined
    } finally {
      await store.close()
    }
  }
}
