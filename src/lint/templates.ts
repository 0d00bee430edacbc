// Template checks: each template is read, parsed (strict Liquid) and statically analysed once per lint run, then its
// variable references are checked against the node view the spec declares (roles, env params, links).
import {IncludeTag, LayoutTag, RenderTag, toValueSync, type Template} from 'liquidjs'
import {liquid} from '../render/engine.js'
import {CLUSTER_FIELDS, HOST_FIELDS, VIEW_ROOTS} from '../render/view.js'
import {firstInvalidUtf8, readBounded} from '../spec/load.js'
import type {RuleId} from './rules.js'
import {didYouMean} from './suggest.js'

type Segment = string | number | Segment[]

interface Reference {
  segments: Segment[]
  line: number
  col: number
}

interface Finding {
  rule: RuleId
  line: number
  col: number
  message: string
}

/** What one template file yields, independent of the spec using it. */
export interface AnalysedTemplate {
  /** Source text, for code frames; undefined when unreadable. */
  source?: string
  /** Problems of the file itself: unreadable, syntax, include tags. */
  findings: Finding[]
  /** Variables read from the global scope (locals from assign/capture/for are excluded). */
  references: Reference[]
}

/** The names a spec declares, which decide whether a template reference resolves. */
export interface DeclaredNames {
  roles: ReadonlySet<string>
  env: ReadonlySet<string>
  links: ReadonlySet<string>
}

/** Parses each template path once per instance: a lint run shares one cache across all its specs. */
export class TemplateCache {
  private readonly entries = new Map<string, AnalysedTemplate>()

  get(absolutePath: string): AnalysedTemplate {
    let entry = this.entries.get(absolutePath)
    if (!entry) {
      entry = analyseTemplateFile(absolutePath)
      this.entries.set(absolutePath, entry)
    }
    return entry
  }

  has(absolutePath: string): boolean {
    return this.entries.has(absolutePath)
  }
}

/** `undefined` when the file exists and is readable text; otherwise why not. */
function readTemplate(path: string): {source: string} | {error: string} {
  // Bounded like a spec: a template that is /dev/zero, a FIFO or huge is refused, never read without end.
  const read = readBounded(path, undefined, 'template')
  if (!('bytes' in read)) {
    return {error: read.message === 'cannot read template: no such file' ? 'template file not found' : read.message === 'cannot read template: is a directory' ? 'template path is a directory' : read.message}
  }
  const bytes = read.bytes
  if (firstInvalidUtf8(bytes) !== undefined || bytes.includes(0)) return {error: 'template is not UTF-8 text'}
  return {source: bytes.toString('utf8')}
}

export function analyseTemplateFile(path: string): AnalysedTemplate {
  const read = readTemplate(path)
  if ('error' in read) return {findings: [{rule: 'template-missing', line: 0, col: 0, message: read.error}], references: []}
  return analyseTemplateSource(read.source)
}

export function analyseTemplateSource(source: string): AnalysedTemplate {
  const engine = liquid()
  let parsed: Template[]
  try {
    parsed = engine.parse(source)
  } catch (err) {
    const position = (err as {token?: {getPosition?: () => [number, number]}}).token?.getPosition?.() ?? [1, 1]
    const message = String((err as Error).message).split('\n')[0]!.replace(/, line:\d+, col:\d+.*$/, '')
    return {source, findings: [{rule: 'template-syntax', line: position[0], col: position[1], message}], references: []}
  }
  const findings: Finding[] = []
  for (const tag of fileTags(parsed)) {
    const [line = 1, col = 1] = tag.token.getPosition()
    findings.push({rule: 'template-include', line, col, message: `{% ${tag.name} %} is not allowed: templates cannot read other files; put the content in this template`})
  }
  const references: Reference[] = []
  const analysis = engine.analyzeSync(parsed, {partials: false})
  for (const variables of Object.values(analysis.globals)) {
    for (const variable of variables) references.push({segments: variable.toArray(), line: variable.location.row, col: variable.location.col})
  }
  references.sort((a, b) => a.line - b.line || a.col - b.col)
  return {source, findings, references}
}

/** Every include/render/layout tag, however deeply nested in blocks. */
function fileTags(templates: Template[]): Array<IncludeTag | RenderTag | LayoutTag> {
  const found: Array<IncludeTag | RenderTag | LayoutTag> = []
  const stack = [...templates]
  while (stack.length > 0) {
    const template = stack.pop()!
    if (template instanceof IncludeTag || template instanceof RenderTag || template instanceof LayoutTag) found.push(template)
    // Children of tags (if/for/case bodies); `false`: never load partial files while looking.
    if (template.children) stack.push(...(toValueSync(template.children(false, true)) as Template[]))
  }
  return found
}

