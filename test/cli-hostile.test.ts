// Hostile specs through plan and render as processes (issue 15): templates that are symlinks out of the spec's
// directory, a saved plan over an existing file or a symlink, a template budget for the whole command, `render --node`
// rendering only that node, and escape sequences in values kept off the terminal.
import {execFileSync} from 'node:child_process'
import {lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {lintPaths} from '../src/lint/lint.js'
import {planCluster} from '../src/plan/plan.js'
import {TemplateBudget} from '../src/render/engine.js'
import {readClusterInput} from '../src/workspace/inputs.js'
import {describeResult, shoal, type CliResult} from './support/shoal-cli.js'
import {hosts} from './support/plan-fixtures.js'

const tmp = mkdtempSync(join(tmpdir(), 'shoal-cli-hostile-'))
afterAll(() => rmSync(tmp, {recursive: true, force: true}))
const SLOW = {timeout: 120_000}

const OUTSIDE_MARK = 'outside-the-spec-directory-7f3a'
const outside = join(tmp, 'elsewhere')
mkdirSync(outside)
writeFileSync(join(outside, 'secret.txt'), `${OUTSIDE_MARK}\n`)

const HOSTS = join(tmp, 'hosts.yaml')
writeFileSync(HOSTS, `apiVersion: shoal/v1\nkind: Hosts\nhosts:\n${Array.from({length: 5}, (_, i) => `  - {name: h${i + 1}, address: 10.9.0.${i + 1}}`).join('\n')}\n`)

/** A spec dir with one role `app` of `count` nodes whose files are the given templates (relative paths). */
function specDir(name: string, templates: string[], options: {count?: number; env?: string} = {}): {dir: string; spec: string} {
  const dir = join(tmp, name)
  mkdirSync(dir, {recursive: true})
  const files = templates.map((t, i) => `      - {template: ${JSON.stringify(t)}, dest: conf/f${i}}`).join('\n')
  const spec = join(dir, 'cluster.yaml')
  writeFileSync(spec, `apiVersion: shoal/v1\nkind: Cluster\nname: demo\n${options.env ?? ''}roles:\n  app:\n    image: a\n    cpu: 1\n    memory: 1Gi\n    disk: 1Gi\n    count: ${options.count ?? 1}\n    files:\n${files}\n`)
  return {dir, spec}
}

function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}

describe('templates that are symbolic links', () => {
  it('a template linked to a file outside the spec directory: template-path at the `template:` line; render refuses and prints none of it', SLOW, async () => {
    const {dir, spec} = specDir('link-file', ['tpl.liquid'])
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'tpl.liquid'))
    const result = await lintPaths([spec])
    expect(result.problems.map((p) => `${p.rule} ${p.line}:${p.col}`)).toEqual(['template-path 12:20'])
    expect(result.problems[0]!.message).toContain(`leads out of the spec's directory, to "${join(outside, 'secret.txt')}"`)
    const state = join(tmp, 'state-link-file')
    const render = await shoal(['render', spec, '--hosts', HOSTS, '--node', 'demo-app-1', '--state', state])
    expectExit(render, 1)
    expect(render.stderr).toContain('[template-path]')
    expect(render.stdout + render.stderr).not.toContain(OUTSIDE_MARK)
  })

  it('a template under a directory linked to elsewhere (as to /etc) is refused the same way', async () => {
    const {dir, spec} = specDir('link-dir', ['etc/secret.txt'])
    symlinkSync(outside, join(dir, 'etc'))
    const result = await lintPaths([spec])
    expect(result.problems.map((p) => `${p.rule} ${p.line}:${p.col}`)).toEqual(['template-path 12:20'])
    expect(() => readClusterInput(spec)).toThrow(/template-path/)
  })

  it('a link that stays inside the spec directory is fine, and what lint read is what the plan renders', async () => {
    const {dir, spec} = specDir('link-inside', ['current.liquid'])
    mkdirSync(join(dir, 'v2'))
    writeFileSync(join(dir, 'v2', 'app.liquid'), 'id={{ self.sid }}\n')
    symlinkSync(join(dir, 'v2', 'app.liquid'), join(dir, 'current.liquid'))
    expect((await lintPaths([spec])).problems).toEqual([])
    expect(readClusterInput(spec).templates.get('current.liquid')).toBe('id={{ self.sid }}\n')
  })

  it('a template that is a FIFO is refused without waiting for a writer', async () => {
    const {dir, spec} = specDir('fifo-template', ['pipe.liquid'])
    execFileSync('mkfifo', [join(dir, 'pipe.liquid')])
    const result = await lintPaths([spec])
    expect(result.problems.map((p) => `${p.rule} ${p.line}:${p.col}`)).toEqual(['template-missing 12:20'])
    expect(result.problems[0]!.message).toContain('it is a FIFO (named pipe), not a regular file')
  })
})

