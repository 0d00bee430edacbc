// GitHub Actions workflow commands: `::error file=…,line=…,col=…,title=…::message` annotations on the pull request.
import {quoteControl} from '../../util/text.js'
import type {Problem} from '../problem.js'
import type {LintResult} from '../lint.js'

const COMMAND = {error: 'error', warning: 'warning', info: 'notice'} as const

/** Escaping for a command's message (data); other control characters are quoted, as the Actions log renders ANSI escapes. */
export function escapeData(text: string): string {
  return quoteControl(text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A'))
}

/** Escaping for a command's property values, where `:` and `,` are separators too. */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C')
}

export function githubAnnotation(problem: Problem): string {
  const props = [`file=${escapeProperty(problem.file)}`]
  if (problem.line > 0) {
    props.push(`line=${problem.line}`, `col=${problem.col}`)
    if (problem.endLine) props.push(`endLine=${problem.endLine}`, `endColumn=${problem.endCol}`)
  }
  props.push(`title=${escapeProperty(`shoal ${problem.rule}`)}`)
  return `::${COMMAND[problem.severity]} ${props.join(',')}::${escapeData(problem.message)}`
}

export function formatGithub(result: LintResult): string {
  return result.problems.map((p) => `${githubAnnotation(p)}\n`).join('')
}
