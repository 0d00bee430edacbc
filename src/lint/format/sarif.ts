// SARIF 2.1.0 for GitHub code scanning: one run, every rule in the driver, results with repository-relative locations.
import {isAbsolute, relative, sep} from 'node:path'
import type {Severity} from '../problem.js'
import type {LintResult} from '../lint.js'
import {RULES} from '../rules.js'

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {error: 'error', warning: 'warning', info: 'note'}

const README_RULES = 'https://github.com/shoal/shoal#lint-rules'

/** Up to the first ". " (or the whole text). */
function firstSentence(text: string): string {
  const end = text.search(/\.\s/)
  return end === -1 ? text : text.slice(0, end + 1)
}

export interface SarifOptions {
  /** Locations are written relative to this directory (the repository root in CI). */
  cwd: string
  version: string
}

/** A relative, forward-slash URI as code scanning expects. */
export function artifactUri(file: string, cwd: string): string {
  const path = isAbsolute(file) ? relative(cwd, file) : file
  return path.split(sep).map(encodeURIComponent).join('/')
}

export function sarifLog(result: LintResult, options: SarifOptions): object {
  const ruleIndex = new Map<string, number>(RULES.map((rule, index) => [rule.id, index]))
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'shoal',
            version: options.version,
            informationUri: 'https://github.com/shoal/shoal',
            // GitHub code scanning shows fullDescription and help on each alert; shortDescription is the first sentence.
            rules: RULES.map((rule) => ({
              id: rule.id,
              name: rule.id,
              shortDescription: {text: firstSentence(rule.description)},
              fullDescription: {text: rule.description},
              help: {
                text: `${rule.description} Rule ${rule.id} (${rule.group}, ${rule.severity}); every rule is listed in the README under "Lint rules".`,
                markdown: `**${rule.id}** (${rule.group}, ${rule.severity}): ${rule.description}\n\nSee [Lint rules](${README_RULES}).`,
              },
              helpUri: README_RULES,
              defaultConfiguration: {level: LEVEL[rule.severity]},
            })),
          },
        },
        results: result.problems.map((problem) => ({
          ruleId: problem.rule,
          ...(ruleIndex.has(problem.rule) ? {ruleIndex: ruleIndex.get(problem.rule)} : {}),
          level: LEVEL[problem.severity],
          message: {text: problem.message},
          locations: [
            {
              physicalLocation: {
                artifactLocation: {uri: artifactUri(problem.file, options.cwd), uriBaseId: '%SRCROOT%'},
                // SARIF lines and columns start at 1; a problem without a position has no region.
                ...(problem.line > 0
                  ? {region: {startLine: problem.line, startColumn: Math.max(1, problem.col), ...(problem.endLine ? {endLine: problem.endLine, endColumn: problem.endCol} : {})}}
                  : {}),
              },
            },
          ],
        })),
      },
    ],
  }
}

export function formatSarif(result: LintResult, options: SarifOptions): string {
  return `${JSON.stringify(sarifLog(result, options), null, 2)}\n`
}
