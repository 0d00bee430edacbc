// `shoal get`: print registered clusters, or one cluster's metadata tree (or a subtree of it).
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import type {Store} from '../store/store.js'
import {quoteControl} from '../util/text.js'

function secretNames(keys: Record<string, string>): string[] {
  return Object.keys(keys).filter((k) => k.startsWith('env-secret/') && keys[k] === 'true').map((k) => k.slice('env-secret/'.length))
}

interface EnvEntry {
  value: string
  /** `default`, `--set`, `--set-file PATH` or `FILE:LINE:COL` (clusters registered before sources were kept: `default`). */
  source: string
  secret: boolean
}

/** `get CLUSTER env`: each parameter's value (secrets redacted) and where it came from. */
function envEntries(keys: Record<string, string>, redacted: Record<string, string>): Record<string, EnvEntry> {
  const secret = new Set(secretNames(keys))
  const out: Record<string, EnvEntry> = {}
  for (const key of Object.keys(keys).filter((k) => k.startsWith('env/')).sort()) {
    const name = key.slice('env/'.length)
    out[name] = {value: redacted[key]!, source: keys[`env-source/${name}`] ?? 'default', secret: secret.has(name)}
  }
  return out
}

/** Nest `a/b/c = v` keys into objects for --json and --yaml. */
function nest(keys: Record<string, string>): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(keys)) {
    const parts = key.split('/')
    let node = root
    for (const part of parts.slice(0, -1)) {
      const next = node[part]
      node = (typeof next === 'object' && next !== null ? next : (node[part] = {})) as Record<string, unknown>
    }
    node[parts.at(-1)!] = value
  }
  return root
}

/** Keys as a spec is written (the registry keeps them sorted): the listed ones first, the rest after in their order. */
const SPEC_ORDER: Record<string, string[]> = {
  spec: ['apiVersion', 'kind', 'name', 'description', 'agent', 'links', 'env', 'roles', 'update'],
  role: ['description', 'image', 'cpu', 'memory', 'disk', 'count', 'scale', 'server_id', 'placement', 'files', 'services', 'actions', 'health_check'],
  param: ['type', 'description', 'secret', 'default'],
}

function ordered(value: Record<string, unknown>, order: string[]): Record<string, unknown> {
  const keys = [...order.filter((k) => k in value), ...Object.keys(value).filter((k) => !order.includes(k))]
  return Object.fromEntries(keys.map((k) => [k, value[k]]))
}

function inSpecOrder(spec: Record<string, unknown>): Record<string, unknown> {
  const mapValues = (v: unknown, order: string[]): unknown =>
    typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'object' && x !== null ? ordered(x as Record<string, unknown>, order) : x])) : v
  return ordered({...spec, ...('roles' in spec ? {roles: mapValues(spec.roles, SPEC_ORDER.role!)} : {}), ...('env' in spec ? {env: mapValues(spec.env, SPEC_ORDER.param!)} : {})}, SPEC_ORDER.spec!)
}

export default class Get extends BaseCommand {
  static override summary = 'Print registered clusters or a cluster’s metadata tree'
  static override description = `Without arguments, lists the registered clusters. With CLUSTER, prints its metadata tree (every key relative to \`clusters/<cluster>/\`); PATH narrows it to a subtree such as \`hosts/zk\`. Secret env values, and the files whose template reads a secret, are redacted.
PATH \`env\` prints each parameter's value with where it came from: \`default\` (the spec's default, which follows the spec), \`--set\`, \`--set-file PATH\` or \`FILE:LINE:COL\` of a values file (given values stay registered until changed or --unset).`

  static override examples = ['<%= config.bin %> get', '<%= config.bin %> get zk-main', '<%= config.bin %> get zk-main hosts/zk --yaml', '<%= config.bin %> get zk-main env', '<%= config.bin %> get zk-main --spec']

  static override args = {
    cluster: Args.string({description: 'Cluster name'}),
    path: Args.string({description: 'Subtree, e.g. hosts/zk or cluster/revision'}),
  }

