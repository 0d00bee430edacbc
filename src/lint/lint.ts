// `shoal lint` as a library: lint files, directories and stdin into one result object that formatters render.
import {readdirSync, realpathSync, statSync} from 'node:fs'
import {dirname, extname, join, normalize, resolve} from 'node:path'
import type {HostsFile} from '../inventory/types.js'
import {loadRead, loadYaml, loadYamlFile, positionAt, readStreamBounded, type BoundedRead, type LoadedYaml} from '../spec/load.js'
import {schemaProblems, validators as sharedValidators, type Validators} from '../spec/schema.js'
import type {ClusterSpec} from '../spec/types.js'
import {checkCluster, dedupe} from './cluster-checks.js'
import {checkHosts} from './hosts-checks.js'
import type {Problem, Severity} from './problem.js'
import {redactText} from '../plan/show.js'
import {didYouMean} from './suggest.js'
import {TemplateCache} from './templates.js'

export const STDIN_PATH = '-'
export const STDIN_NAME = '<stdin>'
const KINDS = ['Cluster', 'Hosts'] as const
export type DocumentKind = (typeof KINDS)[number]

export interface LintOptions {
  /** Directory relative paths resolve against (default: process.cwd()). */
  cwd?: string
  /** Reads the document for the path `-` (default: process.stdin, at most the file size limit). */
  readStdin?: () => Promise<Uint8Array | string | BoundedRead>
  /** Schema validators to use (default: the generated ones when built, else compiled once). */
  validators?: Validators
}

export interface LintedFile {
  /** The path as the user sees it (relative paths stay relative). */
  file: string
  kind?: DocumentKind
  /** Why a file found in a directory was not linted (not a Cluster or Hosts document). */
  skipped?: string
  /** Problems of this file and of the templates it uses (their `file` is the template path). */
  problems: Problem[]
}

export interface LintSummary {
  files: number
  skipped: number
  errors: number
  warnings: number
  infos: number
}

export interface LintResult {
  files: LintedFile[]
  /** Every problem, sorted by file, line and column. */
  problems: Problem[]
  /** Text of every file that has a problem, for code frames. */
  sources: Map<string, string>
  summary: LintSummary
}

/** A path on the command line that does not exist: a usage error, not a lint problem. */
export class LintPathError extends Error {
  readonly code = 'path-not-found'
  constructor(readonly paths: string[]) {
    super(`no such file or directory: ${paths.join(', ')}`)
    this.name = 'LintPathError'
  }
}

/** True when the result should fail the run: any error, or any warning under `strict`. */
export function lintFailed(result: LintResult, options: {strict?: boolean} = {}): boolean {
  return result.summary.errors > 0 || (options.strict === true && result.summary.warnings > 0)
}

interface Target {
  /** Absolute path, or `-`. */
  path: string
  display: string
  /** Named on the command line (not found by walking a directory). */
  explicit: boolean
  /** Why the path cannot be linted at all (a symlink loop), reported as a `file-unreadable` problem. */
  unreadable?: string
}

export async function lintPaths(paths: readonly string[], options: LintOptions = {}): Promise<LintResult> {
  const cwd = options.cwd ?? process.cwd()
  const targets = collectTargets(paths.length > 0 ? paths : ['.'], cwd)
  const session = new LintSession(options.validators ?? sharedValidators())
  const linted: Array<{target: Target; result: LintedFile}> = []
  for (const target of targets) {
    if (target.unreadable !== undefined) {
      const problem = {file: target.display, line: 0, col: 0, rule: 'file-unreadable', severity: 'error' as const, message: target.unreadable}
      linted.push({target, result: {file: target.display, problems: [problem]}})
    } else if (target.path === STDIN_PATH) {
      const input = await (options.readStdin ?? (() => readStreamBounded(process.stdin)))()
      const loaded = typeof input === 'string' || input instanceof Uint8Array ? loadYaml(input, STDIN_NAME) : loadRead(input, STDIN_NAME)
      linted.push({target, result: session.lint(loaded, {explicit: true, specDir: cwd, displayDir: '.'})})
    } else {
      const loaded = loadYamlFile(target.path, target.display)
      linted.push({target, result: session.lint(loaded, {explicit: target.explicit, specDir: dirname(target.path), displayDir: dirname(target.display)})})
    }
  }
  // A template that happens to end in .yaml is part of a spec, not a document to lint on its own.
  const files = linted.filter(({target}) => target.explicit || !session.templatePaths.has(target.path)).map(({result}) => result)
  return session.result(files)
}

