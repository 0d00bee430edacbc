// lint as a library: loader limits, the schema as a contract, generated vs compiled validators, directories and stdin,
// and every output format.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import fc from 'fast-check'
import {afterAll, describe, expect, it} from 'vitest'
import {formatGithub, escapeData, escapeProperty} from '../src/lint/format/github.js'
import {lintJson} from '../src/lint/format/json.js'
import {formatJunit} from '../src/lint/format/junit.js'
import {sarifLog} from '../src/lint/format/sarif.js'
import {formatText} from '../src/lint/format/text.js'
import {LintPathError, lintFailed, lintPaths, type LintResult} from '../src/lint/lint.js'
import type {Problem} from '../src/lint/problem.js'
import {RULES, ruleById} from '../src/lint/rules.js'
import {liquid, parseTemplate, renderTemplate} from '../src/render/engine.js'
import {LOAD_LIMITS, loadYaml, loadYamlFile} from '../src/spec/load.js'
import {compileValidators, loadGeneratedValidators, schemaJson, type Validators} from '../src/spec/schema.js'
import type {HostsFile} from '../src/inventory/types.js'
import type {ClusterSpec} from '../src/spec/types.js'

const FIXTURES = join(import.meta.dirname, 'fixtures')
const BROKEN = join(FIXTURES, 'broken')
const BROKEN_SPECS = readdirSync(BROKEN).filter((name) => name.endsWith('.yaml')).sort()
const tmp = mkdtempSync(join(tmpdir(), 'shoal-lint-test-'))
const cleanup = [tmp]
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, {recursive: true, force: true})
})

const rules = (problems: Problem[]): string[] => problems.map((p) => `${p.rule} ${p.line}:${p.col}`)

describe('loading', () => {
  it('reports a missing file as file-unreadable without a position', () => {
    const loaded = loadYamlFile(join(tmp, 'nope.yaml'), 'nope.yaml')
    expect(loaded.problems).toMatchObject([{file: 'nope.yaml', rule: 'file-unreadable', line: 0, col: 0, message: 'cannot read file: no such file'}])
  })

  it('refuses files over 1 MiB before parsing them', () => {
    const big = `a: "${'x'.repeat(LOAD_LIMITS.maxBytes)}"\n`
    expect(rules(loadYaml(Buffer.from(big), 'big.yaml').problems)).toEqual(['file-too-large 1:1'])
  })

  it('strips a UTF-8 byte order mark', () => {
    const loaded = loadYaml(Buffer.from('\ufeffa: 1\n'), 'bom.yaml')
    expect(loaded.problems).toEqual([])
    expect(loaded.data).toEqual({a: 1})
  })

  it('turns any bytes into data or problems, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 300}), (bytes) => {
        const loaded = loadYaml(bytes, 'fuzz.yaml')
        expect(loaded.data !== undefined || loaded.problems.length > 0).toBe(true)
        for (const problem of loaded.problems) expect(ruleById(problem.rule)).toBeDefined()
      }),
      {numRuns: 300},
    )
  })

  it('turns any text made of YAML punctuation into data or problems, never an exception', () => {
    const yamlish = fc.string({unit: fc.constantFrom('a', ':', ' ', '\n', '-', '[', ']', '{', '}', '&a', '*a', '"', "'", '#', '|', '>', '!', '?', ','), maxLength: 200})
    fc.assert(
      fc.property(yamlish, (text) => {
        const loaded = loadYaml(text, 'fuzz.yaml')
        for (const problem of loaded.problems) expect(problem.line).toBeGreaterThanOrEqual(1)
      }),
      {numRuns: 500},
    )
  })
})

