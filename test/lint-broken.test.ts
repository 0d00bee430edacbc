// The broken-spec corpus: every file in test/fixtures/broken states its problems in `# expect: rule [file:]line:col`
// lines (in the header, or at the end where one more header line would move the positions), and lint must report
// exactly those (rule, file, position) — no more, no fewer.
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {lintPaths} from '../src/lint/lint.js'
import {RULES} from '../src/lint/rules.js'

const DIR = join(import.meta.dirname, 'fixtures', 'broken')
const FIXTURES = readdirSync(DIR).filter((name) => name.endsWith('.yaml')).sort()

function expectations(name: string): string[] {
  // latin1: some fixtures are deliberately not UTF-8; the header lines are ASCII either way.
  const text = readFileSync(join(DIR, name), 'latin1')
  return [...text.matchAll(/^# expect: (\S+) (?:(\S+):)?(\d+:\d+)$/gm)].map((m) => `${m[1]} ${m[2] ?? name}:${m[3]}`).sort()
}

async function reported(name: string): Promise<string[]> {
  const result = await lintPaths([name], {cwd: DIR})
  return result.problems.map((p) => `${p.rule} ${p.file}:${p.line}:${p.col}`).sort()
}

describe('broken spec corpus', () => {
  it('holds at least 60 specs, each with an expectation', () => {
    expect(FIXTURES.length).toBeGreaterThanOrEqual(60)
    for (const name of FIXTURES) expect(expectations(name), name).not.toEqual([])
  })

  it.each(FIXTURES)('%s', async (name) => {
    expect(await reported(name)).toEqual(expectations(name))
  })

  it('covers every rule except the file-level ones exercised in test/lint.test.ts', () => {
    const covered = new Set(FIXTURES.flatMap((name) => expectations(name).map((e) => e.split(' ')[0])))
    const uncovered = RULES.map((r) => r.id).filter((id) => !covered.has(id))
    expect(uncovered.sort()).toEqual(['file-too-large', 'file-unreadable'])
  })
})
