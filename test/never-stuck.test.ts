// No dead end: every step of create, scale out and scale in is made to fail for real (a script, a health check or a
// file check failing on one node; commit and remove steps by kill -9 of shoal as the step begins), then the cluster is
// fixed forward (the same command again) — and, separately, rolled back — and must end healthy or gone, with nothing
// left on the hosts (homes, files, service processes) or in the registry.
import {existsSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {planCluster} from '../src/plan/plan.js'
import {applied} from './support/plan-fixtures.js'
import {readClusterInput} from '../src/workspace/inputs.js'
import {openStore} from '../src/store/open.js'
import {eventually} from './support/children.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, readRegistered, shoal, spawnShoal, type CliResult, type Registry} from './support/shoal-cli.js'

const HOSTS = 3
let sandbox: TestSandbox
let registry: Registry
// Specs are written at collection time: the steps to walk are known before the tests are (one test per step).
const specDir = mkdtempSync(path.join(tmpdir(), 'shoal-walk-'))
const srvDirs = (): string[] => sandbox.state.hosts.map((h) => path.join(h.dir, 'srv'))

beforeAll(async () => {
  assertCliBuilt()
  registry = embeddedRegistry()
  sandbox = await startSandbox(HOSTS)
})
afterAll(async () => {
  await sandbox?.stop()
  registry?.dispose()
  rmSync(specDir, {recursive: true, force: true})
})

/** Fails with exit 3 when /srv/fail-<step>-<node> exists on the node's host. */
const FAIL_IF = 'if [ -e "/srv/fail-$SHOAL_STEP-$SHOAL_NODE_ID" ]; then echo "failing on purpose at $SHOAL_STEP" >&2; exit 3; fi'
const yaml = (text: string): string => `'${text.replace(/'/g, "''")}'`

/** A cluster whose service is a real process (`walk-<node>` in its command line), started idempotently. */
function writeSpec(name: string): string {
  const dir = path.join(specDir, name)
  mkdirSync(path.join(dir, 'templates'), {recursive: true})
  const script = (body: string): string => yaml(`${FAIL_IF}; ${body}`)
  writeFileSync(path.join(dir, 'cluster.yaml'), `apiVersion: shoal/v1
kind: Cluster
name: ${name}
env:
  level: {type: integer, description: A value the service takes at run time., default: 1}
roles:
  app:
    image: debian-12
    cpu: 1
    memory: 64Mi
    disk: 1Gi
    count: 2
    files:
      - template: templates/app.conf.liquid
        dest: conf/app.conf
        check: ${yaml('! test -e "/srv/fail-check-$(basename "$(dirname "$(dirname {{src}})")")"')}
        reload: ${yaml(FAIL_IF)}
      - template: templates/abs.liquid
        dest: /srv/abs-${name}.conf
    services:
      init: {cmd: ${script('mkdir -p data && echo initialised >> data/init.log')}}
      start: {cmd: ${script(`if [ -f pid ] && kill -0 "$(cat pid)" 2>/dev/null; then exit 0; fi; nohup sh -c 'while :; do sleep 1; done' "walk-$SHOAL_NODE_ID" >/dev/null 2>&1 & echo $! > pid`)}}
      stop: {cmd: ${script('if [ -f pid ]; then kill "$(cat pid)" 2>/dev/null || true; rm -f pid; fi')}}
      destroy: {cmd: ${script('rm -rf data')}}
      pre_scale_out: {cmd: ${script('echo "joining: $SHOAL_JOINING"')}}
      scale_out: {cmd: ${script('echo "joined: $SHOAL_JOINING"')}, on: existing}
      pre_scale_in: {cmd: ${script('echo "leaving: $SHOAL_LEAVING"')}}
      scale_in: {cmd: ${script('echo "left: $SHOAL_LEAVING"')}, on: existing}
      configure: {cmd: ${script('echo "level=$SHOAL_ENV_LEVEL previous=${SHOAL_PREVIOUS_ENV_LEVEL:-}" >> data/configure.log')}}
    health_check:
      cmd: ${yaml(`test -f pid && kill -0 "$(cat pid)" && ! test -e "/srv/fail-$SHOAL_STEP-$SHOAL_NODE_ID"`)}
      interval: 200ms
      timeout: 5s
      start_period: 3s
update: {canaries: 1, max_in_flight: 100%}
`)
  writeFileSync(path.join(dir, 'templates', 'app.conf.liquid'), 'node={{ self.node_id }}\nlevel={{ env.level }}\nmembers={% for m in hosts.app %}{{ m.sid }} {% endfor %}\njoining={% for m in adding_hosts.app %}{{ m.sid }} {% endfor %}\n')
  writeFileSync(path.join(dir, 'templates', 'abs.liquid'), 'cluster={{ cluster.name }}\n')
  return path.join(dir, 'cluster.yaml')
}

const run = (...args: string[]): Promise<CliResult> => shoal([...args, ...registry.flags])
function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}

