// Human output: `file:line:col: severity: message [rule]`, a code frame with a caret, notes for skipped files, a summary.
import {quoteControl} from '../../util/text.js'
import type {Problem} from '../problem.js'
import type {LintResult} from '../lint.js'

/** Code frames show at most this many columns of a line: a minified 1 MB line is one error, not a screenful. */
export const FRAME_WIDTH = 120

export interface TextOptions {
  color: boolean
  /** Lines of context above the offending line. */
  contextLines?: number
}

const ANSI = {bold: '\u001b[1m', dim: '\u001b[2m', red: '\u001b[31m', yellow: '\u001b[33m', cyan: '\u001b[36m', green: '\u001b[32m', reset: '\u001b[0m'}

export function formatText(result: LintResult, options: TextOptions): string {
  const paint = (code: keyof typeof ANSI, text: string): string => (options.color ? `${ANSI[code]}${text}${ANSI.reset}` : text)
  const out: string[] = []
  // Everything that came from input (names, messages, source lines) is quoted before our own colours are added.
  for (const file of result.files) {
    if (file.skipped) out.push(`${paint('dim', 'note:')} ${quoteControl(file.file)} skipped: ${quoteControl(file.skipped)}`)
  }
  const lines = new Map<string, string[]>()
  for (const problem of result.problems) {
    const where = quoteControl(problem.line > 0 ? `${problem.file}:${problem.line}:${problem.col}` : problem.file)
    const severity = problem.severity === 'error' ? paint('red', 'error') : problem.severity === 'warning' ? paint('yellow', 'warning') : paint('cyan', 'info')
    out.push(`${paint('bold', where)}: ${severity}: ${quoteControl(problem.message)} ${paint('dim', `[${problem.rule}]`)}`)
    // Split each source once: 100,000 problems in one file must not split it 100,000 times.
    let split = lines.get(problem.file)
    const source = result.sources.get(problem.file)
    if (split === undefined && source !== undefined) lines.set(problem.file, (split = splitLines(source)))
    const frame = codeFrame(split, problem, options.contextLines ?? 1, paint)
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

/** Lines as the YAML loader counts them (a lone CR is a line break too). */
export function splitLines(source: string): string[] {
  return source.split(/\r\n|\r|\n/)
}

/**
 * The offending line with `context` lines above it and a caret under the column (underlining to the end when known).
 * Lines wider than FRAME_WIDTH show a window around the column, with `…` where text was cut.
 */
export function codeFrame(source: string | readonly string[] | undefined, problem: Problem, context: number, paint: (code: 'dim' | 'red', text: string) => string = (_c, t) => t): string | undefined {
  if (source === undefined || problem.line < 1) return undefined
  const lines = typeof source === 'string' ? splitLines(source) : source
  const index = problem.line - 1
  const text = lines[index]
  if (text === undefined) return undefined
  const col = Math.max(1, Math.min(problem.col, text.length + 1))
  // The window of columns shown: the whole line when it fits, else FRAME_WIDTH columns from a little before the caret.
  const start = text.length <= FRAME_WIDTH ? 0 : Math.max(0, Math.min(col - 1 - Math.floor(FRAME_WIDTH / 4), text.length - FRAME_WIDTH))
  const cut = (line: string): string => {
    if (line.length <= FRAME_WIDTH && start === 0) return visible(line)
    const piece = line.slice(start, start + FRAME_WIDTH)
    return `${start > 0 ? '…' : ''}${visible(piece)}${start + FRAME_WIDTH < line.length ? '…' : ''}`
  }
  const first = Math.max(0, index - context)
  const width = String(problem.line).length
  const frame: string[] = []
  for (let i = first; i <= index; i++) {
    const marker = i === index ? '>' : ' '
    frame.push(`${marker} ${String(i + 1).padStart(width)} | ${cut(lines[i]!)}`)
  }
  const sameLine = problem.endLine === problem.line && problem.endCol !== undefined && problem.endCol > col
  const span = Math.min(sameLine ? Math.min(problem.endCol! - col, Math.max(1, text.length - col + 1)) : 1, Math.max(1, FRAME_WIDTH - (col - 1 - start)))
  // Tabs before the column keep the caret aligned; a quoted control character is as wide as its quote.
  const pad = visible(text.slice(start, col - 1)).replace(/[^\t]/g, ' ')
  frame.push(`  ${' '.repeat(width)} | ${start > 0 ? ' ' : ''}${pad}${paint('red', '^'.repeat(span))}`)
  return frame.map((line) => `  ${line}`).join('\n')
}

/** Control characters would garble the terminal: shown quoted, as in every other human output. */
function visible(line: string): string {
  return quoteControl(line)
}
