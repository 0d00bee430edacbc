// One entry point for every lint output format, all rendering the same result object.
import type {LintResult} from '../lint.js'
import {formatGithub} from './github.js'
import {formatJson} from './json.js'
import {formatJunit} from './junit.js'
import {formatSarif} from './sarif.js'
import {formatText} from './text.js'

export const FORMATS = ['text', 'json', 'sarif', 'junit', 'github'] as const
export type LintFormat = (typeof FORMATS)[number]

export interface FormatOptions {
  color: boolean
  strict: boolean
  failed: boolean
  cwd: string
  version: string
}

export function formatLint(result: LintResult, format: LintFormat, options: FormatOptions): string {
  switch (format) {
    case 'text': return formatText(result, {color: options.color})
    case 'json': return formatJson(result, options.failed)
    case 'sarif': return formatSarif(result, {cwd: options.cwd, version: options.version})
    case 'junit': return formatJunit(result, {strict: options.strict})
    case 'github': return formatGithub(result)
  }
}
