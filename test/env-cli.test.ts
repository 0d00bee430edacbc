// Parameter values and secrets through the CLI as real processes, on the embedded store and a real etcd: precedence
// and where each value came from, errors before anything is registered, values kept by later commands and --unset,
// a changed secret planned as <changed> and never printed, nothing of it left behind, and encryption at rest.
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'
import {EtcdStore} from '../src/store/etcd/etcd-store.js'
import type {Store} from '../src/store/store.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'
import {assertCliBuilt, describeResult, embeddedRegistry, etcdRegistry, readRegistered, shoal, type CliResult, type Registry, type RegistryKind} from './support/shoal-cli.js'

/** Many CLI processes on a shared 2-core machine: generous, and not a timing assertion. */
const SLOW = {timeout: 600_000}
/** JSON and YAML both escape these, so a redaction matching only the raw text is caught. */
const OLD = 'old-"pw"\\Qx81'
const NEW = 'new-"pw"\\Zy92'
const MARKS = ['Qx81', 'Zy92']
const KEY = 'a'.repeat(64)

let etcd: EtcdCluster | undefined
const cleanup: Array<() => void> = []
beforeAll(async () => {
  assertCliBuilt()
  etcd = await startEtcd()
})
afterAll(async () => {
  for (const dispose of cleanup.splice(0)) dispose()
  await etcd?.stop()
})

interface Workdir {
  dir: string
  spec: string
  hosts: string
  file(name: string, content: string): string
}

function workdir(name: string): Workdir {
  const dir = mkdtempSync(path.join(tmpdir(), `shoal-env-${name}-`))
  cleanup.push(() => rmSync(dir, {recursive: true, force: true}))
  mkdirSync(path.join(dir, 'templates'))
  writeFileSync(path.join(dir, 'templates', 'app.conf.liquid'), 'port={{ env.port }}\nmode={{ env.mode }}\npassword={{ env.password }}\n')
  writeFileSync(path.join(dir, 'cluster.yaml'), `apiVersion: shoal/v1
kind: Cluster
name: ${name}
env:
  port: {type: integer, description: Port., default: 2181, minimum: 1, maximum: 65535}
  mode: {type: string, description: Mode., default: fast, enum: [fast, safe]}
  password: {type: string, description: Password., secret: true}
roles:
  app:
    image: debian-12
    cpu: 1
    memory: 256Mi
    disk: 1Gi
    count: 2
    files:
      - {template: templates/app.conf.liquid, dest: conf/app.conf}
`)
  const hostLines = Array.from({length: 6}, (_, i) => `  - {name: h${i + 1}, address: 127.0.3.${i + 1}}`)
  writeFileSync(path.join(dir, 'hosts.yaml'), `apiVersion: shoal/v1\nkind: Hosts\nhosts:\n${hostLines.join('\n')}\n`)
  return {
    dir, spec: path.join(dir, 'cluster.yaml'), hosts: path.join(dir, 'hosts.yaml'),
    file: (file, content) => {
      const at = path.join(dir, file)
      writeFileSync(at, content)
      return at
    },
  }
}

function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}

function expectNoSecret(results: readonly CliResult[]): void {
  for (const r of results) for (const mark of MARKS) expect(`${r.stdout}\n${r.stderr}`, describeResult(r)).not.toContain(mark)
}

/** The store as it is on disk or in etcd, without the layer that opens sealed values. */
async function rawStore(registry: Registry): Promise<Store> {
  return registry.kind === 'embedded'
    ? EmbeddedStore.open({dir: registry.store.state!, readOnly: true})
    : new EtcdStore({endpoints: registry.store.etcd!.split(','), prefix: registry.store.prefix!})
}

async function rawText(registry: Registry): Promise<string> {
  const store = await rawStore(registry)
  try {
    return JSON.stringify((await store.range('')).kvs.map((kv) => [kv.key, kv.value]))
  } finally {
    await store.close()
  }
}

