// Semantic checks of a schema-valid cluster spec: what JSON Schema cannot express (cross-field bounds, units that
// overflow, env defaults against their constraints, duplicate destinations, templates and what they reference).
import {realpathSync} from 'node:fs'
import {isAbsolute, join, normalize, posix, relative, resolve, sep} from 'node:path'
import {MIN_TEXT_SECRET, REDACTED} from '../plan/show.js'
import {DEFAULTS, envVarName, LIFECYCLE_SERVICES, type ClusterSpec, type EnvParam, type EnvValue, type RoleSpec} from '../spec/types.js'
import {positionAt, type LoadedYaml} from '../spec/load.js'
import {quoted} from '../util/text.js'
import {parseDuration, parseSize, resolveCountOrPercent} from '../util/units.js'
import type {Problem} from './problem.js'
import {ruleSeverity, type RuleId} from './rules.js'
import {checkReferences, type TemplateCache} from './templates.js'

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

export interface ClusterCheckContext {
  loaded: LoadedYaml
  /** Absolute directory of the spec file: templates resolve against it and must stay inside it. */
  specDir: string
  /** The same directory as shown to the user (relative paths stay relative in output). */
  displayDir: string
  templates: TemplateCache
  /** Called with every template path the spec references (so directory scans do not lint templates as specs). */
  onTemplate?: (absolutePath: string, displayPath: string) => void
}

type Path = ReadonlyArray<string | number>

export function checkCluster(spec: ClusterSpec, ctx: ClusterCheckContext): Problem[] {
  const problems: Problem[] = []
  const report = (rule: RuleId, path: Path, message: string, key = false): void => {
    problems.push({file: ctx.loaded.file, ...positionAt(ctx.loaded, path, {key}), rule, severity: ruleSeverity(rule), message})
  }

  for (const [link, target] of Object.entries(spec.links ?? {})) {
    if (target === spec.name) report('link-self', ['links', link], `link "${link}" points at this cluster itself`)
  }
  const variables = new Map<string, string>()
  for (const [name, param] of Object.entries(spec.env ?? {})) {
    checkEnvParam(name, param, report)
    // Scripts read `tick-time` and `TICK_TIME` both from SHOAL_ENV_TICK_TIME: one of them would silently win.
    const variable = envVarName(name)
    const first = variables.get(variable)
    if (first === undefined) variables.set(variable, name)
    else report('env-name-collision', ['env', name], `env parameters ${quoted(first)} and ${quoted(name)} both reach scripts as ${variable}; rename one of them`, true)
  }
  for (const [name, role] of Object.entries(spec.roles)) checkRole(name, role, report)
  const maxInFlight = spec.update?.max_in_flight
  if (typeof maxInFlight === 'string' && resolveCountOrPercent(maxInFlight, 100) === undefined) {
    report('unit-invalid', ['update', 'max_in_flight'], `"update.max_in_flight" ${JSON.stringify(maxInFlight)} must be a percentage above 0% and at most 100%`)
  }
  problems.push(...checkTemplates(spec, ctx, report))
  return problems
}

type Report = (rule: RuleId, path: Path, message: string, key?: boolean) => void