describe('plan --out', () => {
  it('over an existing 0644 file: a new file in its place, mode 0600', SLOW, async () => {
    const {dir, spec} = specDir('out-file', ['a.liquid'], {env: 'env:\n  pw: {type: string, default: "a-long-secret", secret: true}\n'})
    writeFileSync(join(dir, 'a.liquid'), 'pw={{ env.pw }}\n')
    const out = join(dir, 'zk.plan')
    writeFileSync(out, 'old content\n', {mode: 0o644})
    const before = statSync(out)
    const run = await shoal(['plan', spec, '--hosts', HOSTS, '--out', out, '--state', join(tmp, 'state-out-file')])
    expectExit(run, 0)
    const after = statSync(out)
    expect(after.mode & 0o777).toBe(0o600)
    expect(after.ino).not.toBe(before.ino)
    expect(JSON.parse(readFileSync(out, 'utf8')).format).toBe('shoal-plan/v1')
    expect(run.stdout).not.toContain('a-long-secret')
  })

  it('over a symbolic link: the link is replaced, the file it pointed at is untouched', SLOW, async () => {
    const {dir, spec} = specDir('out-link', ['a.liquid'])
    writeFileSync(join(dir, 'a.liquid'), 'id={{ self.sid }}\n')
    const victim = join(outside, 'victim.txt')
    writeFileSync(victim, 'do not touch\n', {mode: 0o644})
    const out = join(dir, 'linked.plan')
    symlinkSync(victim, out)
    const run = await shoal(['plan', spec, '--hosts', HOSTS, '--out', out, '--state', join(tmp, 'state-out-link')])
    expectExit(run, 0)
    expect(lstatSync(out).isSymbolicLink()).toBe(false)
    expect(lstatSync(out).mode & 0o777).toBe(0o600)
    expect(readFileSync(victim, 'utf8')).toBe('do not touch\n')
    expect(statSync(victim).mode & 0o777).toBe(0o644)
  })
})

const HEAVY = '{% for a in (1..10000) %}{% for b in (1..10000) %}{% if b == 0 %}x{% endif %}{% endfor %}{% endfor %}\n'