describe.concurrent.each<RegistryKind>(['embedded', 'etcd'])('parameters through the CLI on the %s registry', (kind) => {
  function setup(name: string): {registry: Registry; work: Workdir; run: (args: string[], env?: Record<string, string>) => Promise<CliResult>} {
    const registry = kind === 'embedded' ? embeddedRegistry() : etcdRegistry(etcd!.endpoints)
    cleanup.push(() => registry.dispose())
    const work = workdir(name)
    return {registry, work, run: (args, env) => shoal([...args, ...registry.flags], env ? {env} : {})}
  }

  it('takes defaults < values files < --set/--set-file, shows each source in get env, keeps them across apply and scale, and --unset returns to the default', SLOW, async () => {
    const {registry, work, run} = setup('prec')
    const first = work.file('first.yaml', 'port: 3000\nmode: safe\n')
    const second = work.file('second.yaml', 'port: 4000\n')
    const pw = work.file('pw.txt', OLD)
    expectExit(await run(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--values', first, '--values', second, '--set', 'mode=fast', '--set-file', `password=${pw}`]), 0)
    const sources = async (): Promise<Record<string, {value: string; source: string; secret: boolean}>> => {
      const got = await run(['get', 'prec', 'env', '--json'])
      expectExit(got, 0)
      expectNoSecret([got])
      return (JSON.parse(got.stdout) as {env: Record<string, {value: string; source: string; secret: boolean}>}).env
    }
    const expected = {
      mode: {value: 'fast', source: '--set', secret: false},
      password: {value: '<redacted>', source: `--set-file ${pw}`, secret: true},
      port: {value: '4000', source: `${second}:1:7`, secret: false},
    }
    expect(await sources()).toEqual(expected)
    const [text, again] = await Promise.all([run(['get', 'prec', 'env']), run(['apply', work.spec, '--hosts', work.hosts, '--registry-only'])])
    expect(text.stdout).toContain(`port = 4000  (from ${second}:1:7)`)
    expectExit(again, 0)
    expect(again.stdout).toContain('prec: nothing to apply')
    expectExit(await run(['scale', 'prec', '--role', 'app', '--add', '1', '--hosts', work.hosts, '--registry-only']), 0)
    expect(await sources()).toEqual(expected)
    const files = (await readRegistered(registry, 'prec')).files
    expect(Object.keys(files)).toHaveLength(3)
    for (const conf of Object.values(files)) expect(conf['conf/app.conf']).toContain('port=4000\nmode=fast\n')

    expectExit(await run(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--unset', 'port']), 0)
    expect((await sources()).port).toEqual({value: '2181', source: 'default', secret: false})
  })

  it('refuses a bad or missing value naming the parameter and its source, before anything is registered', SLOW, async () => {
    const {registry, work, run} = setup('bad')
    const values = work.file('bad.yaml', 'mode: fast\nport: 99999\n')
    const bad = await run(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--values', values, '--set', `password=${OLD}`])
    expectExit(bad, 1)
    expect(bad.stderr).toContain(`env parameter port from ${values}:2:7: 99999 is above the maximum 65535`)
    const missing = await run(['apply', work.spec, '--hosts', work.hosts, '--registry-only'])
    expectExit(missing, 1)
    expect(missing.stderr).toContain('env parameter password (secret) has no default and no value')
    const unknown = await run(['plan', work.spec, '--hosts', work.hosts, '--set', 'pasword=x'])
    expectExit(unknown, 1)
    expect(unknown.stderr).toContain('env parameter pasword from --set is not declared in the spec of cluster bad (declared: mode, password, port)')
    expectNoSecret([bad, missing, unknown])
    expect((await readRegistered(registry, 'bad')).revision).toBeUndefined()
  })

  it('plans a changed secret as <changed> with the files it alters, never prints it, and keeps no copy of it once replaced or destroyed', SLOW, async () => {
    const {registry, work, run} = setup('rotate')
    const outputs: CliResult[] = []
    const step = async (args: string[], code: number): Promise<CliResult> => {
      const result = await run(args)
      outputs.push(result)
      expectExit(result, code)
      return result
    }
    await step(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--set', `password=${OLD}`], 0)
    const plan = await step(['plan', work.spec, '--hosts', work.hosts, '--set', `password=${NEW}`, '--detailed-exitcode'], 2)
    expect(plan.stdout).toContain('~ password: <changed> (from --set)')
    expect(plan.stdout).toContain('registered/rotate-app-1/conf/app.conf')
    await Promise.all([
      step(['plan', work.spec, '--hosts', work.hosts, '--set', `password=${NEW}`, '--json'], 0),
      step(['render', work.spec, '--hosts', work.hosts, '--node', 'rotate-app-1', '--set', `password=${NEW}`], 0),
    ])
    await step(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--set', `password=${NEW}`], 0)
    await Promise.all([
      step(['get', 'rotate'], 0),
      step(['get', 'rotate', '--json'], 0),
      step(['get', 'rotate', '--yaml'], 0),
      step(['status', 'rotate', '--no-health', '--json'], 0),
      step(['plan', work.spec, '--hosts', work.hosts, '--set', 'mode=slow'], 1),
    ])
    expectNoSecret(outputs)
    // What the nodes get does hold the new value.
    expect((await readRegistered(registry, 'rotate')).files['rotate-app-1']!['conf/app.conf']).toContain(`password=${NEW}`)

    const stored = await rawText(registry)
    expect(stored).toContain('Zy92')
    if (kind === 'embedded') {
      // The embedded store keeps history itself: the replaced value is gone from it (etcd's history is etcd's to compact).
      expect(readFileSync(path.join(registry.store.state!, 'state.json'), 'utf8')).not.toContain('Qx81')
      const planFile = path.join(work.dir, 'destroy.plan')
      await step(['plan', work.spec, '--hosts', work.hosts, '--destroy', '--out', planFile], 0)
      await step(['apply', planFile, '--registry-only'], 0)
      const after = readFileSync(path.join(registry.store.state!, 'state.json'), 'utf8')
      for (const mark of [...MARKS, 'clusters/rotate', 'operations/rotate']) expect(after).not.toContain(mark)
    }
  })

  it('stores secret values encrypted with a key, opens them only with it, and refuses to work without it', SLOW, async () => {
    const {registry, work, run} = setup('sealed')
    const key = {SHOAL_SECRETS_KEY: KEY}
    expectExit(await run(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--set', `password=${OLD}`], key), 0)
    const stored = await rawText(registry)
    expect(stored).not.toContain('Qx81')
    expect(stored).toContain('shoal-sealed:v1:')
    const withKey = await run(['plan', work.spec, '--hosts', work.hosts, '--detailed-exitcode'], key)
    expectExit(withKey, 0)
    const withoutKey = await run(['apply', work.spec, '--hosts', work.hosts, '--registry-only'])
    expectExit(withoutKey, 1)
    expect(withoutKey.stderr).toMatch(/is stored encrypted and no key was given: pass --secrets-key-file FILE or set SHOAL_SECRETS_KEY/)
    const shown = await run(['get', 'sealed', 'env', '--json'])
    expectExit(shown, 0)
    expect(JSON.parse(shown.stdout).env.port).toEqual({value: '2181', source: 'default', secret: false})
    expectExit(await run(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--set', `password=${NEW}`], key), 0)
    const rotated = await rawText(registry)
    for (const mark of MARKS) expect(rotated).not.toContain(mark)
    expectNoSecret([withKey, withoutKey, shown])
  })
})

describe('the state directory', () => {
  it('is never created by a read-only command (get, status, plan, render)', SLOW, async () => {
    const work = workdir('ro')
    const state = path.join(work.dir, 'state-not-there')
    const flags = ['--state', state]
    const results = await Promise.all([
      shoal(['get', ...flags]),
      shoal(['get', 'ro', ...flags]),
      shoal(['status', 'ro', '--no-health', ...flags]),
      shoal(['plan', work.spec, '--hosts', work.hosts, '--set', 'password=x', ...flags]),
      shoal(['render', work.spec, '--hosts', work.hosts, '--node', 'ro-app-1', '--set', 'password=x', ...flags]),
    ])
    expect(results.map((r) => r.code)).toEqual([0, 1, 1, 0, 0])
    expect(existsSync(state)).toBe(false)
  })

  it('is named by SHOAL_STATE like --state', SLOW, async () => {
    const work = workdir('envstate')
    const state = path.join(work.dir, 'from-env')
    const env = {SHOAL_STATE: state}
    expectExit(await shoal(['apply', work.spec, '--hosts', work.hosts, '--registry-only', '--set', 'password=x'], {env}), 0)
    expect(existsSync(path.join(state, 'state.json'))).toBe(true)
    const listed = await shoal(['get'], {env})
    expect(listed.stdout.trim()).toBe('envstate')
  })
})
