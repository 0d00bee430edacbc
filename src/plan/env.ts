// Parameter values: given values, registered values and spec defaults merged into the env a plan uses, each checked
// against its parameter and tagged with where it came from (pure: reading flags and files is workspace/values.ts).
import type {ClusterSpec, EnvParam, EnvValue} from '../spec/types.js'
import type {ClusterState} from './types.js'

/** Where a registered value came from: `default` follows the spec; anything else was given and is kept. */
export const DEFAULT_SOURCE = 'default'

/** One value given on the command line or in a values file, before it is checked against its parameter. */
export interface GivenValue {
  /** As given: text from `--set`/`--set-file`, any YAML scalar from a values file. */
  value: unknown
  /** `--set`, `--set-file PATH` or `FILE:LINE:COL`. */
  source: string
  /** Text from the command line is converted to the parameter's type; values file scalars must already have it. */
  fromText: boolean
}

/** What one command gives: values (the last one given for a name wins) and names returned to their default. */
export interface GivenEnv {
  values: Map<string, GivenValue>
  unset: string[]
}

export const NOTHING_GIVEN: GivenEnv = {values: new Map(), unset: []}

/** The env a plan is made with: every value, where it came from, and which names are secret. */
export interface ResolvedEnv {
  values: Record<string, EnvValue>
  sources: Record<string, string>
  secret: string[]
}

/** One parameter whose registered value differs from the planned one (values only for non-secret parameters). */
export interface EnvChange {
  name: string
  change: 'add' | 'update' | 'remove'
  secret: boolean
  before?: EnvValue
  after?: EnvValue
  /** Where the planned value comes from (absent for a removed parameter). */
  source?: string
}

function convertText(param: EnvParam, text: string): EnvValue | undefined {
  switch (param.type) {
    case 'string': return text
    case 'boolean': return text === 'true' ? true : text === 'false' ? false : undefined
    case 'integer': return /^[+-]?\d+$/.test(text.trim()) ? Number(text.trim()) : undefined
    case 'number': return text.trim() !== '' && Number.isFinite(Number(text.trim())) ? Number(text.trim()) : undefined
  }
}

function hasType(param: EnvParam, value: unknown): value is EnvValue {
  switch (param.type) {
    case 'string': return typeof value === 'string'
    case 'boolean': return typeof value === 'boolean'
    case 'number': return typeof value === 'number' && Number.isFinite(value)
    case 'integer': return typeof value === 'number' && Number.isInteger(value)
  }
}

/** Why a value does not fit its parameter, or undefined. Never quotes a secret's value. */
export function valueProblem(param: EnvParam, value: EnvValue): string | undefined {
  const shown = param.secret ? 'the value' : JSON.stringify(value)
  if (param.enum && !param.enum.includes(value)) return `${shown} is not one of ${param.secret ? 'the allowed values' : param.enum.map((v) => JSON.stringify(v)).join(', ')}`
  if (typeof value === 'number' && param.minimum !== undefined && value < param.minimum) return `${shown} is below the minimum ${param.minimum}`
  if (typeof value === 'number' && param.maximum !== undefined && value > param.maximum) return `${shown} is above the maximum ${param.maximum}`
  if (typeof value === 'string' && param.pattern !== undefined && !new RegExp(param.pattern, 'u').test(value)) {
    // A file written with echo ends with a newline, and --set-file keeps a file's bytes as they are (keys, certificates).
    const newline = /\n$/.test(value) && new RegExp(param.pattern, 'u').test(value.replace(/\r?\n$/, '')) ? ' (it ends with a newline, without which it would match: write the file with printf \'%s\' or echo -n)' : ''
    return `${shown} does not match the pattern ${param.pattern}${newline}`
  }
  return undefined
}