describe('the template budget of a command', () => {
  it('five heavy templates on five nodes stop at the budget with an error naming the template (planner)', () => {
    const {spec} = specDir('heavy-lib', ['h1.liquid', 'h2.liquid', 'h3.liquid', 'h4.liquid', 'h5.liquid'], {count: 5})
    for (let i = 1; i <= 5; i++) writeFileSync(join(tmp, 'heavy-lib', `h${i}.liquid`), HEAVY)
    const input = readClusterInput(spec)
    const started = performance.now()
    const plan = planCluster({spec: input.spec, templates: input.templates, inventory: hosts(5), operation: {kind: 'create'}, templateBudget: new TemplateBudget(1_000)})
    const ms = performance.now() - started
    const budget = plan.errors.find((e) => e.code === 'template-budget')!
    expect(budget.message).toMatch(/^template h\d\.liquid \(node demo-app-\d\): the template budget of 1 s for this command is used up \(h1\.liquid/)
    expect(budget.template).toMatch(/^h\d\.liquid$/)
    expect(ms).toBeLessThan(5_000)
  })

  it('through the CLI: plan exits 1 within the default 10 s budget (plus start-up), naming the template', SLOW, async () => {
    const {dir, spec} = specDir('heavy-cli', ['h1.liquid', 'h2.liquid', 'h3.liquid', 'h4.liquid', 'h5.liquid'], {count: 5})
    for (let i = 1; i <= 5; i++) writeFileSync(join(dir, `h${i}.liquid`), HEAVY)
    const started = performance.now()
    const run = await shoal(['plan', spec, '--hosts', HOSTS, '--state', join(tmp, 'state-heavy')], {limitMs: 90_000})
    const ms = performance.now() - started
    expectExit(run, 1)
    expect(run.stderr).toMatch(/\[template-budget\] template h\d\.liquid \(node demo-app-\d\): the template budget of 10 s for this command is used up/)
    expect(run.stderr).not.toMatch(/\n\s+at /)
    // Without the budget: 25 renders of up to 2 s (wall clock) each, about 50 s whatever the machine's load.
    expect(ms).toBeLessThan(40_000)
    console.log(`plan with five heavy templates on five nodes stopped after ${(ms / 1000).toFixed(1)} s`)
  })
})

describe('render --node renders only that node', () => {
  // Rendering fails on every node but the first (hosts.app[9] does not exist): only rendering node 1 alone succeeds.
  const ONLY_FIRST = '{% if self.sid > 1 %}{{ hosts.app[9].node_id }}{% endif %}id={{ self.sid }}\n'

  it('the planner renders only the named node', () => {
    const {dir, spec} = specDir('only-lib', ['t.liquid'], {count: 3})
    writeFileSync(join(dir, 't.liquid'), ONLY_FIRST)
    const input = readClusterInput(spec)
    const base = {spec: input.spec, templates: input.templates, inventory: hosts(5), operation: {kind: 'create'} as const}
    expect(planCluster(base).errors.map((e) => `${e.code} ${e.node}`)).toEqual(['template-render demo-app-2', 'template-render demo-app-3'])
    const only = planCluster({...base, renderOnly: 'demo-app-1'})
    expect(only.errors).toEqual([])
    expect(only.nodes.map((n) => `${n.node_id}:${n.files.length}`)).toEqual(['demo-app-1:1', 'demo-app-2:0', 'demo-app-3:0'])
  })

  it('through the CLI: render --node of the first node prints its file while plan fails on the others', SLOW, async () => {
    const {dir, spec} = specDir('only-cli', ['t.liquid'], {count: 3})
    writeFileSync(join(dir, 't.liquid'), ONLY_FIRST)
    const state = join(tmp, 'state-only')
    const render = await shoal(['render', spec, '--hosts', HOSTS, '--node', 'demo-app-1', '--state', state])
    expectExit(render, 0)
    expect(render.stdout).toBe('# /srv/shoal/demo/demo-app-1/conf/f0 (mode 0644)\nid=1\n\n')
    const plan = await shoal(['plan', spec, '--hosts', HOSTS, '--state', state])
    expectExit(plan, 1)
    expect(plan.stderr).toContain('rendering for node demo-app-2')
  })
})

describe('escape sequences in values never reach the terminal raw', () => {
  it('plan and render quote them; render --json keeps the exact content', SLOW, async () => {
    const {dir, spec} = specDir('escapes', ['t.liquid'], {env: 'env:\n  banner: {type: string, default: "\\e[2J\\e[HAll good\\r"}\n'})
    writeFileSync(join(dir, 't.liquid'), 'banner={{ env.banner }}\n')
    const state = join(tmp, 'state-escapes')
    const plan = await shoal(['plan', spec, '--hosts', HOSTS, '--state', state])
    expectExit(plan, 0)
    expect(plan.stdout).toContain('+banner=\\x1b[2J\\x1b[HAll good\\r\n')
    expect(plan.stdout).not.toContain('\u001b')
    expect(plan.stdout).not.toContain('\r')
    const render = await shoal(['render', spec, '--hosts', HOSTS, '--node', 'demo-app-1', '--state', state])
    expectExit(render, 0)
    expect(render.stdout).not.toContain('\u001b')
    expect(render.stdout).not.toContain('\r')
    const json = await shoal(['render', spec, '--hosts', HOSTS, '--node', 'demo-app-1', '--state', state, '--json'])
    expectExit(json, 0)
    expect((JSON.parse(json.stdout) as {files: Array<{content: string}>}).files[0]!.content).toBe('banner=\u001b[2J\u001b[HAll good\r\n')
  })
})
