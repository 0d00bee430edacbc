// `shoal apply`: apply a saved plan, or plan a spec and apply it at once (scripts and files on hosts, or --registry-only).
import {readFileSync} from 'node:fs'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {checkMetadFlag, inventoryHosts, lockWaitMs, metadFlags, operationFlags, operationOptions, reportOutcome, followText, followError} from '../cli/operation-flags.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import {valueFlags} from '../cli/value-flags.js'

export default class Apply extends BaseCommand {
  static override summary = 'Apply a saved plan, or a spec'
  static override description = `With a plan file (from \`shoal plan --out\`), applies exactly that plan; it is refused as stale when the cluster changed since it was made. With a spec, plans it under the cluster lock and applies it (create, or converge counts, files and env of a registered cluster).
Applying runs every step of the plan: registry commits, files placed on the nodes (reloaded where they changed), lifecycle scripts, health checks. With --registry-only only the registry commits run.
The operation is recorded and locked as \`apply\`. Clusters that link to this one follow it (re-rendered and reloaded where their files change).
Applying is idempotent: applying again changes nothing. When an earlier operation stopped (a failure, or the process died), applying a spec plans from what stands (registered nodes, scripts finished per node) and keeps finished work: fix the spec or its scripts and apply again. A saved plan resumes its own stopped operation instead (like \`shoal resume\`).`

  static override examples = [
    '<%= config.bin %> apply specs/zookeeper.yaml --hosts hosts.yaml',
    '<%= config.bin %> apply zk.plan',
    '<%= config.bin %> apply specs/zookeeper.yaml --hosts hosts.yaml --registry-only',
    '<%= config.bin %> apply specs/redis-cluster.yaml --hosts hosts.yaml --set-file password=secrets/new-password',
    '<%= config.bin %> apply specs/zookeeper.yaml --hosts hosts.yaml --unset tick_time',
  ]

  static override args = {target: Args.string({description: 'A plan file or a cluster spec file', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); required with a spec'}),
    ...metadFlags,
    ...valueFlags,
    ...operationFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Apply)
    const wait = lockWaitMs(flags['lock-wait'])
    const [{planAndRegister, registerSavedPlan}, {readPlanFile}, {renderPlan}] = await Promise.all([
      import('../lifecycle/apply.js'), import('../lifecycle/plan-file.js'), import('../plan/show.js'),
    ])
    const isPlanFile = readFileSync(args.target, 'utf8').trimStart().startsWith('{')
    if (!isPlanFile && !flags.hosts) throw new ShoalError('applying a spec needs --hosts FILE (the host inventory)', 'usage', EXIT.usage)
    const [{readClusterInput, readInventory}, {readGivenValues, givenDigestInput}] = await Promise.all([import('../workspace/inputs.js'), import('../workspace/values.js')])
    const given = readGivenValues(flags)
    if (isPlanFile && (given.values.size > 0 || given.unset.length > 0)) throw new ShoalError('a saved plan already holds its parameter values: --set, --values, --set-file and --unset go with `shoal plan`', 'usage', EXIT.usage)
    const saved = isPlanFile ? readPlanFile(args.target) : undefined
    const input = isPlanFile ? undefined : readClusterInput(args.target)
    const values = input ? givenDigestInput(given, input.spec) : undefined
    const store = await openStoreFromFlags(flags)
    try {
      if (!flags['registry-only']) {
        const [{runAndFollow}, {requestDigest}, {compile}, {savedPlanned}] = await Promise.all([
          import('../lifecycle/follow.js'), import('../operation/record.js'), import('../lifecycle/compile.js'), import('../lifecycle/apply.js'),
        ])
        const hosts = await inventoryHosts(flags.hosts)
        if (input) {
          const {readStoredMetadUrl} = await import('../operation/record.js')
          checkMetadFlag(input.spec, flags.metad, await readStoredMetadUrl(store, input.spec.name))
        }
        const operation = saved ? saved.plan.operation : {kind: 'apply' as const}
        const outcome = await runAndFollow(store, {
          cluster: saved ? saved.plan.cluster : input!.spec.name,
          operation,
          requestDigest: saved ? requestDigest({operation, plan: saved.plan}) : requestDigest({operation, spec: input!.spec, templates: input!.templates, ...(values ? {values} : {})}),
          ...(hosts ? {inventory: hosts} : {}),
          ...(flags.metad !== undefined ? {metad: flags.metad} : {}),
          ...(saved ? {unfinished: 'resume-same' as const} : {}),
          plan: saved
            ? () => savedPlanned(store, saved)
            : (standing) => compile(store, {cluster: input!.spec.name, spec: input!.spec, templates: input!.templates, inventory: {hosts: hosts ?? []}, operation, given, standing}),
        }, await operationOptions(flags, this.jsonEnabled()))
        return reportOutcome(outcome, this.jsonEnabled(), (text) => this.log(text))
      }
      const outcome = saved
        ? await registerSavedPlan(store, saved, wait)
        : await planAndRegister(store, {cluster: input!.spec.name, spec: input!.spec, templates: input!.templates, inventory: readInventory(flags.hosts!), operation: {kind: 'apply'}, lockWaitMs: wait, given})
      const {plan, changed, result} = outcome
      const {followInRegistry} = await import('../lifecycle/follow.js')
      const dependents = await followInRegistry(store, plan.cluster, wait, plan.operation.kind === 'destroy')
      if (!this.jsonEnabled()) {
        if (!isPlanFile) process.stdout.write(renderPlan(plan, {diffs: false}))
        const verb = plan.operation.kind === 'destroy' ? `Removed ${plan.cluster} from` : `Registered ${plan.cluster} at revision ${plan.revision} in`
        this.log(changed ? `\n${verb} ${store.description} (${result!.transactions} transaction${result!.transactions === 1 ? '' : 's'}).` : `${plan.cluster}: nothing to apply.`)
        for (const line of followText(dependents)) this.log(line)
      }
      const failed = followError(plan.cluster, dependents)
      if (failed) throw failed
      if (this.jsonEnabled()) return {cluster: plan.cluster, changed, revision: plan.revision, commits: result?.commits ?? 0, transactions: result?.transactions ?? 0, ...(dependents.length ? {dependents} : {})}
      return undefined
    } finally {
      await store.close()
    }
  }
}
