// `shoal lint` as a real process (the built CLI, see test/support/build.ts): exit codes, formats, --output, stdin and NO_COLOR.
import {spawnSync, type SpawnSyncReturns} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'

const REPO = join(import.meta.dirname, '..')
const FIXTURES = join(import.meta.dirname, 'fixtures')
const BROKEN = join(FIXTURES, 'broken')
const tmp = mkdtempSync(join(tmpdir(), 'shoal-lint-cli-'))

afterAll(() => rmSync(tmp, {recursive: true, force: true}))

function shoal(args: string[], options: {cwd?: string; input?: string; env?: Record<string, string>} = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(REPO, 'bin', 'run.js'), ...args], {
    cwd: options.cwd ?? BROKEN,
    input: options.input ?? '',
    encoding: 'utf8',
    env: {...process.env, NO_COLOR: '1', ...options.env},
  })
}

describe('shoal lint (process)', () => {
  it('exits 0 on clean input and prints a summary', () => {
    const run = shoal(['lint', join(FIXTURES, 'lint', 'good')])
    expect(run.stderr).toBe('')
    expect(run.stdout).toMatch(/✔ 2 files checked, 2 skipped, no problems/)
    expect(run.status).toBe(0)
  })

  it('exits 1 on problems, with file:line:col, rule and a code frame', () => {
    const run = shoal(['lint', 'role-key-typo.yaml'])
    expect(run.stdout).toContain('role-key-typo.yaml:8:5: error: unknown key "imgae" in role "app" (did you mean "image"?) [schema-unknown-key]')
    expect(run.stdout).toContain('      |     ^^^^^')
    expect(run.stdout).not.toContain('\u001b[')
    expect(run.status).toBe(1)
  })

  it('exits 1 on malformed YAML without a stack trace', () => {
    const run = shoal(['lint', 'unclosed-flow.yaml', 'alias-bomb.yaml', 'nul-byte.yaml'])
    expect(run.status).toBe(1)
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/\n\s+at /)
    expect(run.stdout).toContain('[yaml-alias-limit]')
  })

  it('exits 2 when a path does not exist', () => {
    const run = shoal(['lint', 'no-such-spec.yaml'])
    expect(run.status).toBe(2)
    expect(run.stderr).toContain('no such file or directory: no-such-spec.yaml')
  })

  it('exits 2 on an unknown flag or format', () => {
    expect(shoal(['lint', '--frobnicate', 'link-self.yaml']).status).toBe(2)
    expect(shoal(['lint', '--format', 'xml', 'link-self.yaml']).status).toBe(2)
  })

  it('passes warnings unless --strict', () => {
    expect(shoal(['lint', 'link-self.yaml']).status).toBe(0)
    expect(shoal(['lint', '--strict', 'link-self.yaml']).status).toBe(1)
  })

  it('reads - from stdin', () => {
    const run = shoal(['lint', '-', '--format', 'json'], {input: readFileSync(join(BROKEN, 'kind-typo.yaml'), 'utf8')})
    expect(run.status).toBe(1)
    expect(JSON.parse(run.stdout).problems).toMatchObject([{file: '<stdin>', rule: 'kind-unknown', line: 3, col: 7}])
  })

  it('--json returns the result object and keeps the exit code', () => {
    const run = shoal(['lint', '--json', 'link-self.yaml', 'cpu-zero.yaml'])
    expect(run.status).toBe(1)
    expect(JSON.parse(run.stdout).summary).toMatchObject({errors: 1, warnings: 1, failed: true})
  })

  it('writes SARIF to --output', () => {
    const out = join(tmp, 'report.sarif')
    const run = shoal(['lint', '--format', 'sarif', '--output', out, 'cpu-zero.yaml'])
    expect(run.status).toBe(1)
    expect(run.stdout).toBe('')
    const log = JSON.parse(readFileSync(out, 'utf8'))
    expect(log.version).toBe('2.1.0')
    expect(log.runs[0].results[0]).toMatchObject({ruleId: 'schema-range', level: 'error'})
  })

  it('prints GitHub annotations and JUnit', () => {
    expect(shoal(['lint', '-f', 'github', 'cpu-zero.yaml']).stdout).toMatch(/^::error file=cpu-zero\.yaml,line=8,col=10,/)
    expect(shoal(['lint', '-f', 'junit', 'cpu-zero.yaml']).stdout).toContain('<testcase classname="shoal.lint" name="cpu-zero.yaml">')
  })

  it('uses the generated validators when built', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const {validators, GENERATED_VALIDATORS} = await import(${JSON.stringify(join(REPO, 'dist', 'spec', 'schema.js'))})
      console.log(JSON.stringify({file: GENERATED_VALIDATORS, standalone: !('schema' in validators().cluster)}))`], {encoding: 'utf8'})
    expect(JSON.parse(run.stdout)).toEqual({file: join(REPO, 'dist', 'generated', 'validators.cjs'), standalone: true})
  })
})
