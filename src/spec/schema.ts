// JSON Schema validation of loaded documents: prebuilt (standalone) validators when built, ajv compiled on demand otherwise,
// and ajv errors turned into Problems at the offending YAML node with messages a person can act on.
import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'
import type {ErrorObject} from 'ajv'
import type {Problem} from '../lint/problem.js'
import {didYouMean} from '../lint/suggest.js'
import {REDACTED} from '../plan/show.js'
import {quoted} from '../util/text.js'
import {DURATION_PATTERN, PERCENT_PATTERN, SIZE_PATTERN} from '../util/units.js'
import {positionAt, type LoadedYaml} from './load.js'

export type SchemaKind = 'cluster' | 'hosts'

export interface ValidateFunction {
  (data: unknown): boolean
  errors?: ErrorObject[] | null
}

export type Validators = Record<SchemaKind, ValidateFunction>

/** Must equal the options in scripts/build-validators.js (a test checks both paths report the same errors). */
export const AJV_OPTIONS = {allErrors: true, strict: true, allowUnionTypes: true} as const

const SCHEMA_FILES: Record<SchemaKind, URL> = {
  cluster: new URL('../../schemas/cluster.schema.json', import.meta.url),
  hosts: new URL('../../schemas/hosts.schema.json', import.meta.url),
}
/** Written by `npm run build` next to dist/spec/: dist/generated/validators.cjs. Absent when running from src/. */
export const GENERATED_VALIDATORS = fileURLToPath(new URL('../generated/validators.cjs', import.meta.url))

const require = createRequire(import.meta.url)
const schemaCache = new Map<SchemaKind, Record<string, unknown>>()

export function schemaJson(kind: SchemaKind): Record<string, unknown> {
  let schema = schemaCache.get(kind)
  if (!schema) {
    schema = JSON.parse(readFileSync(SCHEMA_FILES[kind], 'utf8')) as Record<string, unknown>
    schemaCache.set(kind, schema)
  }
  return schema
}

/** Compile both schemas with ajv (dev and tests; ~30 ms). */
export function compileValidators(): Validators {
  const Ajv2020 = (require('ajv/dist/2020.js') as {default: new (options: object) => {compile(schema: object): ValidateFunction}}).default
  const ajv = new Ajv2020(AJV_OPTIONS)
  return {cluster: ajv.compile(schemaJson('cluster')), hosts: ajv.compile(schemaJson('hosts'))}
}

/** Load prebuilt standalone validators (fast cold start), or undefined when the file does not exist. */
export function loadGeneratedValidators(file = GENERATED_VALIDATORS): Validators | undefined {
  if (!existsSync(file)) return undefined
  const generated = require(file) as Partial<Validators>
  if (typeof generated.cluster !== 'function' || typeof generated.hosts !== 'function') return undefined
  return {cluster: generated.cluster, hosts: generated.hosts}
}

let shared: Validators | undefined

/** The process-wide validators: generated when present, compiled otherwise; built once. */
export function validators(): Validators {
  shared ??= loadGeneratedValidators() ?? compileValidators()
  return shared
}

const UNIT_PATTERNS: Record<string, string> = {
  [SIZE_PATTERN]: 'is not a size: use a number with an optional suffix Ki, Mi, Gi, Ti (or K, M, G, T), e.g. 512Mi or 10Gi',
  [DURATION_PATTERN]: 'is not a duration: use number+unit parts with ms, s, m or h, e.g. 30s, 10m or 1h30m',
  [PERCENT_PATTERN]: 'is neither a whole number nor a percentage such as 25%',
}

/** Validate `data` against a schema and return its problems, each placed on the YAML node at fault. */
export function schemaProblems(loaded: LoadedYaml, kind: SchemaKind, data: unknown, validate: ValidateFunction = validators()[kind]): Problem[] {
  if (validate(data)) return []
  const problems: Problem[] = []
  const seen = new Set<string>()
  for (const error of validate.errors ?? []) {
    const mapped = describeError(loaded, kind, data, error)
    if (!mapped) continue
    const key = `${mapped.line}:${mapped.col}:${mapped.rule}:${mapped.message}`
    if (seen.has(key)) continue
    seen.add(key)
    problems.push(mapped)
  }
  return problems
}