/** Lints documents one at a time, sharing validators and parsed templates across all of them. */
export class LintSession {
  readonly templates = new TemplateCache()
  readonly templatePaths = new Set<string>()
  private readonly sources = new Map<string, string>()

  constructor(private readonly validators: Validators) {}

  lint(loaded: LoadedYaml, where: {explicit: boolean; specDir: string; displayDir: string}): LintedFile {
    const file: LintedFile = {file: loaded.file, problems: [...loaded.problems]}
    const data = loaded.data
    if (data !== undefined && !loaded.problems.some((p) => p.severity === 'error')) {
      const kind = data.kind
      if (kind === 'Cluster' || kind === 'Hosts') {
        file.kind = kind
        file.problems.push(...this.check(loaded, kind, data, where))
      } else if (!where.explicit) {
        file.skipped = typeof kind === 'string' ? `kind is "${kind}", not Cluster or Hosts` : 'no `kind`: not a Cluster or Hosts document'
      } else {
        const hint = typeof kind === 'string' ? didYouMean(kind, KINDS) : ''
        const what = kind === undefined ? 'missing `kind`' : `kind ${JSON.stringify(kind)}`
        file.problems.push({
          file: loaded.file, ...positionAt(loaded, kind === undefined ? [] : ['kind']), rule: 'kind-unknown', severity: 'error',
          message: `${what}: shoal lints documents of kind Cluster or Hosts${hint}`,
        })
      }
    }
    // Secret defaults written in the spec stay out of the report: messages and the code frames' source lines.
    const secrets = secretDefaults(data)
    if (secrets.length > 0) file.problems = file.problems.map((p) => ({...p, message: redactText(p.message, secrets)}))
    if (file.problems.some((p) => p.file === loaded.file)) this.sources.set(loaded.file, redactText(loaded.source, secrets))
    return file
  }

  private check(loaded: LoadedYaml, kind: DocumentKind, data: Record<string, unknown>, where: {specDir: string; displayDir: string}): Problem[] {
    const schema = schemaProblems(loaded, kind === 'Cluster' ? 'cluster' : 'hosts', data, kind === 'Cluster' ? this.validators.cluster : this.validators.hosts)
    // Semantic checks assume the shape the schema guarantees: they run once the schema is satisfied.
    if (schema.length > 0) return schema
    if (kind === 'Hosts') return checkHosts(data as unknown as HostsFile, loaded)
    const displayed = new Map<string, string>()
    const problems = checkCluster(data as unknown as ClusterSpec, {
      loaded, specDir: where.specDir, displayDir: where.displayDir, templates: this.templates,
      onTemplate: (absolute, display) => {
        this.templatePaths.add(absolute)
        displayed.set(display, absolute)
      },
    })
    for (const problem of problems) {
      const absolute = displayed.get(problem.file)
      if (absolute !== undefined && !this.sources.has(problem.file)) {
        const source = this.templates.get(absolute).source
        if (source !== undefined) this.sources.set(problem.file, source)
      }
    }
    return problems
  }