function checkRole(name: string, role: RoleSpec, report: Report): void {
  const at = (...rest: Array<string | number>): Path => ['roles', name, ...rest]
  // Role names are checked by the schema's propertyNames (reported as role-name), so editors know the rule too.
  for (const field of ['memory', 'disk'] as const) {
    if (parseSize(role[field]) === undefined) report('unit-invalid', at(field), `"${field}" in role "${name}": ${quoted(role[field])} is too large to be a size (at most 8 PiB)`)
  }
  const durations: Array<[Path, string | undefined]> = [
    ...LIFECYCLE_SERVICES.map((s): [Path, string | undefined] => [at('services', s, 'timeout'), role.services?.[s]?.timeout]),
    ...Object.entries(role.actions ?? {}).map(([a, spec]): [Path, string | undefined] => [at('actions', a, 'timeout'), spec.timeout]),
    ...(['interval', 'timeout', 'start_period'] as const).map((f): [Path, string | undefined] => [at('health_check', f), role.health_check?.[f]]),
  ]
  for (const [path, text] of durations) {
    if (text !== undefined && parseDuration(text) === undefined) report('unit-invalid', path, `${JSON.stringify(text)} is too long to be a duration`)
  }

  const {min, max} = role.scale ?? {}
  if (min !== undefined && max !== undefined && min > max) {
    report('scale-inverted', at('scale'), `role "${name}": scale.min (${min}) is greater than scale.max (${max})`)
  } else if ((min !== undefined && role.count < min) || (max !== undefined && role.count > max)) {
    report('count-out-of-scale', at('count'), `role "${name}": count ${role.count} is outside its scale bounds [${min ?? 0}, ${max ?? '∞'}]`)
  }
  const start = role.server_id?.start ?? DEFAULTS.serverIdStart
  const upper = role.server_id?.upper_bound ?? DEFAULTS.serverIdUpperBound
  const idPath = role.server_id ? at('server_id') : at('count')
  const capacity = upper - start + 1
  const largest = Math.max(role.count, max ?? 0)
  if (capacity < 1) {
    report('server-id-range', idPath, `role "${name}": server_id.upper_bound (${upper}) is below server_id.start (${start})`)
  } else if (capacity < largest) {
    report('server-id-range', idPath, `role "${name}": server ids ${start}..${upper} hold ${capacity} nodes, but the role may have ${largest}${max !== undefined ? ' (scale.max)' : ''}`)
  }

  const dests = new Map<string, number>()
  for (const [index, file] of (role.files ?? []).entries()) {
    const dest = posix.normalize(file.dest)
    const first = dests.get(dest)
    if (first === undefined) dests.set(dest, index)
    else report('file-dest-duplicate', at('files', index, 'dest'), `role "${name}": files[${first}] and files[${index}] both write ${JSON.stringify(file.dest)}`)
  }
}

function typeMatches(type: EnvParam['type'], value: EnvValue): boolean {
  switch (type) {
    case 'string': return typeof value === 'string'
    case 'boolean': return typeof value === 'boolean'
    case 'number': return typeof value === 'number'
    case 'integer': return typeof value === 'number' && Number.isInteger(value)
  }
}

function checkEnvParam(name: string, param: EnvParam, report: Report): void {
  const at = (...rest: Array<string | number>): Path => ['env', name, ...rest]
  const label = `env parameter "${name}"`
  // A secret's value never appears in a message (CI logs keep lint output).
  const show = (value: unknown): string => (param.secret ? REDACTED : quoted(value))
  let pattern: RegExp | undefined
  if (param.pattern !== undefined) {
    try {
      pattern = new RegExp(param.pattern, 'u')
    } catch (err) {
      report('env-pattern-invalid', at('pattern'), `${label}: pattern is not a valid regular expression: ${(err as Error).message}`)
    }
  }
  if (param.minimum !== undefined && param.maximum !== undefined && param.minimum > param.maximum) {
    report('env-range-inverted', at('minimum'), `${label}: minimum (${param.minimum}) is greater than maximum (${param.maximum})`)
  }
  for (const [index, value] of (param.enum ?? []).entries()) {
    if (!typeMatches(param.type, value)) report('env-type-mismatch', at('enum', index), `${label}: enum value ${show(value)} is not of type ${param.type}`)
  }
  const value = param.default
  if (value === undefined) {
    report('env-required', at(), `${label} has no default: give it a value at create (--set ${name}=VALUE, --set-file ${name}=PATH or a --values file)`, true)
    return
  }
  // An empty default means "none" (e.g. no password): nothing secret lives in the spec then.
  if (param.secret && value !== '') report('env-secret-default', at('default'), `${label} is secret but has a default: the secret would live in the spec; remove the default and give the value at create (--set-file ${name}=PATH or a --values file kept out of version control)`)
  if (!typeMatches(param.type, value)) {
    report('env-type-mismatch', at('default'), `${label}: default ${show(value)} is not of type ${param.type}${typeof value === 'string' && param.type !== 'string' ? ' (remove the quotes)' : ''}`)
    return
  }
  // An empty default is "none" (no password): there is nothing to hide, and the value is given at create instead.
  if (param.secret && value !== '' && String(value).length < MIN_TEXT_SECRET) {
    report('env-secret-short', at('default'), `${label}: a secret shorter than ${MIN_TEXT_SECRET} characters is hidden where shoal knows it prints it, but not searched for in free text such as script output (replacing every short match would garble unrelated output); use a longer secret`)
  }
  const why = param.enum && !param.enum.includes(value) ? `is not one of ${param.secret ? 'the allowed values' : param.enum.map((v) => quoted(v)).join(', ')}`
    : typeof value === 'number' && param.minimum !== undefined && value < param.minimum ? `is below the minimum ${param.minimum}`
    : typeof value === 'number' && param.maximum !== undefined && value > param.maximum ? `is above the maximum ${param.maximum}`
    : typeof value === 'string' && pattern && !pattern.test(value) ? `does not match the pattern ${param.pattern}`
    : undefined
  if (why) report('env-default-invalid', at('default'), `${label}: default ${show(value)} ${why}`)
}

