// Secrets that leak sideways (issue 15): what a secret touched is sensitive as a whole. A file whose template reads a
// secret is said to change and never shown (text, --json, before and after); old values stay hidden; short secrets do
// not garble unrelated output; values in messages are redacted.
import {describe, expect, it} from 'vitest'
import {planCluster, redactPlan, renderPlan, type PlanInput} from '../src/plan/index.js'
import {redactTree} from '../src/plan/show.js'
import {lintPaths} from '../src/lint/lint.js'
import {formatLint} from '../src/lint/format/index.js'
import {clusterRoot, treeOf} from '../src/plan/tree.js'
import type {Plan} from '../src/plan/types.js'
import type {ClusterSpec} from '../src/spec/types.js'
import {applied, hosts, zkSpec} from './support/plan-fixtures.js'

const SECRET = 's3cr3t-Pass+word/é&x'

/** A spec whose `conf/app.cfg` reads the secret through `template`, and whose `data/myid` does not. */
function secretSpec(value: string, template: string): {spec: ClusterSpec; templates: Map<string, string>} {
  const spec = zkSpec({count: 2, files: [{template: 'app.liquid', dest: 'conf/app.cfg'}, {template: 'myid.liquid', dest: 'data/myid'}]}, {
    env: {password: {type: 'string', default: value, secret: true}, port: {type: 'integer', default: 2181}},
  })
  return {spec, templates: new Map([['app.liquid', `port={{ env.port }}\n${template}\n`], ['myid.liquid', 'id={{ self.sid }} port={{ env.port }}\n']])}
}

function plan(input: Partial<PlanInput> & Pick<PlanInput, 'spec' | 'templates'>): Plan {
  const p = planCluster({inventory: hosts(3), operation: {kind: 'create'}, ...input})
  expect(p.errors).toEqual([])
  return p
}

/** Every form liquid's filters can give the secret, none of which exact-value redaction would find. */
const FILTERED = {
  upcase: (s: string) => s.toUpperCase(),
  url_encode: (s: string) => encodeURIComponent(s).replace(/%20/g, '+'),
  base64_encode: (s: string) => Buffer.from(s).toString('base64'),
  escape: (s: string) => s.replace(/&/g, '&amp;'),
  'split: "" | reverse | join: ""': (s: string) => [...s].reverse().join(''),
  'slice: 1, 6': (s: string) => s.slice(1, 7),
} as const

function shown(p: Plan): string {
  return `${renderPlan(p)}\n${JSON.stringify(redactPlan(p))}`
}