  result(files: LintedFile[]): LintResult {
    // A template shared by many specs is reported once, with the first spec that uses it.
    const seen = new Set<string>()
    for (const file of files) {
      file.problems = dedupe(file.problems).filter((p) => {
        if (p.file === file.file) return true
        const key = `${p.file}:${p.line}:${p.col}:${p.rule}:${p.message}`
        if (seen.has(key)) return false
        seen.add(key)
        return true
      })
      file.problems.sort(byPosition)
    }
    const problems = files.flatMap((f) => f.problems).sort(byPosition)
    const count = (severity: Severity): number => problems.filter((p) => p.severity === severity).length
    return {
      files,
      problems,
      sources: this.sources,
      summary: {files: files.length, skipped: files.filter((f) => f.skipped).length, errors: count('error'), warnings: count('warning'), infos: count('info')},
    }
  }
}

/** The default values of env parameters marked secret, as text (every string and number inside one that is not a scalar). */
function secretDefaults(data: Record<string, unknown> | undefined): string[] {
  const env = data?.env
  if (env === null || typeof env !== 'object') return []
  const out: string[] = []
  const collect = (value: unknown): void => {
    if (typeof value === 'string' || typeof value === 'number') out.push(String(value))
    else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) collect(v)
  }
  for (const param of Object.values(env as Record<string, unknown>)) {
    const p = param as {secret?: unknown; default?: unknown} | null
    if (p && typeof p === 'object' && p.secret === true) collect(p.default)
  }
  return out
}

function byPosition(a: Problem, b: Problem): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col
}

function collectTargets(paths: readonly string[], cwd: string): Target[] {
  const targets: Target[] = []
  const missing: string[] = []
  for (const given of paths) {
    if (given === STDIN_PATH) {
      targets.push({path: STDIN_PATH, display: STDIN_NAME, explicit: true})
      continue
    }
    const absolute = resolve(cwd, given)
    let isDirectory: boolean
    try {
      isDirectory = statSync(absolute).isDirectory()
    } catch (err) {
      // A symlink loop exists (lstat sees the link) but never resolves: say so instead of "no such file".
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') targets.push({path: absolute, display: normalize(given), explicit: true, unreadable: LOOP_MESSAGE})
      else missing.push(given)
      continue
    }
    if (!isDirectory) targets.push({path: absolute, display: normalize(given), explicit: true})
    else for (const found of walkYaml(absolute)) targets.push({...found, display: normalize(join(given, found.path.slice(absolute.length)))})
  }
  if (missing.length > 0) throw new LintPathError(missing)
  return targets
}

const LOOP_MESSAGE = 'cannot read file: symbolic link loop (a link that points back at itself)'

/**
 * `*.yaml` and `*.yml` under a directory, sorted, skipping hidden directories and node_modules. Symbolic links are
 * followed (to files and to directories); a link that loops is reported, and a directory already walked (a link back
 * up the tree) is not walked again, so the walk always ends.
 */
function walkYaml(directory: string, walked: Set<string> = new Set()): Array<Omit<Target, 'display'>> {
  try {
    const real = realpathSync(directory)
    if (walked.has(real)) return []
    walked.add(real)
  } catch {
    return []
  }
  const found: Array<Omit<Target, 'display'>> = []
  const entries = readdirSync(directory, {withFileTypes: true}).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
    const path = join(directory, entry.name)
    const isYaml = ['.yaml', '.yml'].includes(extname(entry.name))
    if (entry.isDirectory()) {
      found.push(...walkYaml(path, walked))
    } else if (entry.isFile()) {
      if (isYaml) found.push({path, explicit: false})
    } else if (entry.isSymbolicLink()) {
      let target
      try {
        target = statSync(path)
      } catch (err) {
        // A loop is always a mistake, whatever its name says (it may have been meant as a directory of specs).
        if ((err as NodeJS.ErrnoException).code === 'ELOOP') found.push({path, explicit: false, unreadable: LOOP_MESSAGE})
        continue
      }
      if (target.isDirectory()) found.push(...walkYaml(path, walked))
      else if (isYaml) found.push({path, explicit: false})
    } else if (isYaml) {
      // A FIFO, socket or device named like a spec: reading refuses it with a reason, instead of skipping it silently.
      found.push({path, explicit: false})
    }
  }
  return found
}