function checkTemplates(spec: ClusterSpec, ctx: ClusterCheckContext, report: Report): Problem[] {
  const problems: Problem[] = []
  const declared = {
    roles: new Set(Object.keys(spec.roles)),
    env: new Set(Object.keys(spec.env ?? {})),
    links: new Set(Object.keys(spec.links ?? {})),
  }
  for (const [roleName, role] of Object.entries(spec.roles)) {
    for (const [index, file] of (role.files ?? []).entries()) {
      const path: Path = ['roles', roleName, 'files', index, 'template']
      const resolved = resolveTemplate(ctx.specDir, file.template)
      if ('outside' in resolved) {
        report('template-path', path, resolved.outside)
        continue
      }
      const {absolute, real} = resolved
      const display = normalize(join(ctx.displayDir, relative(ctx.specDir, absolute)))
      ctx.onTemplate?.(absolute, display)
      const analysed = ctx.templates.get(real)
      for (const finding of analysed.findings) {
        if (finding.rule === 'template-missing') {
          report('template-missing', path, `${finding.message}: ${display}`)
        } else {
          problems.push({file: display, line: finding.line, col: finding.col, rule: finding.rule, severity: ruleSeverity(finding.rule), message: finding.message})
        }
      }
      for (const finding of checkReferences(analysed, declared)) {
        problems.push({file: display, line: finding.line, col: finding.col, rule: finding.rule, severity: ruleSeverity(finding.rule), message: finding.message})
      }
    }
  }
  return dedupe(problems)
}

function isInside(dir: string, path: string): boolean {
  const inside = relative(dir, path)
  return inside !== '' && inside !== '..' && !inside.startsWith(`..${sep}`) && !isAbsolute(inside)
}

/**
 * Where a template path leads: the path as written (for display) and the file it really is, after every symbolic
 * link on the way; both must lie inside the spec's directory (itself resolved, so a spec under a linked directory
 * works). A path that does not resolve (missing, a loop) is left to reading, which says why.
 */
export function resolveTemplate(specDir: string, template: string): {absolute: string; real: string} | {outside: string} {
  const absolute = resolve(specDir, template)
  if (isAbsolute(template) || !isInside(specDir, absolute)) {
    return {outside: `template ${quoted(template)} must be a relative path inside the spec's directory`}
  }
  let real: string
  try {
    real = realpathSync(absolute)
  } catch {
    return {absolute, real: absolute}
  }
  let realDir: string
  try {
    realDir = realpathSync(specDir)
  } catch {
    realDir = specDir
  }
  if (!isInside(realDir, real)) {
    return {outside: `template ${quoted(template)} is a symbolic link (or lies under one) that leads out of the spec's directory, to ${quoted(real)}; templates must be files inside it`}
  }
  return {absolute, real}
}

/** One template used by two roles is reported once. */
export function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = `${p.file}:${p.line}:${p.col}:${p.rule}:${p.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