interface PlannedStep {
  id: string
  kind: string
  title: string
  nodes: string[]
  reload?: boolean
}

/** The steps a command would run, as its dry run or plan prints them. */
async function stepsOf(args: string[]): Promise<PlannedStep[]> {
  const result = await run(...args, '--json')
  expect([0, 2], describeResult(result)).toContain(result.code)
  return (JSON.parse(result.stdout) as {plan: {steps: PlannedStep[]}}).plan.steps
}

/** Make `step` fail on its first node: a control file the script, health check or file check reads. */
function breakStep(step: PlannedStep): string[] {
  const node = step.nodes[0]!
  const name = step.kind === 'install' && !step.reload ? `fail-check-${node}` : `fail-${step.id}-${node}`
  for (const srv of srvDirs()) writeFileSync(path.join(srv, name), '')
  return [name]
}
function repair(names: string[]): void {
  for (const srv of srvDirs()) for (const name of names) rmSync(path.join(srv, name), {force: true})
}

/**
 * Run `args` and make it fail at step `index`: for real where a script runs, else kill -9 as it begins. The steps are
 * the ones a dry run shows now (node ids are never reused, so each round has new joiners); they must match `expected`.
 */
async function failAt(args: string[], expected: PlannedStep[], index: number, cluster: string): Promise<void> {
  const steps = args[0] === 'scale' ? await stepsOf([...args, '--dry-run']) : expected
  expect(steps.map((s) => s.id)).toEqual(expected.map((s) => s.id))
  const step = steps[index]!
  if (step.kind === 'commit' || step.kind === 'remove' || (step.kind === 'run' && step.nodes.length === 0)) {
    const child = spawnShoal([...args, ...registry.flags])
    let out = ''
    child.child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const header = new RegExp(`\\[\\s*${index + 1}/${steps.length}\\] ${step.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)
    await eventually(`step ${step.id} to begin (or the command to end)`, async () => header.test(out) || child.child.exitCode !== null, 120_000)
    child.child.kill('SIGKILL')
    const ended = await child.exited
    expect(header.test(out), `step ${step.id} began before the command ended:\n${describeResult(ended)}`).toBe(true)
    // The dead process's lock: the documented way to remove it once its holder is gone.
    const held = await run('unlock', cluster, '--json')
    expectExit(held, 0)
    const {lock} = JSON.parse(held.stdout) as {lock?: {id: string}}
    if (lock) expectExit(await run('unlock', cluster, '--force', '--id', lock.id), 0)
    return
  }
  const controls = breakStep(step)
  try {
    const result = await run(...args)
    expectExit(result, 1)
    expect(result.stderr, describeResult(result)).toContain(`step ${step.id}`)
    expect(result.stderr).toMatch(new RegExp(`shoal rollback ${cluster}`))
  } finally {
    repair(controls)
  }
}

/**
 * Processes of the cluster's service on the machine (every sandbox host shares the pid namespace). A child the loop has
 * forked but not yet exec'd (`sleep`) has the loop's command line for a moment: a match whose parent matches too is that.
 */
function serviceProcesses(cluster: string): string[] {
  const found = new Map<string, {node: string; parent: string}>()
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      const node = cmd.find((a) => a.startsWith(`walk-${cluster}-`))
      const parent = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ')[1]!
      if (node && cmd[0] === 'sh') found.set(pid, {node: node.slice('walk-'.length), parent})
    } catch {
      // gone meanwhile
    }
  }
  return [...found.values()].filter((p) => !found.has(p.parent)).map((p) => p.node).sort()
}

function homes(cluster: string): string[] {
  return srvDirs().flatMap((srv) => {
    const dir = path.join(srv, 'shoal', cluster)
    return existsSync(dir) ? readdirSync(dir) : []
  }).sort()
}

/** Gone: no key of the cluster in the registry, no home, no absolute file, no service process. */
async function expectGone(cluster: string): Promise<void> {
  const store = await openStore(registry.store)
  try {
    const keys = (await store.range('')).kvs.filter((kv) => kv.key.includes(`/${cluster}/`) || kv.key.endsWith(`/${cluster}`) || kv.value.startsWith(`${cluster}/`))
    expect(keys.map((kv) => kv.key)).toEqual([])
  } finally {
    await store.close()
  }
  expect(homes(cluster)).toEqual([])
  expect(srvDirs().filter((srv) => existsSync(path.join(srv, `abs-${cluster}.conf`)))).toEqual([])
  await eventually(() => `no walk-${cluster}-* process (left: ${serviceProcesses(cluster).join(' ')})`, async () => serviceProcesses(cluster).length === 0, 10_000)
}

/** Healthy: `count` active members and nothing else — each running once, files on its host as registered. */
async function expectHealthy(cluster: string, count: number): Promise<void> {
  const {nodes, files, sections} = await readRegistered(registry, cluster)
  expect(nodes.map((n) => n.state)).toEqual(Array(count).fill('active'))
  expect(sections).not.toContain('adding-hosts')
  expect(sections).not.toContain('deleting-hosts')
  const ids = nodes.map((n) => n.node_id)
  expect(homes(cluster)).toEqual([...ids].sort())
  expect(serviceProcesses(cluster)).toEqual([...ids].sort())
  for (const id of ids) {
    const home = srvDirs().map((srv) => path.join(srv, 'shoal', cluster, id)).find((p) => existsSync(p))!
    expect(readFileSync(path.join(home, 'conf/app.conf'), 'utf8'), `${id}: conf/app.conf as registered`).toBe(files[id]!['conf/app.conf'])
  }
  const status = await run('status', cluster, '--json')
  expectExit(status, 0)
  const s = JSON.parse(status.stdout) as {nodes: Array<{health: string}>; unfinished?: unknown}
  expect(s.unfinished).toBeUndefined()
  expect(s.nodes.map((n) => n.health)).toEqual(Array(count).fill('healthy'))
}

const hosts = (): string => sandbox.state.inventory
/** Per step: a few commands on a loaded machine. */
const STEP_MS = 240_000

/** The steps of create (2 nodes), scale out 2 → 3 and scale in 3 → 2, planned in process from the spec. */
function walkSteps(name: string): {spec: string; create: PlannedStep[]; out: PlannedStep[]; inward: PlannedStep[]} {
  const spec = writeSpec(name)
  const {spec: parsed, templates} = readClusterInput(spec)
  const inventory = {hosts: [1, 2, 3].map((i) => ({name: `sandbox-${i}`, address: `127.0.1.${i}`}))}
  const created = planCluster({spec: parsed, templates, inventory, operation: {kind: 'create'}})
  const two = applied(created)
  const grown = planCluster({spec: two.spec!, templates, inventory, current: two, operation: {kind: 'scale', role: 'app', count: 3}})
  const three = applied(grown)
  const shrunk = planCluster({spec: three.spec!, templates, inventory, current: three, operation: {kind: 'scale', role: 'app', count: 2}})
  return {spec, create: created.steps, out: grown.steps, inward: shrunk.steps}
}
const indexed = (steps: PlannedStep[]): Array<[number, string]> => steps.map((s, i) => [i, s.id])

describe('create, failing at every step, then fixed forward (the same command again): healthy, and destroy leaves nothing', () => {
  const walk = walkSteps('wcf')
  it('walks these steps', () => {
    expect(walk.create.map((s) => s.kind)).toEqual(['commit', 'install', 'run', 'run', 'health', 'commit', 'install'])
  })
  it.each(indexed(walk.create))('step %i (%s)', async (i) => {
    const step = walk.create[i]!
    await failAt(['create', walk.spec, '--hosts', hosts()], walk.create, i, 'wcf')
    expectExit(await run('create', walk.spec, '--hosts', hosts()), 0)
    await expectHealthy('wcf', 2)
    const init = srvDirs().flatMap((srv) => {
      const dir = path.join(srv, 'shoal', 'wcf')
      return existsSync(dir) ? readdirSync(dir).map((n) => readFileSync(path.join(dir, n, 'data/init.log'), 'utf8')) : []
    })
    expect(init, `after failing at ${step.id}: init ran once per node`).toEqual(['initialised\n', 'initialised\n'])
    expectExit(await run('destroy', 'wcf', '--yes'), 0)
    await expectGone('wcf')
  }, STEP_MS)
})

describe('create, failing at every step, then rolled back: nothing left on the hosts or in the registry', () => {
  const walk = walkSteps('wcr')
  it.each(indexed(walk.create))('step %i (%s)', async (i) => {
    await failAt(['create', walk.spec, '--hosts', hosts()], walk.create, i, 'wcr')
    const back = await run('rollback', 'wcr')
    expectExit(back, 0)
    expect(back.stdout).toMatch(/Rolled back "create" of wcr/)
    await expectGone('wcr')
  }, STEP_MS)
})

describe('scale out 2 → 3, failing at every step: fixed forward it ends at 3, rolled back at 2, healthy either way', () => {
  const walk = walkSteps('wso')
  const out = ['scale', 'wso', '--role', 'app', '--count', '3']
  const inward = ['scale', 'wso', '--role', 'app', '--count', '2']
  beforeAll(async () => {
    expectExit(await run('create', walk.spec, '--hosts', hosts()), 0)
  }, STEP_MS)
  afterAll(async () => {
    await run('destroy', 'wso', '--yes')
  }, STEP_MS)
  it('walks the steps a dry run shows, pre_scale_out among them', async () => {
    expect((await stepsOf([...out, '--dry-run'])).map((s) => s.id)).toEqual(walk.out.map((s) => s.id))
    expect(walk.out.some((s) => s.title.includes('pre_scale_out'))).toBe(true)
  }, STEP_MS)
  it.each(indexed(walk.out))('step %i (%s)', async (i) => {
    await failAt(out, walk.out, i, 'wso')
    expectExit(await run(...out), 0)
    await expectHealthy('wso', 3)
    expectExit(await run(...inward), 0)
    await expectHealthy('wso', 2)
    await failAt(out, walk.out, i, 'wso')
    const back = await run('rollback', 'wso')
    expectExit(back, 0)
    expect(back.stdout).toMatch(/Rolled back "scale app \(count 3\)" of wso/)
    await expectHealthy('wso', 2)
  }, STEP_MS)
  it('destroy at the end leaves nothing', async () => {
    expectExit(await run('destroy', 'wso', '--yes'), 0)
    await expectGone('wso')
  }, STEP_MS)
})

describe('scale in 3 → 2, failing at every step: fixed forward it ends at 2; rolled back it keeps the leaver unless its destroy began', () => {
  const walk = walkSteps('wsi')
  const out = ['scale', 'wsi', '--role', 'app', '--count', '3']
  const inward = ['scale', 'wsi', '--role', 'app', '--count', '2']
  const destroyAt = walk.inward.findIndex((s) => s.title.includes('run destroy'))
  beforeAll(async () => {
    expectExit(await run('create', walk.spec, '--hosts', hosts()), 0)
    expectExit(await run(...out), 0)
  }, STEP_MS)
  afterAll(async () => {
    await run('destroy', 'wsi', '--yes')
  }, STEP_MS)
  it('walks the steps a dry run shows, pre_scale_in and destroy among them', async () => {
    expect((await stepsOf([...inward, '--dry-run'])).map((s) => s.id)).toEqual(walk.inward.map((s) => s.id))
    expect(walk.inward.some((s) => s.title.includes('pre_scale_in'))).toBe(true)
    expect(destroyAt).toBeGreaterThan(0)
  }, STEP_MS)
  it.each(indexed(walk.inward))('step %i (%s)', async (i) => {
    await failAt(inward, walk.inward, i, 'wsi')
    expectExit(await run(...inward), 0)
    await expectHealthy('wsi', 2)
    expectExit(await run(...out), 0)
    await expectHealthy('wsi', 3)
    await failAt(inward, walk.inward, i, 'wsi')
    const back = await run('rollback', 'wsi')
    expectExit(back, 0)
    const kept = i < destroyAt ? 3 : 2
    await expectHealthy('wsi', kept)
    if (i === destroyAt) expect(back.stdout).toMatch(/cannot undo: .*its destroy ran, so it cannot be restored/)
    if (kept === 2) expectExit(await run(...out), 0)
    await expectHealthy('wsi', 3)
  }, STEP_MS)
  it('destroy at the end leaves nothing', async () => {
    expectExit(await run('destroy', 'wsi', '--yes'), 0)
    await expectGone('wsi')
  }, STEP_MS)
})

describe('a scale out failing at scale_out, then its rollback failing at scale_in: scaling again joins the node again', () => {
  const spec = writeSpec('wjr')
  const add = ['scale', 'wjr', '--role', 'app', '--add', '1']
  beforeAll(async () => {
    expectExit(await run('create', spec, '--hosts', hosts()), 0)
  }, STEP_MS)
  afterAll(async () => {
    await run('destroy', 'wjr', '--yes')
  }, STEP_MS)

  it('the members run scale_out again (the rollback had told them the joiner leaves), the joiner keeps its id and finished init', async () => {
    const scaleOut = (await stepsOf([...add, '--dry-run'])).find((s) => s.title.includes('run scale_out'))!
    const member = scaleOut.nodes[0]!
    const other = member === 'wjr-app-1' ? 'wjr-app-2' : 'wjr-app-1'
    const failed = breakStep(scaleOut)
    try {
      expectExit(await run(...add), 1)
    } finally {
      repair(failed)
    }
    // A rollback has no dry run: every id its scale_in step can have, failing on the same member.
    const ids = Array.from({length: 30}, (_, i) => i + 1).flatMap((n) => [String(n), String(n).padStart(2, '0')])
      .flatMap((n) => ['', '-b1', '-b2', '-b3'].map((b) => `fail-${n}-run-scale_in-app${b}-${member}`))
    for (const srv of srvDirs()) for (const name of ids) writeFileSync(path.join(srv, name), '')
    try {
      const back = await run('rollback', 'wjr')
      expectExit(back, 1)
      expect(back.stdout).toContain(`${other} | left: wjr-app-3`)
    } finally {
      repair(ids)
    }
    const again = await run(...add)
    expectExit(again, 0)
    expect(again.stdout).toContain('wjr-app-1 | joined: wjr-app-3')
    expect(again.stdout).toContain('wjr-app-2 | joined: wjr-app-3')
    expect(again.stdout).not.toMatch(/wjr-app-4/)
    await expectHealthy('wjr', 3)
    const home = srvDirs().map((srv) => path.join(srv, 'shoal', 'wjr', 'wjr-app-3')).find((p) => existsSync(p))!
    expect(readFileSync(path.join(home, 'data/init.log'), 'utf8')).toBe('initialised\n')
  }, 3 * STEP_MS)

  it('destroy at the end leaves nothing', async () => {
    expectExit(await run('destroy', 'wjr', '--yes'), 0)
    await expectGone('wjr')
  }, STEP_MS)
})

describe('an apply changing a parameter, failing at configure on one node: fixed forward, and rolled back', () => {
  const spec = writeSpec('wpa')
  const apply = (level: number): string[] => ['apply', spec, '--hosts', hosts(), '--set', `level=${level}`]
  /** The last line configure wrote on each member, and the level its file holds. */
  const configured = async (): Promise<string[]> => {
    const {nodes} = await readRegistered(registry, 'wpa')
    return nodes.map((n) => {
      const home = srvDirs().map((srv) => path.join(srv, 'shoal', 'wpa', n.node_id)).find((p) => existsSync(p))!
      const log = path.join(home, 'data/configure.log')
      const file = readFileSync(path.join(home, 'conf/app.conf'), 'utf8').match(/^level=(\d+)$/m)![1]
      return `${existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').at(-1)! : 'none'} file=${file}`
    })
  }
  const levelIn = async (): Promise<{value: string; source: string}> => {
    const got = await run('get', 'wpa', 'env', '--json')
    expectExit(got, 0)
    const {value, source} = (JSON.parse(got.stdout) as {env: {level: {value: unknown; source: string}}}).env.level
    return {value: String(value), source}
  }
  beforeAll(async () => {
    expectExit(await run('create', spec, '--hosts', hosts()), 0)
  }, STEP_MS)
  afterAll(async () => {
    await run('destroy', 'wpa', '--yes')
  }, STEP_MS)

  async function failAtConfigure(level: number): Promise<void> {
    const planned = await run('plan', ...apply(level).slice(1), '--json')
    expectExit(planned, 0)
    const steps = (JSON.parse(planned.stdout) as {plan: {steps: PlannedStep[]}}).plan.steps
    const index = steps.findIndex((s) => s.title.includes('run configure'))
    expect(index, steps.map((s) => s.title).join('\n')).toBeGreaterThan(0)
    await failAt(apply(level), steps, index, 'wpa')
  }

  it('fixed forward: the same apply again configures every member, told the value it ran before', async () => {
    await failAtConfigure(2)
    expectExit(await run(...apply(2)), 0)
    expect(await configured()).toEqual(['level=2 previous=1 file=2', 'level=2 previous=1 file=2'])
    await expectHealthy('wpa', 2)
  }, STEP_MS)

  it('rolled back: the value and its source return, and configure runs again on every member', async () => {
    await failAtConfigure(3)
    const back = await run('rollback', 'wpa')
    expectExit(back, 0)
    expect(await levelIn()).toEqual({value: '2', source: '--set'})
    expect(await configured()).toEqual(['level=2 previous=3 file=2', 'level=2 previous=3 file=2'])
    await expectHealthy('wpa', 2)
  }, STEP_MS)

  it('destroy at the end leaves nothing', async () => {
    expectExit(await run('destroy', 'wpa', '--yes'), 0)
    await expectGone('wpa')
  }, STEP_MS)
})