describe('a file whose template reads a secret is sensitive as a whole', () => {
  it.each(Object.entries(FILTERED))('through `%s`: neither the value nor the transformed text is shown, in text or JSON', (filter, transform) => {
    const {spec, templates} = secretSpec(SECRET, `password={{ env.password | ${filter} }}`)
    const p = plan({spec, templates})
    const rendered = p.nodes[0]!.files.find((f) => f.dest === 'conf/app.cfg')!
    expect(rendered.content).toContain(transform(SECRET)) // the real file does carry it
    expect(rendered.sensitive).toBe(true)
    const out = shown(p)
    expect(out).not.toContain(transform(SECRET))
    expect(out).not.toContain(SECRET)
    // Only the template's own source (registered with the cluster) has `password=`, followed by its tag.
    expect(out).not.toMatch(/password=[^{]/)
    expect(renderPlan(p)).toContain('+++ planned/zk-main-zk-1/conf/app.cfg\n@@ created; content hidden: the template reads a secret @@')
  })

  it('files that do not read a secret are shown as before, with their diff', () => {
    const {spec, templates} = secretSpec(SECRET, 'password={{ env.password }}')
    const p = plan({spec, templates})
    expect(p.nodes[0]!.files.find((f) => f.dest === 'data/myid')!.sensitive).toBeUndefined()
    expect(renderPlan(p)).toContain('+++ planned/zk-main-zk-1/data/myid\n@@ -0,0 +1,1 @@\n+id=1 port=2181\n')
    expect(JSON.stringify(redactPlan(p).nodes[0]!.files.find((f) => f.dest === 'data/myid'))).toContain('id=1 port=2181')
  })

  it('reading the whole env, a computed name or an assigned copy counts as reading the secret', () => {
    for (const template of ['{{ env | json }}', '{% assign k = "pass" | append: "word" %}{{ env[k] }}', '{% assign e = env %}{{ e.password | upcase }}', '{% for p in env %}{{ p[1] }}{% endfor %}']) {
      const {spec, templates} = secretSpec(SECRET, template)
      const p = plan({spec, templates})
      expect(p.nodes[0]!.files.find((f) => f.dest === 'conf/app.cfg')!.sensitive, template).toBe(true)
      expect(shown(p), template).not.toContain(SECRET.toUpperCase())
    }
  })

  it('the registry writes, desired state and tree hide the file and the env value too', () => {
    const {spec, templates} = secretSpec(SECRET, 'password={{ env.password | base64_encode }}')
    const p = plan({spec, templates})
    const r = redactPlan(p)
    const tree = Object.fromEntries(r.tree)
    expect(tree['clusters/zk-main/files/zk-main-zk-1/conf%2Fapp.cfg']).toBe('<redacted>')
    expect(tree['clusters/zk-main/env/password']).toBe('<redacted>')
    expect(tree['clusters/zk-main/files/zk-main-zk-1/data%2Fmyid']).toBe('id=1 port=2181\n')
    expect(r.desired!.files['zk-main-zk-1']!['conf/app.cfg']).toBe('<redacted>')
    expect(JSON.stringify(r.steps)).not.toContain(Buffer.from(SECRET).toString('base64'))
    // The saved plan (not redacted) still carries what the registry needs.
    expect(Object.fromEntries(p.tree)['clusters/zk-main/env/password']).toBe(SECRET)
  })
})

describe('a registered tree, as `get` shows it', () => {
  it('hides the secret env value, the stored default and every node\'s sensitive file, and nothing else', () => {
    const {spec, templates} = secretSpec(SECRET, 'password={{ env.password | base64_encode }}')
    const root = clusterRoot('zk-main')
    const tree = Object.fromEntries(Object.entries(treeOf(plan({spec, templates}).desired!)).filter(([k]) => k.startsWith(root)).map(([k, v]) => [k.slice(root.length), v]))
    const shown = redactTree('zk-main', tree)
    expect(shown['env/password']).toBe('<redacted>')
    expect(shown['files/zk-main-zk-1/conf%2Fapp.cfg']).toBe('<redacted>')
    expect(shown['files/zk-main-zk-2/conf%2Fapp.cfg']).toBe('<redacted>')
    expect(shown['files/zk-main-zk-2/data%2Fmyid']).toBe('id=2 port=2181\n')
    expect(JSON.stringify(shown)).not.toContain(SECRET)
    expect(JSON.stringify(shown)).not.toContain(Buffer.from(SECRET).toString('base64'))
  })
})

describe('a secret that changes', () => {
  it('shows neither the old nor the new value: the diff says the file changed, `before` and `after` are hidden', () => {
    const OLD = 'old-secret-value-1'
    const NEW = 'new-secret-value-2'
    const first = secretSpec(OLD, 'password={{ env.password }}')
    const current = applied(plan(first))
    const next = secretSpec(NEW, 'password={{ env.password }}')
    const p = plan({...next, current, operation: {kind: 'apply'}})
    const change = p.nodes[0]!.fileChanges.find((c) => c.dest === 'conf/app.cfg')!
    expect(change).toMatchObject({action: 'update', sensitive: true, before: `port=2181\npassword=${OLD}\n`})
    const r = redactPlan(p)
    expect(r.nodes[0]!.fileChanges.find((c) => c.dest === 'conf/app.cfg')).toEqual({dest: 'conf/app.cfg', action: 'update', before: '<redacted>', after: '<redacted>', sensitive: true})
    const out = shown(p)
    expect(out).not.toContain(OLD)
    expect(out).not.toContain(NEW)
    expect(renderPlan(p)).toContain('--- registered/zk-main-zk-1/conf/app.cfg\n+++ planned/zk-main-zk-1/conf/app.cfg\n@@ changed; content hidden: the template reads a secret @@')
  })

  it('a file whose old template read a secret stays hidden after the template stops reading it', () => {
    const first = secretSpec('old-secret-value-1', 'password={{ env.password | upcase }}')
    const current = applied(plan(first))
    const next = secretSpec('old-secret-value-1', 'no password any more')
    const p = plan({...next, current, operation: {kind: 'apply'}})
    expect(p.nodes[0]!.fileChanges.find((c) => c.dest === 'conf/app.cfg')!.sensitive).toBe(true)
    expect(shown(p)).not.toContain('OLD-SECRET-VALUE-1')
  })
})

describe('short secrets', () => {
  it('a one-letter secret is hidden where it is known to be, without garbling unrelated text', () => {
    const {spec, templates} = secretSpec('o', 'password={{ env.password }}')
    const p = plan({spec, templates})
    const text = renderPlan(p)
    // "on h1", "bootstrap", "to create" keep their letters.
    expect(text).toContain('zk sid 1 on h1 (10.0.0.1) bootstrap: create — new cluster')
    expect(text).toContain('to create')
    expect(text).not.toContain('<redacted>n')
    const tree = Object.fromEntries(redactPlan(p).tree)
    expect(tree['clusters/zk-main/env/password']).toBe('<redacted>')
    expect(JSON.parse(tree['clusters/zk-main/cluster/spec']!).env.password.default).toBe('<redacted>')
    expect(tree['clusters/zk-main/files/zk-main-zk-1/conf%2Fapp.cfg']).toBe('<redacted>')
  })
})

describe('values in error messages', () => {
  it('a render error quoting a secret value is redacted in the plan text', () => {
    const {spec, templates} = secretSpec(SECRET, '{{ env.password | no_such_filter }}')
    const p = planCluster({spec, templates, inventory: hosts(3), operation: {kind: 'create'}})
    expect(p.errors.map((e) => e.code)).toEqual(['template-parse'])
    expect(renderPlan({...p, secrets: [SECRET]})).not.toContain(SECRET)
  })
})

describe('lint never echoes a secret', () => {
  const spec = (extra: string): string => `apiVersion: shoal/v1\nkind: Cluster\nname: demo\nenv:\n  token:\n    type: string\n    secret: true\n${extra}roles:\n  app: {image: a, cpu: 1, memory: 1Gi, disk: 1Gi, count: 1}\n`

  it.each([
    ['a default breaking its pattern', '    pattern: "^[0-9]+$"\n    default: "hunter2-secret"\n', 'env-default-invalid <stdin>:9:14', 'env parameter "token": default <redacted> does not match the pattern ^[0-9]+$'],
    ['a default outside its enum', '    enum: ["a-long-value", "another-one"]\n    default: "hunter2-secret"\n', 'env-default-invalid <stdin>:9:14', 'env parameter "token": default <redacted> is not one of the allowed values'],
    ['a default of the wrong type (schema)', '    default: {nested: "hunter2-secret"}\n', 'schema-type <stdin>:8:14', '"env.token.default" must be a string or number or boolean, got a mapping'],
  ])('%s: the message and the code frame hide the value, in every format', async (_what, extra, where, message) => {
    const result = await lintPaths(['-'], {readStdin: async () => spec(extra)})
    const problems = result.problems.filter((p) => p.rule !== 'env-secret-default')
    expect(problems.map((p) => `${p.rule} ${p.file}:${p.line}:${p.col}`)).toEqual([where])
    expect(problems[0]!.message).toBe(message)
    for (const format of ['text', 'json', 'sarif', 'junit', 'github'] as const) {
      const report = formatLint(result, format, {color: false, strict: false, failed: true, cwd: '/', version: '0'})
      expect(report, format).not.toContain('hunter2')
    }
  })
})