/** A given value converted to the parameter's type and checked, or the problem (naming the parameter and the source). */
function checkGiven(name: string, param: EnvParam, given: GivenValue): {value: EnvValue} | {error: string} {
  const label = `env parameter ${name}${param.secret ? ' (secret)' : ''} from ${given.source}`
  const value = given.fromText && typeof given.value === 'string' ? convertText(param, given.value) : given.value
  if (value === undefined || !hasType(param, value)) {
    const what = param.secret ? 'the value' : typeof given.value === 'object' ? `a ${given.value === null ? 'null' : Array.isArray(given.value) ? 'list' : 'mapping'}` : JSON.stringify(given.value)
    const hint = !given.fromText && typeof given.value === 'number' && param.type === 'string' ? ' (quote it)' : !given.fromText && typeof given.value === 'string' && param.type !== 'string' ? ' (remove the quotes)' : ''
    return {error: `${label}: ${what} is not ${param.type === 'integer' ? 'an integer' : `a ${param.type}`}${param.type === 'boolean' ? ' (true or false)' : ''}${hint}`}
  }
  const why = valueProblem(param, value)
  return why ? {error: `${label}: ${why}`} : {value}
}

/**
 * The env of a plan. For each parameter: the value given now; else (unless `--unset`) the registered one if it was
 * given earlier; else the spec default. A parameter left without a value is an error, as is a name the spec does not
 * declare. Destroy keeps whatever is registered (nothing is rendered, scripts only stop and clean up).
 */
export function resolveEnv(spec: ClusterSpec, given: GivenEnv, registered: Pick<ClusterState, 'env' | 'envSources'> | undefined, options: {destroying?: boolean} = {}): {env: ResolvedEnv; errors: string[]} {
  const params = spec.env ?? {}
  const errors: string[] = []
  const declared = Object.keys(params).sort()
  const unknown = (name: string, source: string): string =>
    `env parameter ${name} from ${source} is not declared in the spec of cluster ${spec.name} (${declared.length ? `declared: ${declared.join(', ')}` : 'it declares no env'})`
  for (const [name, value] of given.values) if (!(name in params)) errors.push(unknown(name, value.source))
  for (const name of given.unset) if (!(name in params)) errors.push(unknown(name, '--unset'))
  const env: ResolvedEnv = {values: {}, sources: {}, secret: []}
  const unset = new Set(given.unset)
  for (const name of declared) {
    const param = params[name]!
    if (param.secret) env.secret.push(name)
    const now = given.values.get(name)
    const before = registered?.env[name]
    const beforeSource = registered?.envSources?.[name] ?? DEFAULT_SOURCE
    if (now) {
      const checked = checkGiven(name, param, now)
      if ('error' in checked) errors.push(checked.error)
      else {
        env.values[name] = checked.value
        env.sources[name] = now.source
      }
    } else if (before !== undefined && (options.destroying || (beforeSource !== DEFAULT_SOURCE && !unset.has(name)))) {
      const why = hasType(param, before) ? valueProblem(param, before) : `it is not ${param.type === 'integer' ? 'an integer' : `a ${param.type}`} any more`
      if (why && !options.destroying) errors.push(`env parameter ${name} keeps its registered value (from ${beforeSource}), but ${why} under the spec now: give a new one with --set ${name}=VALUE or return it to its default with --unset ${name}`)
      else {
        env.values[name] = before
        env.sources[name] = beforeSource
      }
    } else if (param.default !== undefined) {
      env.values[name] = param.default
      env.sources[name] = DEFAULT_SOURCE
    } else if (!options.destroying) {
      errors.push(`env parameter ${name}${param.secret ? ' (secret)' : ''} has no default and no value${unset.has(name) ? ' (--unset returns it to a default it does not have)' : ''}: give it with --set ${name}=VALUE, --set-file ${name}=PATH or in a --values file`)
    }
  }
  return {env, errors}
}

/** The spec defaults alone (planner callers that give no env; parameters without a default are left out). */
export function defaultEnv(spec: ClusterSpec): ResolvedEnv {
  return resolveEnv(spec, NOTHING_GIVEN, undefined, {destroying: true}).env
}