describe('the schema is the contract of src/spec/types.ts', () => {
  /** Every property schema of the tree, with its JSON path. */
  function propertySchemas(node: unknown, path: string, out: Array<[string, Record<string, unknown>]>): Array<[string, Record<string, unknown>]> {
    if (node === null || typeof node !== 'object') return out
    const schema = node as Record<string, unknown>
    for (const [name, child] of Object.entries((schema.properties as Record<string, unknown>) ?? {})) {
      out.push([`${path}.${name}`, child as Record<string, unknown>])
      propertySchemas(child, `${path}.${name}`, out)
    }
    if (typeof schema.additionalProperties === 'object') {
      out.push([`${path}.*`, schema.additionalProperties as Record<string, unknown>])
      propertySchemas(schema.additionalProperties, `${path}.*`, out)
    }
    if (typeof schema.items === 'object') propertySchemas(schema.items, `${path}[]`, out)
    for (const [name, def] of Object.entries((schema.$defs as Record<string, unknown>) ?? {})) propertySchemas(def, `$defs.${name}`, out)
    return out
  }

  it.each(['cluster', 'hosts'] as const)('%s: every property has a description', (kind) => {
    const undocumented = propertySchemas(schemaJson(kind), '', []).filter(([, s]) => typeof s.description !== 'string' || s.description.length < 10)
    expect(undocumented.map(([path]) => path)).toEqual([])
  })

  it.each(['cluster', 'hosts'] as const)('%s: unknown keys are errors in every object', (kind) => {
    const open: string[] = []
    const visit = (node: unknown, path: string): void => {
      if (node === null || typeof node !== 'object') return
      const schema = node as Record<string, unknown>
      if (schema.properties && schema.additionalProperties !== false) open.push(path)
      for (const [key, child] of Object.entries(schema)) if (typeof child === 'object') visit(child, `${path}/${key}`)
    }
    visit(schemaJson(kind), '#')
    expect(open).toEqual([])
  })

  const validators = compileValidators()

  it('accepts a spec that sets every field of ClusterSpec', () => {
    const spec: Required<ClusterSpec> = {
      apiVersion: 'shoal/v1', kind: 'Cluster', name: 'full', description: 'd', links: {zk: 'zk-main'},
      env: {p: {type: 'integer', description: 'd', default: 2, enum: [1, 2], minimum: 1, maximum: 3, pattern: '.', secret: true}},
      roles: {
        r: {
          description: 'd', image: 'i', cpu: 0.5, memory: '1Gi', disk: '10G', count: 1, scale: {min: 1, max: 3},
          server_id: {start: 1, upper_bound: 9}, placement: {labels: {zone: 'a'}, max_per_host: 1},
          files: [{template: 't.liquid', dest: 'conf/x', mode: '0644', owner: 'u:g', check: 'c {{src}}', reload: 'r'}],
          services: Object.fromEntries(['init', 'start', 'stop', 'restart', 'scale_out', 'scale_in', 'destroy', 'upgrade'].map((s) => [s, {cmd: 'c', description: 'd', timeout: '1h30m', on: 'existing', order: 'serial'}])),
          actions: {backup: {cmd: 'c', on: 'bootstrap'}},
          health_check: {cmd: 'c', interval: '10s', timeout: '3s', healthy_threshold: 1, unhealthy_threshold: 3, start_period: '2m'},
        },
      },
      update: {canaries: 1, max_in_flight: '25%'},
      agent: true,
    }
    expect(validators.cluster(spec), JSON.stringify(validators.cluster.errors)).toBe(true)
    expect(validators.cluster({...spec, update: {max_in_flight: 2}})).toBe(true)
  })

  it('accepts an inventory that sets every field of HostsFile', () => {
    const hosts: HostsFile = {
      apiVersion: 'shoal/v1', kind: 'Hosts',
      hosts: [{name: 'h1', address: '10.0.0.1', ssh: {port: 22, user: 'root', key: 'k', known_hosts: 'kh'}, capacity: {cpu: 2, memory: '4Gi', disk: '1Ti'}, labels: {zone: 'a'}}],
    }
    expect(validators.hosts(hosts), JSON.stringify(validators.hosts.errors)).toBe(true)
  })
})

