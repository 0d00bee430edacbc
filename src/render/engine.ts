// The template engine: liquidjs locked down (own properties only, strict variables and filters, resource limits).
import {Liquid, type Template} from 'liquidjs'

/** Limits against hostile templates: a spec's templates are small config files. */
const LIMITS = {parseLimit: 1_000_000, renderLimit: 2_000, memoryLimit: 64 * 1024 * 1024}

let engine: Liquid | undefined

/** One shared engine. Templates are parsed once and rendered many times. */
export function liquid(): Liquid {
  engine ??= new Liquid({
    ownPropertyOnly: true,
    strictFilters: true,
    strictVariables: true,
    lenientIf: true,
    jsTruthy: false,
    greedy: false,
    cache: false,
    relativeReference: false,
    root: [],
    partials: [],
    layouts: [],
    ...LIMITS,
  })
  return engine
}

export type ParsedTemplate = Template[]

/** Parse a template source; throws liquidjs errors that carry line:col. */
export function parseTemplate(source: string): ParsedTemplate {
  return liquid().parse(source)
}

/** Render a parsed template against a context (plain data only). */
export function renderTemplate(parsed: ParsedTemplate, context: object): string {
  return liquid().renderSync(parsed, context) as string
}