/** Parameters whose value differs between the registered state and the planned env. */
export function envChanges(before: Pick<ClusterState, 'env' | 'secretEnv'> | undefined, after: ResolvedEnv): EnvChange[] {
  if (!before) return []
  const secret = new Set([...before.secretEnv, ...after.secret])
  const names = [...new Set([...Object.keys(before.env), ...Object.keys(after.values)])].sort()
  const out: EnvChange[] = []
  for (const name of names) {
    const was = before.env[name]
    const now = after.values[name]
    if (was !== undefined && now !== undefined && String(was) === String(now)) continue
    const hidden = secret.has(name)
    out.push({
      name,
      change: was === undefined ? 'add' : now === undefined ? 'remove' : 'update',
      secret: hidden,
      ...(!hidden && was !== undefined ? {before: was} : {}),
      ...(!hidden && now !== undefined ? {after: now} : {}),
      ...(now !== undefined ? {source: after.sources[name] ?? DEFAULT_SOURCE} : {}),
    })
  }
  return out
}

/** Values of secret parameters as text, the empty one left out (it would match everywhere). */
export function secretValues(env: Record<string, EnvValue>, names: readonly string[]): string[] {
  return names.map((name) => env[name]).filter((v) => v !== undefined && String(v) !== '').map(String)
}

/**
 * The changes of a plan that supersedes unfinished operations: besides what differs from the registered values, every
 * parameter whose value members may still run with (`history`, oldest first: before the first of those operations and
 * each one's target) differs from the planned one, so `configure` runs again where an earlier attempt did not finish.
 */
export function withHistory(changes: EnvChange[], history: readonly Record<string, EnvValue>[] | undefined, after: ResolvedEnv): EnvChange[] {
  if (!history?.length) return changes
  const named = new Set(changes.map((c) => c.name))
  const secret = new Set(after.secret)
  const extra: EnvChange[] = []
  for (const [name, now] of Object.entries(after.values)) {
    if (named.has(name)) continue
    const was = latestDiffering(history, name, now)
    if (was === undefined) continue
    const hidden = secret.has(name)
    extra.push({name, change: 'update', secret: hidden, ...(hidden ? {} : {before: was, after: now}), source: after.sources[name] ?? DEFAULT_SOURCE})
  }
  return [...changes, ...extra].sort((a, b) => a.name.localeCompare(b.name))
}

/**
 * Per changed parameter, the value members most likely run with (`SHOAL_PREVIOUS_ENV_<NAME>`): the latest of `runs`
 * (oldest first) that differs from the planned value.
 */
export function previousValues(changed: readonly string[], planned: Record<string, EnvValue>, runs: readonly Record<string, EnvValue>[]): Record<string, EnvValue> {
  const out: Record<string, EnvValue> = {}
  for (const name of changed) {
    const was = latestDiffering(runs, name, planned[name])
    if (was !== undefined) out[name] = was
  }
  return out
}

/** The latest value of `name` in `runs` (oldest first) that differs from `now`; any value when there is no `now`. */
function latestDiffering(runs: readonly Record<string, EnvValue>[], name: string, now: EnvValue | undefined): EnvValue | undefined {
  for (let i = runs.length - 1; i >= 0; i--) {
    const value = runs[i]![name]
    if (value !== undefined && (now === undefined || String(value) !== String(now))) return value
  }
  return undefined
}

/** The values to give so that a plan returns to `env` (with its sources) from what is registered now: a rollback's. */
export function givenToReturn(spec: ClusterSpec, env: Record<string, EnvValue>, sources: Record<string, string>, registered: Pick<ClusterState, 'envSources'> | undefined): GivenEnv {
  const values = new Map<string, GivenValue>()
  const unset: string[] = []
  for (const name of Object.keys(spec.env ?? {}).sort()) {
    const source = sources[name] ?? DEFAULT_SOURCE
    if (source !== DEFAULT_SOURCE && env[name] !== undefined) values.set(name, {value: env[name], source, fromText: false})
    else if ((registered?.envSources?.[name] ?? DEFAULT_SOURCE) !== DEFAULT_SOURCE) unset.push(name)
  }
  return {values, unset}
}
