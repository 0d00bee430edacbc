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

/** Template work one command may do in all (plan, render, apply...): the per-render limit alone let five heavy templates on five nodes take 41 s. */
export const TEMPLATE_BUDGET_MS = 10_000

/**
 * Time for all renders of one command. Each render may use at most what is left (and at most the per-render limit);
 * the time each template took is kept so the error can name where it went.
 */
export class TemplateBudget {
  private spent = 0
  private readonly byTemplate = new Map<string, {ms: number; renders: number}>()
  exhausted = false

  constructor(readonly totalMs: number = TEMPLATE_BUDGET_MS, private readonly clock: () => number = () => performance.now()) {}

  get remainingMs(): number {
    return Math.max(0, this.totalMs - this.spent)
  }

  /** Run one render, charged to `template`. */
  run<T>(template: string, render: (limitMs: number) => T): T {
    const limit = Math.min(LIMITS.renderLimit, this.remainingMs)
    const start = this.clock()
    try {
      if (limit <= 0) throw new Error('template budget used up')
      return render(limit)
    } catch (err) {
      // The render stopped because what was left of the budget (not its own per-render limit) ran out.
      if (limit <= 0 || (limit < LIMITS.renderLimit && /render limit exceeded/.test(String((err as Error).message)))) this.exhausted = true
      throw err
    } finally {
      const ms = this.clock() - start
      this.spent += ms
      const entry = this.byTemplate.get(template) ?? {ms: 0, renders: 0}
      entry.ms += ms
      entry.renders++
      this.byTemplate.set(template, entry)
    }
  }

  /** Why the command stopped, naming the template that was rendering and where the time went. */
  message(template: string, node: string): string {
    const top = [...this.byTemplate].sort((a, b) => b[1].ms - a[1].ms).slice(0, 3)
      .map(([name, {ms, renders}]) => `${name} ${(ms / 1000).toFixed(1)} s in ${renders} render${renders === 1 ? '' : 's'}`)
    return `template ${template} (node ${node}): the template budget of ${this.totalMs / 1000} s for this command is used up (${top.join(', ')}); templates are config files and should render in milliseconds: simplify the loops of the slowest template`
  }
}

/** Render a parsed template against a context (plain data only), within `budget` when one is given. */
export function renderTemplate(parsed: ParsedTemplate, context: object, budget?: TemplateBudget, name = 'template'): string {
  if (!budget) return liquid().renderSync(parsed, context) as string
  return budget.run(name, (renderLimit) => liquid().renderSync(parsed, context, {renderLimit}) as string)
}
