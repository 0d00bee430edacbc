// Parameter values: reading them from flags and values files, precedence, checks naming the parameter and the source,
// keeping registered values, --unset, what a changed value plans (configure after the files), and the lint rules.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {lintPaths} from '../src/lint/lint.js'
import {extendChain, chainEnvs} from '../src/operation/record.js'
import {givenToReturn, previousValues, resolveEnv, type GivenEnv} from '../src/plan/env.js'
import {planCluster, type PlanInput} from '../src/plan/plan.js'
import {renderPlan, redactPlan} from '../src/plan/show.js'
import type {ClusterState, Plan} from '../src/plan/types.js'
import type {ClusterSpec} from '../src/spec/types.js'
import {readGivenValues} from '../src/workspace/values.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

const dir = mkdtempSync(join(tmpdir(), 'shoal-env-values-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

function file(name: string, content: string): string {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

const SECRET = 'pw-Zq81-never-printed'

const spec: ClusterSpec = zkSpec({count: 2, services: {configure: {cmd: 'bin/configure'}, start: {cmd: 'bin/start'}}}, {
  env: {
    tick_time: {type: 'integer', default: 2000, minimum: 100, maximum: 60000},
    mode: {type: 'string', default: 'fast', enum: ['fast', 'safe']},
    ratio: {type: 'number', default: 0.5},
    tls: {type: 'boolean', default: false},
    user: {type: 'string', default: 'admin', pattern: '^[a-z]+$'},
    password: {type: 'string', secret: true, pattern: '^[A-Za-z0-9-]+$'},
  },
})

const given = (flags: Parameters<typeof readGivenValues>[0]): GivenEnv => readGivenValues(flags)
const resolve = (flags: Parameters<typeof readGivenValues>[0], registered?: Pick<ClusterState, 'env' | 'envSources'>) => resolveEnv(spec, given(flags), registered)

describe('precedence: defaults < values files (later wins) < --set / --set-file', () => {
  const first = file('first.yaml', 'tick_time: 3000\nmode: safe\npassword: from-file-1\n')
  const second = file('second.yaml', 'tick_time: 4000\n')
  const pwFile = file('pw.txt', 'from-set-file')

  it('takes defaults where nothing is given, and says so', () => {
    const {env, errors} = resolve({set: ['password=x']})
    expect(errors).toEqual([])
    expect(env.values).toMatchObject({tick_time: 2000, mode: 'fast', ratio: 0.5, tls: false, user: 'admin'})
    expect(env.sources).toMatchObject({tick_time: 'default', password: '--set'})
  })

  it('lets a later values file win over an earlier one, each value tagged file:line:col', () => {
    const {env, errors} = resolve({values: [first, second]})
    expect(errors).toEqual([])
    expect(env.values).toMatchObject({tick_time: 4000, mode: 'safe', password: 'from-file-1'})
    expect(env.sources).toMatchObject({tick_time: `${second}:1:12`, mode: `${first}:2:7`, password: `${first}:3:11`})
  })

  it('lets --set and --set-file win over values files, converting text to the parameter type', () => {
    const {env, errors} = resolve({values: [first], set: ['tick_time=5000', 'tls=true', 'ratio=0.25'], 'set-file': [`password=${pwFile}`]})
    expect(errors).toEqual([])
    expect(env.values).toMatchObject({tick_time: 5000, tls: true, ratio: 0.25, mode: 'safe', password: 'from-set-file'})
    expect(env.sources).toMatchObject({tick_time: '--set', password: `--set-file ${pwFile}`})
  })

  it('refuses one name given by both --set and --set-file', () => {
    expect(() => given({set: ['password=a'], 'set-file': [`password=${pwFile}`]})).toThrow(/password is given by both --set and --set-file/)
  })
})

describe('every value is checked against its parameter, the error naming it and its source', () => {
  it('type, enum, bounds and pattern from --set', () => {
    const {errors} = resolve({set: ['tick_time=soon', 'mode=slow', 'ratio=x', 'tls=yes', 'user=Root', 'password=ok']})
    expect(errors).toEqual([
      'env parameter mode from --set: "slow" is not one of "fast", "safe"',
      'env parameter ratio from --set: "x" is not a number',
      'env parameter tick_time from --set: "soon" is not an integer',
      'env parameter tls from --set: "yes" is not a boolean (true or false)',
      'env parameter user from --set: "Root" does not match the pattern ^[a-z]+$',
    ])
  })

  it('bounds and YAML types from a values file, at file:line:col', () => {
    const values = file('bad.yaml', 'password: ok\ntick_time: 99\nmode: "fast"\nuser: 42\ntls: "true"\nratio: [1, 2]\n')
    expect(resolve({values: [values]}).errors).toEqual([
      `env parameter ratio from ${values}:6:8: a list is not a number`,
      `env parameter tick_time from ${values}:2:12: 99 is below the minimum 100`,
      `env parameter tls from ${values}:5:6: "true" is not a boolean (true or false) (remove the quotes)`,
      `env parameter user from ${values}:4:7: 42 is not a string (quote it)`,
    ])
  })

  it('names an undeclared parameter and what the spec declares', () => {
    expect(resolve({set: ['password=ok', 'tick=1']}).errors).toEqual([
      'env parameter tick from --set is not declared in the spec of cluster zk-main (declared: mode, password, ratio, tick_time, tls, user)',
    ])
  })

  it('never quotes a secret value in an error', () => {
    const {errors} = resolve({set: [`password=${SECRET}!`]})
    expect(errors).toEqual(['env parameter password (secret) from --set: the value does not match the pattern ^[A-Za-z0-9-]+$'])
    expect(errors.join('\n')).not.toContain(SECRET)
  })

  it('says so when a file given with --set-file would match but for its final newline (echo wrote it), quoting nothing', () => {
    const {errors} = resolve({'set-file': [`password=${file('pw-echo.txt', `${SECRET}\n`)}`]})
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^env parameter password \(secret\) from --set-file .*pw-echo\.txt: the value does not match the pattern \^\[A-Za-z0-9-\]\+\$ \(it ends with a newline, without which it would match/)
    expect(errors.join('\n')).not.toContain(SECRET)
  })

  it('makes a parameter without default and without value an error', () => {
    expect(resolve({}).errors).toEqual([
      'env parameter password (secret) has no default and no value: give it with --set password=VALUE, --set-file password=PATH or in a --values file',
    ])
  })

  it('refuses malformed flags and files as usage errors, a values file that is not a mapping as input', () => {
    expect(() => given({set: ['=x']})).toThrow(expect.objectContaining({exitCode: 2}))
    expect(() => given({values: [join(dir, 'missing.yaml')]})).toThrow(expect.objectContaining({exitCode: 2}))
    expect(() => given({'set-file': [`password=${join(dir, 'missing.txt')}`]})).toThrow(/cannot read the file \(no such file\)/)
    expect(() => given({values: [file('list.yaml', '- a\n- b\n')]})).toThrow(/expected a mapping of parameter names to values/)
  })
})

describe('registered values', () => {
  const registered = {env: {tick_time: 7000, mode: 'safe', ratio: 0.5, tls: false, user: 'admin', password: SECRET}, envSources: {tick_time: '--set', mode: 'v.yaml:1:7', ratio: 'default', tls: 'default', user: 'default', password: '--set-file pw'}}

  it('keeps values given earlier when nothing is given now, with their source; defaults follow the spec', () => {
    const {env, errors} = resolveEnv({...spec, env: {...spec.env, ratio: {type: 'number', default: 0.75}}}, given({}), registered)
    expect(errors).toEqual([])
    expect(env.values).toMatchObject({tick_time: 7000, mode: 'safe', password: SECRET, ratio: 0.75})
    expect(env.sources).toMatchObject({tick_time: '--set', mode: 'v.yaml:1:7', password: '--set-file pw', ratio: 'default'})
  })

  it('returns a parameter to its default with --unset, and refuses --unset of one that has no default', () => {
    const {env} = resolve({unset: ['tick_time']}, registered)
    expect(env.values.tick_time).toBe(2000)
    expect(env.sources.tick_time).toBe('default')
    expect(resolve({unset: ['password']}, registered).errors).toEqual([
      'env parameter password (secret) has no default and no value (--unset returns it to a default it does not have): give it with --set password=VALUE, --set-file password=PATH or in a --values file',
    ])
  })

  it('rechecks a kept value against the spec as it is now', () => {
    const narrower: ClusterSpec = {...spec, env: {...spec.env, tick_time: {type: 'integer', default: 2000, maximum: 5000}}}
    expect(resolveEnv(narrower, given({}), registered).errors).toEqual([
      'env parameter tick_time keeps its registered value (from --set), but 7000 is above the maximum 5000 under the spec now: give a new one with --set tick_time=VALUE or return it to its default with --unset tick_time',
    ])
  })
})

describe('a changed value plans like any change', () => {
  const inventory = hosts(2)
  const templates = new Map([...zkTemplates(), ['zk/zoo.cfg.liquid', 'tickTime={{ env.tick_time }}\n'], ['zk/myid.liquid', 'pw={{ env.password }}\n']])
  const plan = (env: ReturnType<typeof resolve>['env'], current?: ClusterState) =>
    planCluster({spec, templates, inventory, operation: current ? {kind: 'apply'} : {kind: 'create'}, ...(current ? {current} : {}), env})
  const created = applied(plan(resolve({set: [`password=${SECRET}`]}).env))

  it('registers the values with their sources', () => {
    expect(created.env.password).toBe(SECRET)
    expect(created.envSources).toMatchObject({password: '--set', tick_time: 'default'})
  })

  it('re-renders the files the value alters, then runs configure on the existing nodes with health after each batch', () => {
    const changed = plan(resolve({set: ['password=other-pw', 'tick_time=3000']}, created).env, created)
    expect(changed.envChanges).toEqual([
      {name: 'password', change: 'update', secret: true, source: '--set'},
      {name: 'tick_time', change: 'update', secret: false, before: 2000, after: 3000, source: '--set'},
    ])
    expect(changed.nodes.map((n) => n.fileChanges.map((c) => c.dest))).toEqual([['conf/zoo.cfg', 'data/myid'], ['conf/zoo.cfg', 'data/myid']])
    const kinds = changed.steps.map((s) => `${s.kind}${s.service ? `:${s.service}` : ''}`)
    expect(kinds).toEqual(['commit', 'install', 'install', 'run:configure', 'health', 'run:configure', 'health'])
  })

  it('shows a changed secret as <changed>, its old and new values nowhere in the plan text or JSON', () => {
    const changed = plan(resolve({set: ['password=other-pw-123']}, created).env, created)
    const text = renderPlan(changed)
    expect(text).toContain('~ password: <changed> (from --set)')
    const json = JSON.stringify(redactPlan(changed))
    for (const out of [text, json]) {
      expect(out).not.toContain(SECRET)
      expect(out).not.toContain('other-pw-123')
    }
    // Both values are redacted from script output (a configure script may print the old one it logs in with).
    expect(changed.secrets).toEqual(expect.arrayContaining([SECRET, 'other-pw-123']))
  })

  it('plans nothing when the same values are given again', () => {
    expect(plan(resolve({set: [`password=${SECRET}`]}, created).env, created).steps).toEqual([])
  })

  it('plans nothing when no value is given: the registered ones are kept', () => {
    const same = plan(resolve({}, created).env, created)
    expect(same.steps).toEqual([])
    expect(same.envChanges).toEqual([])
  })
})

describe('a value change that stopped half done: fixed forward, rolled back', () => {
  const inventory = hosts(2)
  const templates = new Map([...zkTemplates(), ['zk/zoo.cfg.liquid', 'tickTime={{ env.tick_time }}\n'], ['zk/myid.liquid', 'pw={{ env.password }}\n']])
  const plan = (input: Partial<PlanInput>): Plan => planCluster({spec, templates, inventory, operation: {kind: 'apply'}, ...input})
  const created = applied(planCluster({spec, templates, inventory, operation: {kind: 'create'}, env: resolve({set: [`password=${SECRET}`]}).env}))
  const change = plan({current: created, env: resolve({set: ['password=pw-new-2', 'tick_time=3000']}, created).env})
  // Every step up to configure landed (files and the new values registered), configure did not run.
  const landed = applied(change)
  const chain = extendChain(undefined, created, change)
  const configured = (p: Plan): string[] => p.steps.filter((s) => s.service === 'configure').flatMap((s) => s.nodes)

  it('the same apply again runs configure on every member, their previous values the ones they ran before', () => {
    const again = plan({current: landed, env: resolve({set: ['password=pw-new-2', 'tick_time=3000']}, landed).env, envHistory: chainEnvs(chain)})
    expect(again.envChanges?.map((c) => c.name)).toEqual(['password', 'tick_time'])
    expect(configured(again)).toEqual(['zk-main-zk-1', 'zk-main-zk-2'])
    expect(previousValues(['password', 'tick_time'], again.desired!.env, [...chainEnvs(chain), landed.env])).toEqual({password: SECRET, tick_time: 2000})
    // The old value members may still run with is redacted from their output too.
    expect(again.secrets).toEqual(expect.arrayContaining([SECRET, 'pw-new-2']))
  })

  it('without what the superseded operation planned, nothing would run: the registry already holds the new values', () => {
    expect(plan({current: landed, env: resolve({set: ['password=pw-new-2', 'tick_time=3000']}, landed).env}).steps).toEqual([])
  })

  it('a rollback returns the values and their sources to before the chain, and configures the members back', () => {
    const back = plan({current: landed, operation: {kind: 'rollback', of: 'apply'}, env: resolveEnv(spec, givenToReturn(spec, chain.env, chain.envSources, landed), landed).env, envHistory: chainEnvs(chain)})
    expect(back.desired!.env).toMatchObject({password: SECRET, tick_time: 2000})
    expect(back.desired!.envSources).toMatchObject({password: '--set', tick_time: 'default'})
    expect(configured(back)).toEqual(['zk-main-zk-1', 'zk-main-zk-2'])
    expect(previousValues(['password', 'tick_time'], back.desired!.env, [...chainEnvs(chain), landed.env])).toEqual({password: 'pw-new-2', tick_time: 3000})
  })

  it('a rollback that stopped is rolled back to the same place: the chain keeps its start and every node it added', () => {
    const grow = planCluster({spec: landed.spec!, templates, inventory: hosts(3), current: landed, operation: {kind: 'scale', role: 'zk', count: 3}, env: resolve({}, landed).env})
    const grown = extendChain(chain, landed, grow)
    const rolledBack = planCluster({spec: chain.spec!, templates, inventory: hosts(3), current: applied(grow), operation: {kind: 'rollback', of: 'x', joined: grown.joined}, env: resolveEnv(spec, givenToReturn(spec, grown.env, grown.envSources, applied(grow)), applied(grow)).env})
    const again = extendChain(grown, applied(grow), rolledBack)
    expect(again.env).toEqual(created.env)
    expect(again.spec).toEqual(created.spec)
    expect(again.created).toBe(false)
    expect(again.joined).toEqual(['zk-main-zk-3'])
    expect(again.targets).toHaveLength(3)
  })
})

describe('lint', () => {
  it('warns on a secret with a default and notes a parameter without one as required at create', async () => {
    const path = file('lint-env.yaml', `apiVersion: shoal/v1
kind: Cluster
name: c
env:
  token: {type: string, secret: true, default: hunter2}
  none: {type: string, secret: true, default: ""}
  needed: {type: integer}
roles:
  r: {image: i, cpu: 1, memory: 1Gi, disk: 1Gi, count: 1}
`)
    const result = await lintPaths([path])
    expect(result.problems.map((p) => `${p.rule} ${p.severity} ${p.line}:${p.col}`)).toEqual(['env-secret-default warning 5:48', 'env-required info 7:3'])
    expect(result.problems.map((p) => p.message).join('\n')).not.toContain('hunter2')
  })
})