  static override flags = {
    yaml: Flags.boolean({description: 'Print the tree as YAML', default: false, exclusive: ['json']}),
    spec: Flags.boolean({
      description: 'Print the spec the cluster is registered with instead, counts as they stand (after `shoal scale` too), to bring a repository in line; secret defaults left out',
      default: false,
      exclusive: ['yaml'],
    }),
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Get)
    const {listClusters, readCluster} = await import('../registry/index.js')
    const store = await openStoreFromFlags(flags, {readOnly: true, sealedPlaceholder: true})
    try {
      if (args.cluster === undefined) {
        const clusters = await listClusters(store)
        if (this.jsonEnabled()) return {clusters}
        if (clusters.length === 0) this.log(`no clusters registered in ${store.description}`)
        for (const name of clusters) this.log(name)
        return undefined
      }
      const snapshot = await readCluster(store, args.cluster)
      if (snapshot.revisionModRevision === 0) throw new ShoalError(`cluster ${args.cluster} is not registered in ${store.description}`, 'not-registered', EXIT.failure)
      if (flags.spec) return await this.printSpec(store, args.cluster)
      const path = (args.path ?? '').replace(/^\/+|\/+$/g, '')
      // Secret values and the files whose template reads a secret are hidden (the redaction plans use).
      const {redactTree} = await import('../plan/show.js')
      const redacted = redactTree(args.cluster, snapshot.keys)
      if (path === 'env') {
        const env = envEntries(snapshot.keys, redacted)
        if (this.jsonEnabled()) return {cluster: args.cluster, revision: snapshot.revision, env}
        if (flags.yaml) {
          const {stringify} = await import('yaml')
          process.stdout.write(quoteControl(stringify(env)))
          return undefined
        }
        if (Object.keys(env).length === 0) this.log(`cluster ${args.cluster} has no env parameters`)
        for (const [name, e] of Object.entries(env)) this.log(quoteControl(`${name} = ${e.value}  (${e.source === 'default' ? 'default' : `from ${e.source}`}${e.secret ? ', secret' : ''})`))
        return undefined
      }
      const selected: Record<string, string> = {}
      for (const [k, v] of Object.entries(redacted)) {
        if (path === '' || k === path || k.startsWith(`${path}/`)) selected[k] = v
      }
      if (Object.keys(selected).length === 0) throw new ShoalError(`no key ${path} in cluster ${args.cluster}`, 'not-found', EXIT.failure)
      if (this.jsonEnabled()) return {cluster: args.cluster, revision: snapshot.revision, tree: nest(selected)}
      if (flags.yaml) {
        const {stringify} = await import('yaml')
        process.stdout.write(quoteControl(stringify(nest(selected))))
        return undefined
      }
      for (const [k, v] of Object.entries(selected).sort(([a], [b]) => (a < b ? -1 : 1))) {
        this.log(v.includes('\n') ? `${k} =\n${v.replace(/^/gm, '    ')}` : `${k} = ${v}`)
      }
      return undefined
    } finally {
      await store.close()
    }
  }

  /** `get CLUSTER --spec`: the registered spec as YAML (the spec's own comments are not kept; its templates are not shown). */
  private async printSpec(store: Store, cluster: string): Promise<unknown> {
    const {readRegistered} = await import('../lifecycle/registered.js')
    const {state} = await readRegistered(store, cluster)
    if (!state?.spec) throw new ShoalError(`cluster ${cluster} is registered without its spec (registered before specs were kept): apply its spec once`, 'not-found', EXIT.failure)
    // A secret's default is a secret value: left out, as lint leaves it out of its reports.
    const env = Object.fromEntries(Object.entries(state.spec.env ?? {}).map(([name, p]) => {
      if (!p.secret || p.default === undefined) return [name, p]
      const {default: _secret, ...rest} = p
      return [name, rest]
    }))
    const spec = inSpecOrder({...state.spec, ...(state.spec.env ? {env} : {})})
    if (this.jsonEnabled()) return {cluster, revision: state.revision, spec}
    const {stringify} = await import('yaml')
    const hidden = Object.keys(env).filter((name) => state.spec!.env?.[name]?.secret && state.spec!.env[name]!.default !== undefined)
    const header = [
      `# The spec cluster ${cluster} is registered with (revision ${state.revision}), counts as they stand.`,
      ...(hidden.length ? [`# Left out: the default of secret parameter${hidden.length === 1 ? '' : 's'} ${hidden.join(', ')}.`] : []),
    ]
    process.stdout.write(quoteControl(`${header.join('\n')}\n${stringify(spec)}`))
    return undefined
  }
}