function describeError(loaded: LoadedYaml, kind: SchemaKind, data: unknown, error: ErrorObject): Problem | undefined {
  const path = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  // Under an env parameter marked secret, values are never echoed (its default breaking a rule says so without it).
  const secret = kind === 'cluster' && path[0] === 'env' && path.length >= 3 && (valueAt(data, path.slice(0, 2)) as {secret?: unknown} | undefined)?.secret === true
  const raw = valueAt(data, path)
  const value = secret && (typeof raw === 'string' || typeof raw === 'number') ? REDACTED : raw
  const where = describePath(kind, data, path)
  const make = (rule: string, message: string, at: ReadonlyArray<string | number> = path, key = false): Problem => ({
    file: loaded.file, ...positionAt(loaded, at, {key}), rule, severity: 'error', message,
  })
  const params = error.params as Record<string, unknown>

  // propertyNames reports once for the name (with `propertyName`) and once for the object: keep the first, at the key.
  if (error.keyword === 'propertyNames') return undefined
  const propertyName = (error as ErrorObject & {propertyName?: string}).propertyName
  if (propertyName !== undefined) {
    const schema = resolveRef(kind, schemaForInstance(kind, path)?.propertyNames)
    // Role names have their own stable rule id (it predates the schema knowing the rule).
    const rule = kind === 'cluster' && path.length === 1 && path[0] === 'roles' ? 'role-name' : error.keyword === 'pattern' ? 'schema-pattern' : 'schema-range'
    const what = rule === 'role-name' ? `role name ${quoted(propertyName)} is not valid` : `name ${quoted(propertyName)} in ${where} is not valid`
    return make(rule, `${what}: ${lowerFirst(String(schema?.description ?? error.message))}`, [...path, propertyName], true)
  }

  switch (error.keyword) {
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const name = String(params.additionalProperty ?? params.unevaluatedProperty)
      const allowed = Object.keys((schemaForInstance(kind, path)?.properties as object | undefined) ?? {})
      const hint = didYouMean(name, allowed) || (allowed.length > 0 ? `; allowed keys: ${allowed.join(', ')}` : '')
      return make('schema-unknown-key', `unknown key ${quoted(name)} ${path.length === 0 ? 'at the top level' : `in ${where}`}${hint}`, [...path, name], true)
    }
    case 'required': {
      const missing = String(params.missingProperty)
      return make('schema-required', path.length === 0 ? `missing required key "${missing}"` : `${where} is missing required key "${missing}"`, path, true)
    }
    case 'type': {
      const expected = String(params.type).replace(/,/g, ' or ')
      const got = value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a mapping' : value === REDACTED ? `a ${typeof raw} (value hidden: secret)` : `${typeof value} ${quoted(value)}`
      const hint = path.at(-1) === 'mode' && typeof value === 'number'
        ? `; quote it: mode: "0${String(value)}" (YAML reads an unquoted 0644 as the number 644)` : ''
      return make('schema-type', `${where} must be ${article(expected)}, got ${got}${hint}`)
    }
    case 'const':
      return make('schema-enum', `${where} must be ${JSON.stringify(params.allowedValue)}, got ${quoted(value)}${typeof value === 'string' ? didYouMean(value, [String(params.allowedValue)]) : ''}`)
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String)
      return make('schema-enum', `${where} must be one of ${allowed.join(', ')}; got ${quoted(value)}${typeof value === 'string' && !secret ? didYouMean(value, allowed) : ''}`)
    }
    case 'pattern': {
      const pattern = String(params.pattern)
      const unit = UNIT_PATTERNS[pattern]
      if (unit) return make('unit-invalid', `${where}: ${quoted(value)} ${unit}`)
      const schema = schemaForInstance(kind, path)
      return make('schema-pattern', `${where}: ${quoted(value)} is not valid; expected ${lowerFirst(String(schema?.description ?? `a match for ${pattern}`))}`)
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minLength':
    case 'maxLength':
    case 'minItems':
    case 'maxItems':
    case 'minProperties':
    case 'maxProperties': {
      const got = value === REDACTED ? '' : typeof value === 'number' ? `, got ${value}` : typeof value === 'string' ? ` (got ${quoted(value)})` : ''
      return make('schema-range', `${where} ${RANGE_WORDS[error.keyword]} ${String(params.limit)}${got}`)
    }
    default:
      return make('schema-invalid', `${where} ${error.message ?? 'is not valid'}`)
  }
}