describe('generated and compiled validators', () => {
  it('report the same problems for every fixture', async () => {
    // Inside the repository, as in dist/generated/, so the generated code can require ajv's runtime helpers.
    const out = join(import.meta.dirname, '..', 'node_modules', '.cache', `shoal-lint-test-${process.pid}`, 'validators.cjs')
    cleanup.push(dirname(out))
    execFileSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'build-validators.js'), '--out', out])
    const generated = loadGeneratedValidators(out)
    expect(generated).toBeDefined()
    const run = async (validators: Validators): Promise<LintResult> =>
      lintPaths([...BROKEN_SPECS, join(FIXTURES, 'lint', 'good')], {cwd: BROKEN, validators})
    const fromGenerated = await run(generated!)
    const fromCompiled = await run(compileValidators())
    expect(fromGenerated.problems).toEqual(fromCompiled.problems)
    expect(fromGenerated.problems.length).toBeGreaterThan(60)
  })

  it('is absent, not broken, when the generated module does not exist', () => {
    expect(loadGeneratedValidators(join(tmp, 'missing.cjs'))).toBeUndefined()
  })
})

describe('rules', () => {
  it('have unique kebab-case ids, a description and one severity', () => {
    const ids = RULES.map((r) => r.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const rule of RULES) {
      expect(rule.id).toMatch(/^[a-z]+(-[a-z0-9]+)+$/)
      expect(rule.description.length).toBeGreaterThan(10)
    }
  })

  it('every reported problem carries its rule’s severity', async () => {
    const result = await lintPaths(BROKEN_SPECS, {cwd: BROKEN})
    for (const problem of result.problems) expect(problem.severity, problem.rule).toBe(ruleById(problem.rule)?.severity)
  })
})

describe('templates cannot read files', () => {
  it.each([
    `{% include '${join(FIXTURES, 'lint', 'good', 'templates', 'app.conf.liquid')}' %}`,
    `{% render '${join(FIXTURES, 'lint', 'good', 'templates', 'app.conf.liquid')}' %}`,
    `{% layout '${join(FIXTURES, 'lint', 'good', 'templates', 'app.conf.liquid')}' %}body`,
    "{% include '../../../../../../../etc/hostname' %}",
    '{% include name %}',
  ])('the engine refuses %s at render time', (source) => {
    expect(() => renderTemplate(parseTemplate(source), {name: '/etc/hostname'})).toThrow(/Failed to lookup|ENOENT/)
  })

  it('static analysis does not load partials either', () => {
    const parsed = liquid().parse("{% include '/etc/hostname' %}{{ self.ip }}")
    expect(Object.keys(liquid().analyzeSync(parsed, {partials: false}).globals)).toEqual(['self'])
  })
})

