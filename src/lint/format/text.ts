// Human output: `file:line:col: severity: message [rule]`, a code frame with a caret, notes for skipped files, a summary.
import type {Problem} from '../problem.js'
import type {LintResult} from '../lint.js'

export interface TextOptions {
  color: boolean
  /** Lines of context above the offending line. */
  contextLines?: number
}

const ANSI = {bold: '\u001b[1m', dim: '\u001b[2m', red: '\u001b[31m', yellow: '\u001b[33m', cyan: '\u001b[36m', green: '\u001b[32m', reset: '\u001b[0m'}

export function formatText(result: LintResult, options: TextOptions): string {
  const paint = (code: keyof typeof ANSI, text: string): string => (options.color ? `${ANSI[code]}${text}${ANSI.reset}` : text)
  const out: string[] = []
  for (const file of result.files) {
    if (file.skipped) out.push(`${paint('dim', 'note:')} ${file.file} skipped: ${file.skipped}`)
  }
  for (const problem of result.problems) {
    const where = problem.line > 0 ? `${problem.file}:${problem.line}:${problem.col}` : problem.file
    const severity = problem.severity === 'error' ? paint('red', 'error') : problem.severity === 'warning' ? paint('yellow', 'warning') : paint('cyan', 'info')
    out.push(`${paint('bold', where)}: ${severity}: ${problem.message} ${paint('dim', `[${problem.rule}]`)}`)
    const frame = codeFrame(result.sources.get(problem.file), problem, options.contextLines ?? 1, paint)
    if (frame) out.push(frame)
  }
  const {errors, warnings, infos, files, skipped} = result.summary
  const checked = `${files - skipped} file${files - skipped === 1 ? '' : 's'} checked${skipped > 0 ? `, ${skipped} skipped` : ''}`
  if (errors + warnings + infos === 0) {
    out.push(paint('green', `✔ ${checked}, no problems`))
  } else {
    const parts = [plural(errors, 'error'), plural(warnings, 'warning'), ...(infos > 0 ? [plural(infos, 'note')] : [])]
    out.push(paint(errors > 0 ? 'red' : 'yellow', `✖ ${parts.join(', ')} (${checked})`))
  }
  return `${out.join('\n')}\n`
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** The offending line with `context` lines above it and a caret under the column (underlining to the end when known). */
export function codeFrame(source: string | undefined, problem: Problem, context: number, paint: (code: 'dim' | 'red', text: string) => string = (_c, t) => t): string | undefined {
  if (source === undefined || problem.line < 1) return undefined
  const lines = source.split(/\r?\n/)
  const index = problem.line - 1
  const text = lines[index]
  if (text === undefined) return undefined
  const first = Math.max(0, index - context)
  const width = String(problem.line).length
  const frame: string[] = []
  for (let i = first; i <= index; i++) {
    const marker = i === index ? '>' : ' '
    frame.push(`${marker} ${String(i + 1).padStart(width)} | ${visible(lines[i]!)}`)
  }
  const col = Math.max(1, Math.min(problem.col, text.length + 1))
  const sameLine = problem.endLine === problem.line && problem.endCol !== undefined && problem.endCol > col
  const span = sameLine ? Math.min(problem.endCol! - col, Math.max(1, text.length - col + 1)) : 1
  // Tabs before the column keep the caret aligned.
  const pad = text.slice(0, col - 1).replace(/[^\t]/g, ' ')
  frame.push(`  ${' '.repeat(width)} | ${pad}${paint('red', '^'.repeat(span))}`)
  return frame.map((line) => `  ${line}`).join('\n')
}

/** Control characters would garble the terminal. */
function visible(line: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must be matched here
  return line.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '?')
}