const ROLE_LIST_ROOTS = new Set(['hosts', 'adding_hosts', 'deleting_hosts'])
const LINK_FIELDS = ['cluster', 'env', 'hosts', 'adding_hosts', 'deleting_hosts']

/** Check a template's references against the declared names; findings carry the template's own line:col. */
export function checkReferences(template: AnalysedTemplate, declared: DeclaredNames): Finding[] {
  const findings: Finding[] = []
  for (const ref of template.references) {
    const finding = checkReference(ref.segments, declared)
    if (finding) findings.push({...finding, line: ref.line, col: ref.col})
  }
  return findings
}

function render(segments: Segment[]): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : Array.isArray(s) ? `[${render(s)}]` : i === 0 ? s : `.${s}`)).join('')
}

function checkReference(segments: Segment[], declared: DeclaredNames): Omit<Finding, 'line' | 'col'> | undefined {
  const [root, second] = segments
  const name = render(segments)
  if (typeof root !== 'string') return undefined
  if (!(VIEW_ROOTS as readonly string[]).includes(root)) {
    return {rule: 'template-unknown-variable', message: `unknown variable "${root}"${didYouMean(root, VIEW_ROOTS)}; templates can read ${VIEW_ROOTS.join(', ')}`}
  }
  if (typeof second !== 'string') return undefined
  switch (root) {
    case 'self':
    case 'host':
      return checkHostField(segments, 1, name)
    case 'cluster':
      return (CLUSTER_FIELDS as readonly string[]).includes(second)
        ? undefined
        : {rule: 'template-unknown-variable', message: `"${name}": the cluster has no field "${second}"${didYouMean(second, CLUSTER_FIELDS)}; fields: ${CLUSTER_FIELDS.join(', ')}`}
    case 'env':
      return declared.env.has(second)
        ? undefined
        : {rule: 'template-undeclared-env', message: `"${name}": env parameter "${second}" is not declared in the spec${didYouMean(second, declared.env)}`}
    case 'links': {
      if (!declared.links.has(second)) {
        return {rule: 'template-undeclared-link', message: `"${name}": link "${second}" is not declared in the spec's links${didYouMean(second, declared.links)}`}
      }
      const field = segments[2]
      if (typeof field !== 'string') return undefined
      if (!LINK_FIELDS.includes(field)) {
        return {rule: 'template-unknown-variable', message: `"${name}": a link has no field "${field}"${didYouMean(field, LINK_FIELDS)}; fields: ${LINK_FIELDS.join(', ')}`}
      }
      // The linked cluster's roles and env are not known here; only the host fields can be checked.
      return field !== 'cluster' && field !== 'env' && typeof segments[3] === 'string' ? checkHostList(segments, 4, name) : undefined
    }
    default:
      if (ROLE_LIST_ROOTS.has(root)) {
        if (second === 'size') return undefined
        if (!declared.roles.has(second)) {
          return {rule: 'template-undeclared-role', message: `"${name}": role "${second}" is not declared in the spec${didYouMean(second, declared.roles)}`}
        }
        return checkHostList(segments, 2, name)
      }
      return undefined
  }
}

/** `segments[index]` indexes a list of hosts: a number, `first`/`last` (then a host field) or `size`. */
function checkHostList(segments: Segment[], index: number, name: string): Omit<Finding, 'line' | 'col'> | undefined {
  const step = segments[index]
  if (step === undefined) return undefined
  if (typeof step !== 'string') return checkHostField(segments, index + 1, name)
  if (step === 'size') return undefined
  if (step === 'first' || step === 'last') return checkHostField(segments, index + 1, name)
  return {rule: 'template-unknown-variable', message: `"${name}": a host list has no property "${step}"; use an index, first, last or size`}
}

function checkHostField(segments: Segment[], index: number, name: string): Omit<Finding, 'line' | 'col'> | undefined {
  const field = segments[index]
  if (typeof field !== 'string' || (HOST_FIELDS as readonly string[]).includes(field)) return undefined
  return {rule: 'template-unknown-variable', message: `"${name}": a host has no field "${field}"${didYouMean(field, HOST_FIELDS)}; fields: ${HOST_FIELDS.join(', ')}`}
}

export type {Finding as TemplateFinding}