const RANGE_WORDS: Record<string, string> = {
  minimum: 'must be at least', maximum: 'must be at most', exclusiveMinimum: 'must be greater than', exclusiveMaximum: 'must be less than',
  minLength: 'must have at least this many characters:', maxLength: 'must have at most this many characters:',
  minItems: 'must have at least this many items:', maxItems: 'must have at most this many items:',
  minProperties: 'must have at least this many entries:', maxProperties: 'must have at most this many entries:',
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1)
}

function valueAt(data: unknown, path: readonly string[]): unknown {
  let value = data
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string, unknown>)[segment]
  }
  return value
}

/** A path as a person reads it: `role "zk"`, `"files[0].mode" in role "zk"`, `host "db1"`, `"update.canaries"`. */
export function describePath(kind: SchemaKind, data: unknown, path: readonly string[]): string {
  if (path.length === 0) return kind === 'cluster' ? 'the cluster spec' : 'the hosts file'
  const dotted = (segments: readonly string[]): string =>
    segments.map((s, i) => (/^[0-9]+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`)).join('')
  if (kind === 'cluster' && path[0] === 'roles' && path.length >= 2) {
    return path.length === 2 ? `role "${path[1]}"` : `"${dotted(path.slice(2))}" in role "${path[1]}"`
  }
  if (kind === 'hosts' && path[0] === 'hosts' && path.length >= 2) {
    const name = (valueAt(data, path.slice(0, 2)) as {name?: unknown} | undefined)?.name
    const host = typeof name === 'string' ? `host "${name}"` : `host #${Number(path[1]) + 1}`
    return path.length === 2 ? host : `"${dotted(path.slice(2))}" of ${host}`
  }
  return `"${dotted(path)}"`
}

type SchemaObject = Record<string, unknown>

function resolveRef(kind: SchemaKind, schema: unknown): SchemaObject | undefined {
  if (schema === null || typeof schema !== 'object') return undefined
  let node = schema as SchemaObject
  // Only local refs (`#/$defs/x`) exist in our schemas; the description beside a $ref wins over the target's.
  for (let hops = 0; typeof node.$ref === 'string' && hops < 8; hops++) {
    let target: unknown = schemaJson(kind)
    for (const segment of node.$ref.replace(/^#\//, '').split('/')) target = (target as SchemaObject | undefined)?.[segment]
    if (target === null || typeof target !== 'object') return node
    const {$ref: _ref, ...rest} = node
    node = {...(target as SchemaObject), ...rest}
  }
  return node
}

/** The schema describing the value at an instance path (ajv's schemaPath is relative to a $ref target, so walk ourselves). */
function schemaForInstance(kind: SchemaKind, path: readonly string[]): SchemaObject | undefined {
  let node = resolveRef(kind, schemaJson(kind))
  for (const segment of path) {
    if (!node) return undefined
    const properties = node.properties as Record<string, unknown> | undefined
    if (properties && Object.hasOwn(properties, segment)) node = resolveRef(kind, properties[segment])
    else if (node.items !== undefined && /^[0-9]+$/.test(segment)) node = resolveRef(kind, node.items)
    else if (node.additionalProperties !== undefined && typeof node.additionalProperties === 'object') node = resolveRef(kind, node.additionalProperties)
    else return undefined
  }
  return node
}