describe('lintPaths', () => {
  const good = join(FIXTURES, 'lint', 'good')

  it('finds nothing wrong in a spec using every feature, its inventory, and skips other YAML with a note', async () => {
    const result = await lintPaths([good])
    expect(result.problems).toEqual([])
    expect(result.files.map((f) => [f.file.slice(good.length + 1), f.kind ?? f.skipped])).toEqual([
      ['ci.yml', 'no `kind`: not a Cluster or Hosts document'],
      ['cluster.yaml', 'Cluster'],
      ['compose.yaml', 'kind is "ConfigMap", not Cluster or Hosts'],
      ['hosts.yaml', 'Hosts'],
    ])
    expect(lintFailed(result)).toBe(false)
  })

  it('reports a non-shoal file named explicitly', async () => {
    const result = await lintPaths([join(good, 'compose.yaml')])
    expect(rules(result.problems)).toEqual(['kind-unknown 2:7'])
  })

  it('keeps relative paths relative in problems, templates included', async () => {
    const result = await lintPaths(['template-undeclared-env.yaml', 'kind-typo.yaml'], {cwd: BROKEN})
    expect(result.problems.map((p) => p.file)).toEqual(['kind-typo.yaml', 'templates/env-undeclared.liquid'])
    expect(result.sources.get('templates/env-undeclared.liquid')).toContain('init_limit')
  })

  it('reports a template shared by many specs once', async () => {
    const result = await lintPaths(['template-include.yaml', 'template-include.yaml'], {cwd: BROKEN})
    expect(result.problems.filter((p) => p.rule === 'template-include')).toHaveLength(1)
  })

  it('reads - from stdin and resolves its templates against the working directory', async () => {
    const source = readFileSync(join(BROKEN, 'template-self-field.yaml'))
    const result = await lintPaths(['-'], {cwd: BROKEN, readStdin: async () => source})
    expect(result.problems.map((p) => `${p.file} ${p.rule}`)).toEqual(['templates/self-field.liquid template-unknown-variable'])
  })

  it('refuses paths that do not exist, naming all of them', async () => {
    await expect(lintPaths(['nope-1.yaml', 'kind-typo.yaml', 'nope-2'], {cwd: BROKEN})).rejects.toThrow(new LintPathError(['nope-1.yaml', 'nope-2']))
  })

  it('fails on warnings only under --strict', async () => {
    const result = await lintPaths([join(FIXTURES, 'lint', 'warn')])
    expect(result.summary).toMatchObject({errors: 0, warnings: 1})
    expect(lintFailed(result)).toBe(false)
    expect(lintFailed(result, {strict: true})).toBe(true)
  })

  it('lints 1,000 specs sharing templates without re-parsing them', async () => {
    const specs = Array.from({length: 1000}, () => 'template-include.yaml')
    const result = await lintPaths(specs, {cwd: BROKEN})
    expect(result.summary.files).toBe(1000)
    expect(result.problems).toHaveLength(1)
  })
})

