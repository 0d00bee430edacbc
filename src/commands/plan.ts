// `shoal plan`: compile a spec against the inventory and the registry; print node changes, file diffs and steps.
import {Args, Flags, type Interfaces} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import {valueFlags} from '../cli/value-flags.js'
import type {DriftReport} from '../lifecycle/drift.js'
import type {Store} from '../store/store.js'

export default class Plan extends BaseCommand {
  static override summary = 'Show what applying a spec would change, without changing anything'
  static override description = `Compiles SPEC against the host inventory and what the registry holds for the cluster: every node (create / keep / remove, with the reason), unified diffs of each node's rendered files against the registered ones, and the ordered steps. Writes nothing except --out.
Exit codes: 0 success, 1 error; with --detailed-exitcode 0 no changes, 2 changes present, 1 error.`

  static override examples = [
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml',
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml --out zk.plan --detailed-exitcode',
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml --destroy',
    '<%= config.bin %> plan specs/zookeeper.yaml --hosts hosts.yaml --set tick_time=3000',
  ]

  static override strict = false
  static override args = {
    spec: Args.string({description: 'Cluster spec file; or several, or a directory: every Cluster spec below it, planned as one set', required: true}),
  }

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts)', required: true}),
    out: Flags.string({description: 'Save the plan to this file (mode 0600: it holds secret values) for `shoal apply`'}),
    destroy: Flags.boolean({description: 'Plan the removal of the whole cluster instead', default: false}),
    'detailed-exitcode': Flags.boolean({description: 'Exit 0 when nothing changes, 2 when something does', default: false}),
    refresh: Flags.boolean({description: 'Check every registered file on its host over SSH first: what differs (content, mode, missing) is shown as drift, with a diff, and the plan installs the registered files there again', default: false}),
    format: Flags.string({description: 'text, or markdown: a compact summary for a pull-request comment (secrets and files reading them hidden)', options: ['text', 'markdown'], default: 'text', exclusive: ['json']}),
    prune: Flags.boolean({description: 'With a set of specs: plan the removal of registered clusters the set no longer holds (otherwise listed as destroy candidates)', default: false}),
    ...valueFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {argv, flags} = await this.parse(Plan)
    const paths = argv as string[]
    const {isSpecSet} = await import('../workspace/spec-set.js')
    if (isSpecSet(paths)) return this.planSet(paths, flags)
    if (flags.prune) throw new ShoalError('--prune plans a set of specs (several files or a directory), not one spec', 'usage', EXIT.usage)
    const args = {spec: paths[0]!}
    const [{readClusterInput, readInventory}, {compile}, {writePlanFile, PLAN_FORMAT}, {renderPlan, redactPlan, hasChanges}, {readGivenValues}] = await Promise.all([
      import('../workspace/inputs.js'), import('../lifecycle/compile.js'), import('../lifecycle/plan-file.js'), import('../plan/show.js'), import('../workspace/values.js'),
    ])
    const input = readClusterInput(args.spec)
    const inventory = readInventory(flags.hosts)
    const given = readGivenValues(flags)
    const store = await openStoreFromFlags(flags, {readOnly: true})
    try {
      const drift = flags.refresh && !flags.destroy ? await this.refresh(store, input.spec.name, flags.hosts) : undefined
      const {plan, expectedModRevision} = await compile(store, {
        spec: input.spec, templates: input.templates, cluster: input.spec.name, inventory, operation: flags.destroy ? {kind: 'destroy'} : {kind: 'apply'}, given, ...(drift ? {drift} : {}),
      })
      if (flags.out) writePlanFile(flags.out, {format: PLAN_FORMAT, registry: store.description, expectedModRevision, plan})
      const changed = hasChanges(plan)
      if (flags['detailed-exitcode'] && changed) process.exitCode = EXIT.changes
      if (this.jsonEnabled()) return {changes: changed, expectedModRevision, plan: redactPlan(plan)}
      if (flags.format === 'markdown') {
        const {renderMarkdown} = await import('../plan/markdown.js')
        const action = !changed ? 'no changes' : flags.destroy ? 'destroy' : plan.baseRevision === 0 ? 'create' : 'change'
        process.stdout.write(renderMarkdown([{cluster: plan.cluster, action, plan}], `${plan.cluster}, ${action}`))
        return undefined
      }
      process.stdout.write(renderPlan(plan))
      if (flags.out) this.log(`\nSaved the plan to ${flags.out}; apply it with: shoal apply ${flags.out}`)
      return undefined
    } finally {
      await store.close()
    }
  }

  private async refresh(store: Store, cluster: string, hostsFile: string): Promise<DriftReport | undefined> {
    const [{refreshDrift}, {inventoryHosts}] = await Promise.all([import('../lifecycle/drift.js'), import('../cli/operation-flags.js')])
    return refreshDrift(store, cluster, (await inventoryHosts(hostsFile)) ?? [])
  }

  /** `plan DIR|FILE...`: every spec of the set in link order against the registry, then one summary. */
  private async planSet(paths: string[], flags: Interfaces.InferredFlags<typeof Plan.flags>): Promise<unknown> {
    if (flags.destroy) throw new ShoalError('--destroy plans the removal of one cluster; for a set, remove its spec and plan with --prune', 'usage', EXIT.usage)
    const [{readSpecSet}, {readInventory}, {planSet, renderSetSummary, setChanges}, {renderPlan, redactPlan}] = await Promise.all([
      import('../workspace/spec-set.js'), import('../workspace/inputs.js'), import('../lifecycle/plan-set.js'), import('../plan/show.js'),
    ])
    const inputs = await readSpecSet(paths)
    const {readGivenValues, givenPerCluster} = await import('../workspace/values.js')
    const given = givenPerCluster(readGivenValues(flags), inputs.map((i) => i.spec.name))
    const inventory = readInventory(flags.hosts)
    const store = await openStoreFromFlags(flags, {readOnly: true})
    try {
      const set = await planSet(store, inputs, inventory, {prune: flags.prune, given, ...(flags.refresh ? {refresh: (cluster: string) => this.refresh(store, cluster, flags.hosts)} : {})})
      if (flags['detailed-exitcode'] && setChanges(set)) process.exitCode = EXIT.changes
      if (flags.out) {
        const [{unsavable}, {writePlanFile, PLAN_SET_FORMAT}] = await Promise.all([import('../lifecycle/plan-set.js'), import('../lifecycle/plan-file.js')])
        const links = new Map(inputs.map((i) => [i.spec.name, Object.values(i.spec.links ?? {})]))
        const why = unsavable(set, links)
        if (why) throw new ShoalError(`the set cannot be saved as one plan: ${why}. Apply it with \`shoal apply ${paths.join(' ')}\` (each cluster planned in its turn), or in steps`, 'plan-set-unsavable', EXIT.failure)
        writePlanFile(flags.out, {format: PLAN_SET_FORMAT, registry: store.description, plans: set.entries.filter((e) => e.plan && e.action !== 'no-op').map((e) => ({expectedModRevision: e.expectedModRevision!, plan: e.plan!}))})
      }
      if (this.jsonEnabled()) {
        if (set.totals.error > 0) process.exitCode = EXIT.failure
        return {changes: setChanges(set), totals: set.totals, clusters: set.entries.map((e) => ({cluster: e.cluster, ...(e.path ? {path: e.path} : {}), action: e.action, ...(e.waitsFor ? {waitsFor: e.waitsFor} : {}), ...(e.error ? {error: e.error} : {}), ...(e.plan ? {plan: redactPlan(e.plan)} : {})}))}
      }
      if (flags.format === 'markdown') {
        const [{renderMarkdown}, {entryNote, setTotalsText}] = await Promise.all([import('../plan/markdown.js'), import('../lifecycle/plan-set.js')])
        process.stdout.write(renderMarkdown(set.entries.map((e) => ({cluster: e.cluster, action: e.action, ...(entryNote(e) ? {note: entryNote(e)} : {}), ...(e.plan ? {plan: e.plan} : {})})), setTotalsText(set)))
        if (set.totals.error > 0) process.exitCode = EXIT.failure
        return undefined
      }
      for (const e of set.entries) {
        if (!e.plan || e.action === 'no-op') continue
        process.stdout.write(`=== ${e.cluster}${e.path ? ` (${e.path})` : ''}\n${renderPlan(e.plan)}\n`)
      }
      process.stdout.write(renderSetSummary(set))
      if (flags.out) this.log(`\nSaved the plans to ${flags.out}; apply them with: shoal apply ${flags.out}`)
      if (set.totals.error > 0) process.exitCode = EXIT.failure
      return undefined
    } finally {
      await store.close()
    }
  }
}
