// JUnit XML for CI test reports: one testcase per linted file; failing problems become a <failure>, skipped files <skipped>.
import {quoteControl} from '../../util/text.js'
import type {Problem} from '../problem.js'
import type {LintResult} from '../lint.js'

/** Escape text for XML content and attributes: control characters quoted (visible in CI reports), then what XML 1.0 cannot carry dropped. */
export function xmlEscape(text: string): string {
  return quoteControl(text)
    // eslint-disable-next-line no-control-regex -- XML 1.0 forbids these characters: matching them is the point
    .replace(/[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

function line(problem: Problem): string {
  const where = problem.line > 0 ? `${problem.file}:${problem.line}:${problem.col}` : problem.file
  return `${where}: ${problem.severity}: ${problem.message} [${problem.rule}]`
}

export function formatJunit(result: LintResult, options: {strict: boolean}): string {
  const fails = (p: Problem): boolean => p.severity === 'error' || (options.strict && p.severity === 'warning')
  const cases: string[] = []
  let failures = 0
  for (const file of result.files) {
    const name = xmlEscape(file.file)
    if (file.skipped) {
      cases.push(`    <testcase classname="shoal.lint" name="${name}">\n      <skipped message="${xmlEscape(file.skipped)}"/>\n    </testcase>`)
      continue
    }
    const failing = file.problems.filter(fails)
    const other = file.problems.filter((p) => !fails(p))
    const body: string[] = []
    if (failing.length > 0) {
      failures++
      const first = failing[0]!
      body.push(`      <failure type="${xmlEscape(first.rule)}" message="${xmlEscape(`${failing.length} problem${failing.length === 1 ? '' : 's'}: ${first.message}`)}">${xmlEscape(failing.map(line).join('\n'))}</failure>`)
    }
    if (other.length > 0) body.push(`      <system-out>${xmlEscape(other.map(line).join('\n'))}</system-out>`)
    cases.push(body.length === 0
      ? `    <testcase classname="shoal.lint" name="${name}"/>`
      : `    <testcase classname="shoal.lint" name="${name}">\n${body.join('\n')}\n    </testcase>`)
  }
  const tests = result.files.length
  const skipped = result.summary.skipped
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="shoal lint" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}">`,
    `  <testsuite name="shoal lint" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}
