// The executor end to end: shoal create / status / run / scale / apply / destroy / resume as real processes, scripts on
// real sshd sandbox hosts, registry in the embedded store and in a real etcd. Faults: a hanging script, a failing canary,
// a host whose sshd is gone, kill -9 of shoal mid-create.
import {existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {sandboxUp} from '../src/sandbox/sandbox.js'
import {openStore} from '../src/store/open.js'
import {eventually} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'
import {count, markerLines, NASTY, writeLifecycleCluster, type LifecycleCluster, controlFile} from './support/lifecycle-cluster.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, etcdRegistry, registeredNodes, shoal, spawnShoal, type CliResult, type Registry} from './support/shoal-cli.js'

const HOSTS = 4
let sandbox: TestSandbox
let etcd: EtcdCluster
const cleanups: Array<() => void> = []

beforeAll(async () => {
  assertCliBuilt()
  ;[sandbox, etcd] = await Promise.all([startSandbox(HOSTS), startEtcd()])
})
afterAll(async () => {
  for (const cleanup of cleanups) cleanup()
  await Promise.all([sandbox?.stop(), etcd?.stop()])
})

const srvDirs = (): string[] => sandbox.state.hosts.map((h) => path.join(h.dir, 'srv'))
const control = (name: string, present: boolean): void => controlFile(srvDirs(), name, present)
/** The local path of a node's home on whichever host holds it. */
function homeOf(cluster: string, node: string): string {
  const found = srvDirs().map((srv) => path.join(srv, 'shoal', cluster, node)).find((p) => existsSync(p))
  if (!found) throw new Error(`no home for ${node} on any sandbox host`)
  return found
}

function setup(kind: 'embedded' | 'etcd', name: string, options: {count?: number; startTimeout?: string} = {}): {cluster: LifecycleCluster; registry: Registry; run: (...args: string[]) => Promise<CliResult>} {
  const cluster = writeLifecycleCluster({name, count: options.count ?? 3, ...(options.startTimeout ? {startTimeout: options.startTimeout} : {})})
  const registry = kind === 'embedded' ? embeddedRegistry() : etcdRegistry(etcd.endpoints)
  cleanups.push(() => cluster.dispose(), () => registry.dispose())
  return {cluster, registry, run: (...args: string[]) => shoal([...args, ...registry.flags])}
}

function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}

interface StatusJson {
  registered: boolean
  nodes: Array<{node_id: string; state: string; health: string}>
  unfinished?: {title: string; failure?: {step: string; node?: string; exitCode?: number | null; timedOut?: boolean; stderr?: string}}
  last?: {kind: string; result: string; step?: string}
}

async function status(run: (...args: string[]) => Promise<CliResult>, cluster: string): Promise<StatusJson> {
  const result = await run('status', cluster, '--json')
  expectExit(result, 0)
  return JSON.parse(result.stdout) as StatusJson
}