describe('formats', () => {
  let result: LintResult
  const cwd = BROKEN
  const load = async (): Promise<LintResult> => (result ??= await lintPaths(['role-key-typo.yaml', 'link-self.yaml', 'template-undeclared-env.yaml', 'nul-byte.yaml', join(FIXTURES, 'lint', 'good')], {cwd}))

  it('text: position, severity, message, rule, a code frame with a caret, and no color unless asked', async () => {
    const text = formatText(await load(), {color: false})
    expect(text).toContain('role-key-typo.yaml:8:5: error: unknown key "imgae" in role "app" (did you mean "image"?) [schema-unknown-key]')
    expect(text).toContain(['    7 |   app:', '  > 8 |     imgae: app-1', '      |     ^^^^^'].join('\n'))
    expect(text).toContain('templates/env-undeclared.liquid:2:9: error:')
    expect(text).toMatch(/note: .*compose\.yaml skipped/)
    expect(text).toMatch(/✖ 4 errors, 1 warning \(6 files checked, 2 skipped\)\n$/)
    expect(text).not.toContain('\u001b[')
    expect(formatText(result, {color: true})).toContain('\u001b[31merror\u001b[0m')
  })

  it('text: control characters in the offending line are not echoed to the terminal', async () => {
    expect(formatText(await load(), {color: false})).toContain('kind: C\\x00luster')
  })

  it('json: the whole result, parseable', async () => {
    const json = JSON.parse(JSON.stringify(lintJson(await load(), true))) as ReturnType<typeof lintJson>
    expect(json.summary).toMatchObject({errors: 4, warnings: 1, failed: true})
    expect(json.problems[0]).toEqual({file: 'link-self.yaml', line: 6, col: 7, endLine: 6, endCol: 11, rule: 'link-self', severity: 'warning', message: 'link "me" points at this cluster itself'})
  })

  it('sarif: a 2.1.0 log code scanning accepts', async () => {
    const log = sarifLog(await load(), {cwd, version: '1.2.3'}) as {
      version: string
      runs: Array<{tool: {driver: {name: string; rules: Array<{id: string; shortDescription: {text: string}}>}}; results: SarifResult[]}>
    }
    expect(log.version).toBe('2.1.0')
    const [run] = log.runs
    expect(run!.tool.driver.name).toBe('shoal')
    expect(run!.tool.driver.rules.map((r) => r.id)).toEqual(RULES.map((r) => r.id))
    for (const rule of run!.tool.driver.rules) expect(rule.shortDescription.text.length).toBeGreaterThan(0)
    expect(run!.results).toHaveLength(5)
    for (const res of run!.results) {
      expect(RULES.map((r) => r.id)).toContain(res.ruleId)
      expect(['error', 'warning', 'note']).toContain(res.level)
      expect(res.message.text.length).toBeGreaterThan(0)
      const location = res.locations[0]!.physicalLocation
      expect(location.artifactLocation.uri).not.toMatch(/^\/|\\/)
      expect(location.region.startLine).toBeGreaterThanOrEqual(1)
      expect(location.region.startColumn).toBeGreaterThanOrEqual(1)
    }
    const typo = run!.results.find((r) => r.ruleId === 'schema-unknown-key')!
    expect(typo.locations[0]!.physicalLocation).toMatchObject({artifactLocation: {uri: 'role-key-typo.yaml'}, region: {startLine: 8, startColumn: 5}})
    expect(run!.results.find((r) => r.ruleId === 'template-undeclared-env')!.locations[0]!.physicalLocation.artifactLocation.uri).toBe('templates/env-undeclared.liquid')
  })

  it('junit: well-formed XML with one testcase per file, failures and skips', async () => {
    const xml = formatJunit(await load(), {strict: false})
    assertWellFormedXml(xml)
    expect(xml.match(/<testcase /g)).toHaveLength(8)
    expect(xml).toContain('<testsuites name="shoal lint" tests="8" failures="3" errors="0" skipped="2">')
    expect(xml.match(/<failure /g)).toHaveLength(3)
    expect(xml).toContain('<system-out>link-self.yaml:6:7: warning:')
    expect(xml).toContain('role &quot;app&quot;')
    // Under --strict the warning fails its testcase too.
    expect(formatJunit(result, {strict: true}).match(/<failure /g)).toHaveLength(4)
  })

  it('github: one annotation per problem, properties and data escaped', async () => {
    const lines = formatGithub(await load()).trimEnd().split('\n')
    expect(lines).toHaveLength(5)
    expect(lines).toContain('::warning file=link-self.yaml,line=6,col=7,endLine=6,endColumn=11,title=shoal link-self::link "me" points at this cluster itself')
    for (const line of lines) expect(line).toMatch(/^::(error|warning|notice) file=[^,:]+(,[a-zA-Z]+=[^,:]+)*::[^\n\r]+$/)
    expect(escapeData('50% done\r\nnext')).toBe('50%25 done%0D%0Anext')
    expect(escapeProperty('a:b,c%')).toBe('a%3Ab%2Cc%25')
  })
})

interface SarifResult {
  ruleId: string
  level: string
  message: {text: string}
  locations: Array<{physicalLocation: {artifactLocation: {uri: string}; region: {startLine: number; startColumn: number}}}>
}

/** A small strict XML well-formedness check: balanced tags, quoted attributes, only known entities, no stray `<` or `&`. */
function assertWellFormedXml(xml: string): void {
  const body = xml.replace(/^<\?xml [^?]*\?>\n/, '')
  const stack: string[] = []
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/gy
  let consumed = 0
  for (let m = token.exec(body); m; m = token.exec(body)) {
    consumed = token.lastIndex
    if (m[5] !== undefined) {
      expect(m[5].replace(/&(amp|lt|gt|quot|apos);/g, '')).not.toMatch(/[&<>]/)
      continue
    }
    for (const attr of m[3]!.matchAll(/="([^"]*)"/g)) expect(attr[1]!.replace(/&(amp|lt|gt|quot|apos);/g, '')).not.toMatch(/[&<>]/)
    if (m[1]) expect(stack.pop()).toBe(m[2])
    else if (!m[4]) stack.push(m[2]!)
  }
  expect(consumed).toBe(body.length)
  expect(stack).toEqual([])
}
