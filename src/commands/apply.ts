// `shoal apply`: apply a saved plan, or plan a spec and apply it at once (scripts and files on hosts, or --registry-only).
import {readFileSync} from 'node:fs'
import {Args, Flags, type Interfaces} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {checkMetadFlag, inventoryHosts, lockWaitMs, metadFlags, operationFlags, operationOptions, outcomeText, reportOutcome, followText, followError} from '../cli/operation-flags.js'
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

  static override strict = false
  static override args = {target: Args.string({description: 'A plan file or a cluster spec file; or several specs, or a directory: every Cluster spec below it, applied in link order', required: true})}

  static override flags = {
    hosts: Flags.string({description: 'Host inventory file (kind Hosts); required with a spec'}),
    refresh: Flags.boolean({description: 'With a spec or a set: check every registered file on its host first, and install the registered files again where they drifted (content, mode, missing)', default: false}),
    prune: Flags.boolean({description: 'With a set of specs: destroy the registered clusters the set no longer holds (after the others; never without this flag)', default: false}),
    ...metadFlags,
    ...valueFlags,
    ...operationFlags,
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {argv, flags} = await this.parse(Apply)
    const paths = argv as string[]
    const {isSpecSet} = await import('../workspace/spec-set.js')
    if (flags.refresh && flags['registry-only']) throw new ShoalError('--refresh puts drifted files back on the hosts: not with --registry-only', 'usage', EXIT.usage)
    if (isSpecSet(paths)) return this.applySet(paths, flags)
    if (flags.prune) throw new ShoalError('--prune applies a set of specs (several files or a directory), not one spec', 'usage', EXIT.usage)
    const args = {target: paths[0]!}
    const wait = lockWaitMs(flags['lock-wait'])
    const [{planAndRegister, registerSavedPlan}, {readAnyPlanFile}, {renderPlan}] = await Promise.all([
      import('../lifecycle/apply.js'), import('../lifecycle/plan-file.js'), import('../plan/show.js'),
    ])
    const isPlanFile = readFileSync(args.target, 'utf8').trimStart().startsWith('{')
    if (!isPlanFile && !flags.hosts) throw new ShoalError('applying a spec needs --hosts FILE (the host inventory)', 'usage', EXIT.usage)
    const [{readClusterInput, readInventory}, {readGivenValues, givenDigestInput}] = await Promise.all([import('../workspace/inputs.js'), import('../workspace/values.js')])
    const given = readGivenValues(flags)
    if (isPlanFile && (given.values.size > 0 || given.unset.length > 0)) throw new ShoalError('a saved plan already holds its parameter values: --set, --values, --set-file and --unset go with `shoal plan`', 'usage', EXIT.usage)
    // Read and parsed once (a saved plan of a large cluster is tens of MiB): one cluster's plan, or a set's.
    const savedAny = isPlanFile ? readAnyPlanFile(args.target) : undefined
    if (savedAny && 'plans' in savedAny) return this.applySavedSet(savedAny, flags)
    const saved = savedAny
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
        if (flags.refresh && !input) throw new ShoalError('a saved plan was made with or without --refresh already: give --refresh to `shoal plan`', 'usage', EXIT.usage)
        const {refreshDrift} = await import('../lifecycle/drift.js')
        const drift = flags.refresh && input ? await refreshDrift(store, input.spec.name, hosts ?? [], {acceptNewHostKeys: flags['accept-new-host-keys']}) : undefined
        if (drift && !this.jsonEnabled()) {
          const {renderDrift} = await import('../plan/show.js')
          this.log(renderDrift(drift.drift, drift.unchecked, false).trim())
        }
        const outcome = await runAndFollow(store, {
          cluster: saved ? saved.plan.cluster : input!.spec.name,
          operation,
          requestDigest: saved ? requestDigest({operation, plan: saved.plan}) : requestDigest({operation, spec: input!.spec, templates: input!.templates, ...(values ? {values} : {})}),
          ...(hosts ? {inventory: hosts} : {}),
          ...(flags.metad !== undefined ? {metad: flags.metad} : {}),
          ...(saved ? {unfinished: 'resume-same' as const} : {}),
          plan: saved
            ? () => savedPlanned(store, saved)
            : (standing) => compile(store, {cluster: input!.spec.name, spec: input!.spec, templates: input!.templates, inventory: {hosts: hosts ?? []}, operation, given, standing, ...(drift ? {drift} : {})}),
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

  /** Runs one cluster's turn of a set: its header and output, or an error saying what was applied and what was not. */
  private async inTurn(all: readonly string[], done: string[], cluster: string, work: () => Promise<string>): Promise<void> {
    const json = this.jsonEnabled()
    if (!json) this.log(`=== ${cluster}`)
    try {
      const text = await work()
      done.push(cluster)
      if (!json) this.log(text)
    } catch (error) {
      const left = all.filter((n) => n !== cluster && !done.includes(n))
      const message = `${(error as Error).message}\n${done.length ? `Applied: ${done.join(', ')}. ` : ''}Stopped at ${cluster}${left.length ? `; not applied: ${left.join(', ')}` : ''}.`
      throw new ShoalError(message, error instanceof ShoalError ? error.code : 'apply-failed', EXIT.failure)
    }
  }

  /** A saved plan of a set: each cluster's saved plan in its turn, refused as stale like one saved plan. */
  private async applySavedSet(set: import('../lifecycle/plan-file.js').SavedPlanSet, flags: Interfaces.InferredFlags<typeof Apply.flags>): Promise<unknown> {
    if (flags.set?.length || flags.values?.length || flags['set-file']?.length || flags.unset?.length) throw new ShoalError('a saved plan already holds its parameter values: --set, --values, --set-file and --unset go with `shoal plan`', 'usage', EXIT.usage)
    if (flags.refresh) throw new ShoalError('a saved plan was made with or without --refresh already: give --refresh to `shoal plan`', 'usage', EXIT.usage)
    const [{registerSavedPlan, savedPlanned}, {runAndFollow, followInRegistry}, {requestDigest}, {PLAN_FORMAT}] = await Promise.all([
      import('../lifecycle/apply.js'), import('../lifecycle/follow.js'), import('../operation/record.js'), import('../lifecycle/plan-file.js'),
    ])
    const wait = lockWaitMs(flags['lock-wait'])
    const store = await openStoreFromFlags(flags)
    const done: string[] = []
    try {
      const options = flags['registry-only'] ? undefined : await operationOptions(flags, this.jsonEnabled())
      const hosts = await inventoryHosts(flags.hosts)
      const all = set.plans.map((p) => p.plan.cluster)
      // Every plan is checked before any is applied: a set half applied because a later plan was stale helps nobody.
      const {readRegistered} = await import('../lifecycle/registered.js')
      const stale: string[] = []
      for (const entry of set.plans) {
        const {snapshot} = await readRegistered(store, entry.plan.cluster)
        if (snapshot.revisionModRevision !== entry.expectedModRevision) stale.push(entry.plan.cluster)
      }
      if (stale.length) throw new ShoalError(`the plan is stale: ${stale.join(', ')} changed since the plans were made; nothing was applied; plan again`, 'plan-stale', EXIT.failure)
      for (const entry of set.plans) {
        const saved = {format: PLAN_FORMAT as typeof PLAN_FORMAT, registry: set.registry, ...entry}
        const name = entry.plan.cluster
        await this.inTurn(all, done, name, async () => {
          if (flags['registry-only']) {
            const {plan, changed} = await registerSavedPlan(store, saved, wait)
            const dependents = await followInRegistry(store, name, wait, plan.operation.kind === 'destroy')
            return [changed ? `Registered ${name} at revision ${plan.revision}.` : `${name}: nothing to apply.`, ...followText(dependents)].join('\n')
          }
          const operation = entry.plan.operation
          const outcome = await runAndFollow(store, {
            cluster: name, operation, requestDigest: requestDigest({operation, plan: entry.plan}), ...(hosts ? {inventory: hosts} : {}),
            ...(flags.metad !== undefined ? {metad: flags.metad} : {}), unfinished: 'resume-same', plan: () => savedPlanned(store, saved),
          }, options!)
          const error = followError(name, outcome.dependents ?? [])
          if (error) throw error
          return [outcomeText({...outcome, dependents: []}), ...followText(outcome.dependents ?? [])].join('\n')
        })
      }
      if (this.jsonEnabled()) return {clusters: done}
      return undefined
    } finally {
      await store.close()
    }
  }

  /**
   * `apply DIR|FILE...`: each spec in link order, as `apply SPEC` does it (linked clusters follow each); the first that
   * fails stops the rest (they may link to it). Registered clusters the set does not hold are destroyed with --prune,
   * after the others, and only when no cluster of the set links to them; otherwise they are listed.
   */
  private async applySet(paths: string[], flags: Interfaces.InferredFlags<typeof Apply.flags>): Promise<unknown> {
    if (!flags.hosts) throw new ShoalError('applying specs needs --hosts FILE (the host inventory)', 'usage', EXIT.usage)
    const [{readSpecSet, linkOrder}, {readInventory}, {listClusters}, {planAndRegister}, {followInRegistry, runAndFollow}, {requestDigest, readStoredMetadUrl}, {compile}, {readRegistered}] = await Promise.all([
      import('../workspace/spec-set.js'), import('../workspace/inputs.js'), import('../registry/index.js'), import('../lifecycle/apply.js'), import('../lifecycle/follow.js'),
      import('../operation/record.js'), import('../lifecycle/compile.js'), import('../lifecycle/registered.js'),
    ])
    const inputs = await readSpecSet(paths)
    const {readGivenValues, givenPerCluster, givenDigestInput} = await import('../workspace/values.js')
    const givenByCluster = givenPerCluster(readGivenValues(flags), inputs.map((i) => i.spec.name))
    const wait = lockWaitMs(flags['lock-wait'])
    const store = await openStoreFromFlags(flags)
    const done: string[] = []
    const json = this.jsonEnabled()
    try {
      const inSet = new Set(inputs.map((i) => i.spec.name))
      const candidates = (await listClusters(store)).filter((name) => !inSet.has(name))
      const kept = new Map<string, string[]>()
      for (const name of candidates) {
        const {state} = await readRegistered(store, name)
        kept.set(name, Object.values(state?.links ?? {}))
      }
      if (flags.prune) {
        const needed = inputs.flatMap((i) => Object.values(i.spec.links ?? {}).filter((t) => kept.has(t)).map((t) => `${i.spec.name} links to ${t}`))
        if (needed.length) throw new ShoalError(`--prune would destroy clusters the specs still link to (${needed.join('; ')}); nothing was applied`, 'prune-linked', EXIT.failure)
      }
      const options = flags['registry-only'] ? undefined : await operationOptions(flags, json)
      const hosts = flags['registry-only'] ? undefined : await inventoryHosts(flags.hosts)
      const inventory = readInventory(flags.hosts)
      const all = [...inputs.map((i) => i.spec.name), ...(flags.prune ? candidates : [])]
      const step = (cluster: string, work: () => Promise<string>): Promise<void> => this.inTurn(all, done, cluster, work)
      for (const input of inputs) {
        const name = input.spec.name
        const given = givenByCluster.get(name)!
        const values = givenDigestInput(given, input.spec)
        await step(name, async () => {
          if (flags['registry-only']) {
            const {plan, changed} = await planAndRegister(store, {cluster: name, spec: input.spec, templates: input.templates, inventory, operation: {kind: 'apply'}, lockWaitMs: wait, given})
            const dependents = await followInRegistry(store, name, wait, false)
            return [changed ? `Registered ${name} at revision ${plan.revision}.` : `${name}: nothing to apply.`, ...followText(dependents)].join('\n')
          }
          checkMetadFlag(input.spec, flags.metad, await readStoredMetadUrl(store, name))
          const drift = flags.refresh ? await (await import('../lifecycle/drift.js')).refreshDrift(store, name, hosts ?? [], {acceptNewHostKeys: flags['accept-new-host-keys']}) : undefined
          if (drift && !json) this.log((await import('../plan/show.js')).renderDrift(drift.drift, drift.unchecked, false).trim())
          const operation = {kind: 'apply' as const}
          const outcome = await runAndFollow(store, {
            cluster: name, operation, requestDigest: requestDigest({operation, spec: input.spec, templates: input.templates, ...(values ? {values} : {})}), ...(hosts ? {inventory: hosts} : {}),
            ...(flags.metad !== undefined ? {metad: flags.metad} : {}),
            plan: (standing) => compile(store, {cluster: name, spec: input.spec, templates: input.templates, inventory: {hosts: hosts ?? []}, operation, given, standing, ...(drift ? {drift} : {})}),
          }, options!)
          const error = followError(name, outcome.dependents ?? [])
          if (error) throw error
          return [outcomeText({...outcome, dependents: []}), ...followText(outcome.dependents ?? [])].join('\n')
        })
      }
      // Dependents first: a candidate that links to another goes before it.
      const pruneOrder = linkOrder(candidates.map((name) => ({name, links: kept.get(name) ?? []}))).reverse()
      for (const name of flags.prune ? pruneOrder : []) {
        await step(name, async () => {
          if (flags['registry-only']) {
            const {changed} = await planAndRegister(store, {cluster: name, inventory, operation: {kind: 'destroy'}, lockWaitMs: wait})
            return changed ? `Removed ${name} from ${store.description}.` : `${name}: nothing to remove.`
          }
          const operation = {kind: 'destroy' as const}
          const outcome = await runAndFollow(store, {
            cluster: name, operation, requestDigest: requestDigest({operation}), ...(hosts ? {inventory: hosts} : {}),
            plan: (standing) => compile(store, {cluster: name, inventory: {hosts: hosts ?? []}, operation, standing}),
          }, options!)
          return `${outcomeText({...outcome, dependents: []})}${outcome.changed ? ` ${name} is gone from its hosts and from ${store.description}.` : ''}`
        })
      }
      const left = flags.prune ? [] : candidates
      if (!json && left.length) this.log(`\nDestroy candidates (registered, not in the specs; apply with --prune destroys them): ${left.join(', ')}`)
      if (json) return {clusters: done, ...(left.length ? {destroyCandidates: left} : {})}
      return undefined
    } finally {
      await store.close()
    }
  }
}