describe.each(['embedded', 'etcd'] as const)('a cluster lifecycle on the %s registry', (kind) => {
  const name = `life-${kind}`
  let ctx: ReturnType<typeof setup>
  beforeAll(() => {
    ctx = setup(kind, name)
  })
  const ids = [1, 2, 3].map((i) => `${name}-app-${i}`)

  it('create places the files and runs init then start once per node, every node active', async () => {
    expectExit(await ctx.run('create', ctx.cluster.spec, '--hosts', sandbox.state.inventory), 0)
    const lines = markerLines(srvDirs(), name)
    for (const id of ids) {
      expect(count(lines, `init ${id}`)).toBe(1)
      expect(count(lines, `start ${id}`)).toBe(1)
    }
    expect((await registeredNodes(ctx.registry, name, 'app')).map((n) => n.state)).toEqual(['active', 'active', 'active'])
  })

  it('scripts get SHOAL_* values, metacharacter-laden env values intact, cwd = node home, the membership file', () => {
    const home = homeOf(name, ids[1]!)
    const env = Object.fromEntries(readFileSync(path.join(home, 'env.txt'), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    expect(env).toMatchObject({
      SHOAL_CLUSTER: name, SHOAL_NODE_ID: ids[1], SHOAL_ROLE: 'app', SHOAL_SID: '2', SHOAL_BOOTSTRAP: 'false', SHOAL_HOME: `/srv/shoal/${name}/${ids[1]}`,
      SHOAL_MEMBERSHIP: `/srv/shoal/${name}/${ids[1]}/.shoal/membership.json`, SHOAL_JOINING: ids.join(' '), SHOAL_LEAVING: '', SHOAL_ENV_PORT: '7000', SHOAL_OPERATION: 'create',
    })
    expect(sandbox.state.hosts.map((h) => h.address)).toContain(env.SHOAL_IP)
    expect(readFileSync(path.join(home, 'greeting.txt'), 'utf8')).toBe(NASTY)
    expect(readFileSync(path.join(home, 'cwd.txt'), 'utf8').trim()).toBe(`/srv/shoal/${name}/${ids[1]}`)
    const membership = JSON.parse(readFileSync(path.join(home, 'membership-init.json'), 'utf8')) as Record<string, Record<string, Array<{node_id: string}>>>
    expect(membership.joining!.app!.map((n) => n.node_id)).toEqual(ids)
    expect(membership.after!.app!.map((n) => n.node_id)).toEqual(ids)
    expect(membership.before).toEqual({})
  })

  it('files are installed with their modes; relative ones under the home, absolute ones on the host', () => {
    const home = homeOf(name, ids[0]!)
    expect(statSync(path.join(home, 'conf/app.conf')).mode & 0o777).toBe(0o640)
    expect(statSync(path.join(home, 'data/sid')).mode & 0o777).toBe(0o600)
    expect(readFileSync(path.join(home, 'conf/app.conf'), 'utf8')).toBe(`node=${ids[0]}\nmembers=1 2 3 \n`)
    expect(readFileSync(path.join(path.dirname(path.dirname(path.dirname(home))), `abs-${name}.conf`), 'utf8')).toBe(`cluster=${name}\n`)
  })

  it('create of a registered cluster is refused; apply of the same spec changes nothing', async () => {
    const again = await ctx.run('create', ctx.cluster.spec, '--hosts', sandbox.state.inventory)
    expectExit(again, 1)
    expect(again.stderr).toMatch(/already registered.*shoal apply/)
    const apply = await ctx.run('apply', ctx.cluster.spec, '--hosts', sandbox.state.inventory)
    expectExit(apply, 0)
    expect(apply.stdout).toMatch(/nothing to do/)
    expect(count(markerLines(srvDirs(), name), `init ${ids[0]}`)).toBe(1)
  })

  it('status shows every node active and healthy (checked now) and the last operation', async () => {
    const s = await status(ctx.run, name)
    expect(s.nodes.map((n) => [n.node_id, n.state, n.health])).toEqual(ids.map((id) => [id, 'active', 'healthy']))
    expect(s.last).toMatchObject({kind: 'create', result: 'ok'})
    expect(s.unfinished).toBeUndefined()
    rmSync(path.join(homeOf(name, ids[2]!), 'started'))
    const after = await status(ctx.run, name)
    expect(after.nodes.find((n) => n.node_id === ids[2])!.health).toBe('unhealthy')
    writeFileSync(path.join(homeOf(name, ids[2]!), 'started'), '')
  })

  it('run honours `on: bootstrap` for an action and runs restart on every node', async () => {
    const hello = await ctx.run('run', name, 'hello')
    expectExit(hello, 0)
    expect(hello.stdout).toContain(`${ids[0]} | hello from ${ids[0]}`)
    expectExit(await ctx.run('run', name, 'restart'), 0)
    const lines = markerLines(srvDirs(), name)
    expect(ids.map((id) => count(lines, `hello ${id}`))).toEqual([1, 0, 0])
    expect(ids.map((id) => count(lines, `restart ${id}`))).toEqual([1, 1, 1])
    const unknown = await ctx.run('run', name, 'nope')
    expectExit(unknown, 2)
    expect(unknown.stderr).toMatch(/available: hello, restart/)
  })

  it('scale out reloads exactly the changed file on the members that stay; the new node gets init and start', async () => {
    expectExit(await ctx.run('scale', name, '--role', 'app', '--add', '1'), 0)
    const lines = markerLines(srvDirs(), name)
    const added = `${name}-app-4`
    expect(ids.map((id) => count(lines, `reload ${id}`))).toEqual([1, 1, 1])
    expect(ids.map((id) => count(lines, `scale_out ${id}`))).toEqual([1, 1, 1])
    expect(lines.filter((l) => l.startsWith('reload-sid ') || l === `reload ${added}`)).toEqual([])
    expect([count(lines, `init ${added}`), count(lines, `start ${added}`)]).toEqual([1, 1])
    expect(readFileSync(path.join(homeOf(name, ids[0]!), 'conf/app.conf'), 'utf8')).toBe(`node=${ids[0]}\nmembers=1 2 3 4 \n`)
  })

  it('destroy stops and removes everything: no home, no absolute file, an empty registry', async () => {
    const result = await ctx.run('destroy', name, '--yes')
    expectExit(result, 0)
    const lines = markerLines(srvDirs(), name)
    for (const id of [...ids, `${name}-app-4`]) expect([count(lines, `stop ${id}`), count(lines, `destroy ${id}`)]).toEqual([1, 1])
    for (const srv of srvDirs()) {
      expect(existsSync(path.join(srv, 'shoal')) ? readdirSync(path.join(srv, 'shoal')) : []).toEqual([])
      expect(existsSync(path.join(srv, `abs-${name}.conf`))).toBe(false)
    }
    const store = await openStore(ctx.registry.store)
    try {
      expect((await store.range('')).kvs.map((kv) => kv.key)).toEqual([])
    } finally {
      await store.close()
    }
  })
})

describe.each(['embedded', 'etcd'] as const)('failures on the %s registry stop the operation at a recorded step; resume converges', (kind) => {
  // The same clusters run once per registry: each run starts from empty marker logs.
  beforeAll(() => {
    for (const srv of srvDirs()) rmSync(path.join(srv, 'markers'), {recursive: true, force: true})
  })

  it('a script past its timeout fails clearly, its remote process is gone, and resume finishes', async () => {
    const {cluster, run} = setup(kind, 'hang', {count: 1, startTimeout: '2s'})
    control('hang-hang-app-1', true)
    try {
      const result = await run('create', cluster.spec, '--hosts', sandbox.state.inventory)
      expectExit(result, 1)
      expect(result.stderr).toMatch(/hang-app-1.*timed out/)
      expect(result.stderr).toContain('shoal resume hang')
      const pidFile = srvDirs().map((srv) => path.join(srv, 'hang.pid')).find((f) => existsSync(f))!
      const pid = readFileSync(pidFile, 'utf8').trim()
      await eventually(`process ${pid} to end`, async () => !existsSync(`/proc/${pid}`), 15_000)
      const s = await status(run, 'hang')
      expect(s.unfinished?.failure).toMatchObject({node: 'hang-app-1', timedOut: true})
      expect(s.nodes.map((n) => n.state)).toEqual(['pending'])
    } finally {
      control('hang-hang-app-1', false)
      for (const srv of srvDirs()) rmSync(path.join(srv, 'hang.pid'), {force: true})
    }
    expectExit(await run('resume', 'hang'), 0)
    expect((await status(run, 'hang')).nodes.map((n) => [n.state, n.health])).toEqual([['active', 'healthy']])
    expectExit(await run('destroy', 'hang', '--yes'), 0)
  })

  it('a failing canary of a scale out stops the operation before any later batch; the same command again converges, init ran once per node', async () => {
    const {cluster, run} = setup(kind, 'canary', {count: 1})
    expectExit(await run('create', cluster.spec, '--hosts', sandbox.state.inventory), 0)
    control('fail-canary-app-2', true)
    try {
      const result = await run('scale', 'canary', '--role', 'app', '--add', '2')
      expectExit(result, 1)
      expect(result.stderr).toMatch(/canary-app-2.*exited 3.*refusing to start canary-app-2/s)
      expect(result.stderr).toMatch(/run the same command again.*shoal resume canary.*shoal rollback canary/s)
      const lines = markerLines(srvDirs(), 'canary')
      expect(count(lines, 'start canary-app-2')).toBe(1)
      expect(lines.filter((l) => l === 'start canary-app-3')).toEqual([])
      const s = await status(run, 'canary')
      expect(s.unfinished?.failure).toMatchObject({node: 'canary-app-2', exitCode: 3})
      expect(s.last).toMatchObject({result: 'failed'})
      // An action that changes things is refused while this one is unfinished, naming the ways out.
      const other = await run('run', 'canary', 'hello')
      expectExit(other, 1)
      expect(other.stderr).toMatch(/unfinished operation.*shoal resume canary.*shoal rollback canary/s)
    } finally {
      control('fail-canary-app-2', false)
    }
    expectExit(await run('scale', 'canary', '--role', 'app', '--add', '2'), 0) // the same command fixes forward
    const lines = markerLines(srvDirs(), 'canary')
    for (const i of [1, 2, 3]) expect(count(lines, `init canary-app-${i}`)).toBe(1)
    expect((await status(run, 'canary')).nodes.map((n) => n.state)).toEqual(['active', 'active', 'active'])
    expectExit(await run('destroy', 'canary', '--yes'), 0)
  })

  it('a host whose sshd is gone fails the step clearly, the registry stays consistent, resume converges once it is back', async () => {
    const {cluster, run} = setup(kind, 'nossh')
    const victim = sandbox.state.hosts[2]!
    process.kill(victim.pid, 'SIGKILL')
    const result = await run('create', cluster.spec, '--hosts', sandbox.state.inventory)
    expectExit(result, 1)
    expect(result.stderr).toMatch(new RegExp(`cannot connect to ${victim.name}.*Is sshd running there\\?`, 's'))
    expect(result.stderr).toContain('shoal resume nossh')
    const s = await status(run, 'nossh')
    expect(s.registered).toBe(true)
    expect(s.nodes.map((n) => n.state)).toEqual(['pending', 'pending', 'pending'])
    expect(s.nodes.find((n) => n.health === 'unreachable')).toBeDefined()
    sandbox.state = await sandboxUp({dir: sandbox.state.dir, hosts: HOSTS, port: sandbox.port})
    expectExit(await run('resume', 'nossh'), 0)
    const after = await status(run, 'nossh')
    expect(after.nodes.map((n) => [n.state, n.health])).toEqual([['active', 'healthy'], ['active', 'healthy'], ['active', 'healthy']])
    expectExit(await run('destroy', 'nossh', '--yes'), 0)
  })

  it('kill -9 of shoal while a start script runs, and again between later steps: resume converges, init ran exactly once per node', async () => {
    const {cluster, registry, run} = setup(kind, 'killed')
    control('hold-start', true)
    try {
      const first = spawnShoal(['create', cluster.spec, '--hosts', sandbox.state.inventory, ...registry.flags])
      await eventually('the start script of killed-app-1 to leave its marker', async () => markerLines(srvDirs(), 'killed').includes('start killed-app-1'), 60_000)
      first.child.kill('SIGKILL')
      expect((await first.exited).signal).toBe('SIGKILL')
    } finally {
      control('hold-start', false)
    }
    const second = spawnShoal(['resume', 'killed', '--lock-wait', '60s', ...registry.flags])
    let stdout = ''
    second.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    await eventually('step 5/6 in the output', async () => /\[5\/6\]/.test(stdout), 90_000)
    second.child.kill('SIGKILL')
    await second.exited
    const third = await run('resume', 'killed', '--lock-wait', '60s')
    expectExit(third, 0)
    expect(third.stdout).toMatch(/done earlier/)
    const lines = markerLines(srvDirs(), 'killed')
    for (const i of [1, 2, 3]) expect(count(lines, `init killed-app-${i}`)).toBe(1)
    const s = await status(run, 'killed')
    expect(s.nodes.map((n) => [n.state, n.health])).toEqual([['active', 'healthy'], ['active', 'healthy'], ['active', 'healthy']])
    expect(s.last).toMatchObject({result: 'ok'})
    expectExit(await run('resume', 'killed'), 0) // nothing left to resume: changes nothing
    expect(count(markerLines(srvDirs(), 'killed'), 'init killed-app-1')).toBe(1)
    expectExit(await run('destroy', 'killed', '--yes'), 0)
  })
})
