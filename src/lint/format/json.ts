// Machine output: the lint result as plain JSON (also what `--json` returns).
import type {Problem} from '../problem.js'
import type {LintResult, LintSummary} from '../lint.js'

export interface LintJson {
  summary: LintSummary & {failed: boolean}
  files: Array<{file: string; kind?: string; skipped?: string; problems: number}>
  problems: Problem[]
}

export function lintJson(result: LintResult, failed: boolean): LintJson {
  return {
    summary: {...result.summary, failed},
    files: result.files.map((f) => ({file: f.file, ...(f.kind ? {kind: f.kind} : {}), ...(f.skipped ? {skipped: f.skipped} : {}), problems: f.problems.length})),
    problems: result.problems,
  }
}

export function formatJson(result: LintResult, failed: boolean): string {
  return `${JSON.stringify(lintJson(result, failed), null, 2)}\n`
}
