// Reads the parameter values a command is given (`--values FILE`, `--set NAME=VALUE`, `--set-file NAME=PATH`,
// `--unset NAME`) into plain data with where each came from; checking them against the spec is plan/env.ts.
import {readFileSync} from 'node:fs'
import {isMap, isScalar, type Node} from 'yaml'
import type {GivenEnv, GivenValue} from '../plan/env.js'
import type {ClusterSpec} from '../spec/types.js'
import {loadYamlFile} from '../spec/load.js'
import {EXIT, ShoalError} from '../errors.js'

export interface ValueFlagValues {
  set?: string[]
  values?: string[]
  'set-file'?: string[]
  unset?: string[]
}

/** Largest values file or --set-file content read (values are small; a bigger file is a mistake). */
const MAX_VALUE_BYTES = 1024 * 1024

function nameAndRest(flag: string, text: string): [string, string] {
  const at = text.indexOf('=')
  if (at <= 0) throw new ShoalError(`${flag} ${flag === '--set' ? 'NAME=VALUE' : 'NAME=PATH'} expected, got an argument without a name before "="`, 'usage', EXIT.usage)
  return [text.slice(0, at), text.slice(at + 1)]
}

function position(node: Node | null, counter: {linePos(offset: number): {line: number; col: number}}): string {
  const offset = node?.range?.[0]
  if (offset === undefined) return ''
  const {line, col} = counter.linePos(offset)
  return `:${line}:${col}`
}

/** One values file: a YAML mapping of parameter names to scalars, each value tagged `FILE:LINE:COL`. */
function readValuesFile(path: string, into: Map<string, GivenValue>): void {
  const loaded = loadYamlFile(path)
  // The loader's own wording of a non-mapping speaks of specs: the check below says it for values files.
  const first = loaded.problems.find((p) => p.severity === 'error' && p.rule !== 'yaml-not-mapping')
  if (first) {
    const code = first.rule === 'file-unreadable' ? EXIT.usage : EXIT.failure
    throw new ShoalError(`values file ${path}${first.line ? `:${first.line}:${first.col}` : ''}: ${first.message}`, first.rule === 'file-unreadable' ? 'path-not-found' : 'invalid-value', code)
  }
  const contents = loaded.doc?.contents ?? null
  if (!isMap(contents)) throw new ShoalError(`values file ${path}: expected a mapping of parameter names to values (name: value)`, 'invalid-value', EXIT.failure)
  for (const pair of contents.items) {
    const key = isScalar(pair.key) ? pair.key.value : undefined
    const where = `${path}${position(pair.key as Node | null, loaded.lineCounter)}`
    if (typeof key !== 'string') throw new ShoalError(`values file ${where}: a parameter name must be a plain string`, 'invalid-value', EXIT.failure)
    const valueNode = pair.value as Node | null
    // Nested values never fit a parameter: keep them as data so the check names the parameter and says why.
    const value = isScalar(valueNode) ? valueNode.value : (valueNode?.toJSON() ?? null)
    const source = `${path}${position(valueNode ?? (pair.key as Node | null), loaded.lineCounter)}`
    // A set's values file maps clusters to parameters: a later file wins parameter by parameter, not cluster by cluster.
    const earlier = into.get(key)?.value
    const merged = isPlainObject(earlier) && isPlainObject(value) ? {...earlier, ...value} : value
    into.set(key, {value: merged, source, fromText: false})
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function readValueFile(name: string, path: string): string {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new ShoalError(`--set-file ${name}=${path}: cannot read the file (${code === 'ENOENT' ? 'no such file' : (error as Error).message})`, 'path-not-found', EXIT.usage)
  }
  if (bytes.byteLength > MAX_VALUE_BYTES) throw new ShoalError(`--set-file ${name}=${path}: the file is ${bytes.byteLength} bytes; a value is at most 1 MiB`, 'invalid-value', EXIT.failure)
  return bytes.toString('utf8')
}

/** The values flags as given: values files in order, then --set and --set-file (one name may not be in both). */
export function readGivenValues(flags: ValueFlagValues): GivenEnv {
  const values = new Map<string, GivenValue>()
  for (const file of flags.values ?? []) readValuesFile(file, values)
  const fromSet = new Set<string>()
  for (const text of flags.set ?? []) {
    const [name, value] = nameAndRest('--set', text)
    fromSet.add(name)
    values.set(name, {value, source: '--set', fromText: true})
  }
  for (const text of flags['set-file'] ?? []) {
    const [name, path] = nameAndRest('--set-file', text)
    if (fromSet.has(name)) throw new ShoalError(`env parameter ${name} is given by both --set and --set-file; give it once`, 'usage', EXIT.usage)
    values.set(name, {value: readValueFile(name, path), source: `--set-file ${path}`, fromText: true})
  }
  return {values, unset: [...new Set(flags.unset ?? [])]}
}

/**
 * What the values given amount to, for the request digest (the same command again resumes its operation). A secret
 * counts by its source only: the digest is stored in the clear, and a hash of a password can be guessed offline.
 */
export function givenDigestInput(given: GivenEnv, spec: ClusterSpec): Record<string, unknown> | undefined {
  if (given.values.size === 0 && given.unset.length === 0) return undefined
  const values = Object.fromEntries([...given.values].map(([name, v]) => [name, spec.env?.[name]?.secret ? {secret: v.source} : v.value]))
  return {values, unset: [...given.unset].sort()}
}

/**
 * The values given for a set of specs, per cluster: `--set CLUSTER.NAME=VALUE`, `--set-file CLUSTER.NAME=PATH`,
 * `--unset CLUSTER.NAME`, and values files whose top-level keys are cluster names, each a mapping of its parameters.
 * A name that does not say its cluster, or names a cluster the set does not hold, is refused.
 */
export function givenPerCluster(given: GivenEnv, clusters: readonly string[]): Map<string, GivenEnv> {
  const out = new Map<string, GivenEnv>(clusters.map((c) => [c, {values: new Map(), unset: []}]))
  const target = (qualified: string, flag: string): [GivenEnv, string] => {
    const dot = qualified.indexOf('.')
    const cluster = dot > 0 ? qualified.slice(0, dot) : undefined
    const into = cluster === undefined ? undefined : out.get(cluster)
    if (!into) {
      throw new ShoalError(
        cluster === undefined
          ? `${flag} ${qualified}: with several specs a parameter names its cluster, as CLUSTER.NAME (clusters: ${clusters.join(', ')})`
          : `${flag} ${qualified}: no cluster ${cluster} among the specs (${clusters.join(', ')})`,
        'usage',
        EXIT.usage,
      )
    }
    return [into, qualified.slice(dot + 1)]
  }
  for (const [name, given1] of given.values) {
    if (given1.fromText) {
      const [into, param] = target(name, given1.source.startsWith('--set-file') ? '--set-file' : '--set')
      into.values.set(param, given1)
      continue
    }
    // A values file for a set: cluster → {name: value}.
    const [into] = target(`${name}.`, `values file ${given1.source}:`)
    if (typeof given1.value !== 'object' || given1.value === null || Array.isArray(given1.value)) {
      throw new ShoalError(`values file ${given1.source}: with several specs each top-level key is a cluster, with a mapping of its parameters (${name}: {NAME: value})`, 'invalid-value', EXIT.failure)
    }
    for (const [param, value] of Object.entries(given1.value as Record<string, unknown>)) into.values.set(param, {value, source: given1.source, fromText: false})
  }
  for (const name of given.unset) {
    const [into, param] = target(name, '--unset')
    into.unset.push(param)
  }
  return out
}
