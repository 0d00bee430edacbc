// shoal plan / apply / scale / get / render / unlock as real processes, against the embedded store and a real etcd.
import {mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {eventually, startWorker, type Worker} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'
import {
  assertCliBuilt,
  describeResult,
  embeddedRegistry,
  etcdRegistry,
  readRegistered,
  registeredNodes,
  shoal,
  type CliResult,
  type Registry,
  type RegistryKind,
} from './support/shoal-cli.js'
import {memberLines, ROLE, writeTmpCluster, type TmpCluster, type TmpClusterOptions} from './support/tmp-cluster.js'

/** A value JSON and YAML both escape, so a redaction that only matches the raw text is caught. */
const SECRET = 'hunter2-"q"\\z'
const SECRET_MARK = 'hunter2'
/** Tests share the machine with each other: generous, and not a timing assertion. */
const SLOW = {timeout: 180_000}

let etcd: EtcdCluster | undefined
beforeAll(async () => {
  assertCliBuilt()
  etcd = await startEtcd()
})
afterAll(async () => {
  await etcd?.stop()
})

function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}

/** A failure is one line for a person: `shoal: ...`, never a stack trace. */
function expectCleanError(result: CliResult, pattern: RegExp): void {
  expect(result.stderr).toMatch(pattern)
  expect(result.stderr).toMatch(/^shoal: /)
  expect(result.stderr).not.toMatch(/^\s+at /m)
}

// Every test has its own registry (state dir, or etcd prefix), so they run concurrently: the CLI processes are what
// takes the time, and they keep both cores busy.
describe.concurrent.each<RegistryKind>(['embedded', 'etcd'])('shoal CLI against the %s registry', (kind) => {
  const cleanup: Array<() => void> = []
  const workers: Worker[] = []
  // Not afterEach: the tests run concurrently, and one test's end must not dispose of another's registry.
  afterAll(() => {
    for (const w of workers.splice(0)) w.child.kill('SIGKILL')
    for (const dispose of cleanup.splice(0)) dispose()
  })

  function setup(options: Partial<TmpClusterOptions> & {name: string}): {registry: Registry; cluster: TmpCluster; run: (...args: string[]) => Promise<CliResult>} {
    const registry = kind === 'embedded' ? embeddedRegistry() : etcdRegistry(etcd!.endpoints)
    const cluster = writeTmpCluster({count: 3, ...options})
    cleanup.push(() => registry.dispose(), () => cluster.dispose())
    return {registry, cluster, run: (...args) => shoal([...args, ...registry.flags])}
  }

  async function register(run: (...args: string[]) => Promise<CliResult>, cluster: TmpCluster): Promise<void> {
    expectExit(await run('apply', cluster.spec, '--hosts', cluster.hosts, '--registry-only'), 0)
  }

  it('plan writes nothing; its saved plan applies once, then is stale; planning again finds no changes', SLOW, async () => {
    const {registry, cluster, run} = setup({name: 'flow'})
    const outDir = mkdtempSync(path.join(tmpdir(), 'shoal-plan-out-'))
    cleanup.push(() => rmSync(outDir, {recursive: true, force: true}))
    const planFile = path.join(outDir, 'flow.plan')

    const planned = await run('plan', cluster.spec, '--hosts', cluster.hosts, '--out', planFile, '--detailed-exitcode')
    expectExit(planned, 2)
    expect(planned.stdout).toContain('+ flow-zk-1')
    expect(statSync(planFile).mode & 0o777).toBe(0o600)

    const listed = await run('get', '--json')
    expectExit(listed, 0)
    expect(JSON.parse(listed.stdout)).toEqual({clusters: []})
    expectCleanError(await run('get', 'flow'), /cluster flow is not registered/)

    const applied = await run('apply', planFile, '--registry-only')
    expectExit(applied, 0)
    expect(applied.stdout).toMatch(/Registered flow at revision 1 in /)

    const again = await run('plan', cluster.spec, '--hosts', cluster.hosts, '--detailed-exitcode')
    expectExit(again, 0)
    expect(again.stdout).toContain('no changes')

    const stale = await run('apply', planFile, '--registry-only')
    expectExit(stale, 1)
    expectCleanError(stale, /stale/)
    expect((await registeredNodes(registry, 'flow', ROLE)).map(n => n.sid)).toEqual([1, 2, 3])
  })

  it('applying a spec twice registers it once', SLOW, async () => {
    const {cluster, run} = setup({name: 'twice'})
    await register(run, cluster)
    const second = await run('apply', cluster.spec, '--hosts', cluster.hosts, '--registry-only')
    expectExit(second, 0)
    expect(second.stdout).toContain('twice: nothing to apply')
    const plain = await run('plan', cluster.spec, '--hosts', cluster.hosts)
    expectExit(plain, 0)
    expect(plain.stdout).toContain('no changes')
  })

  it('get lists clusters and prints a tree, a subtree, JSON and YAML', SLOW, async () => {
    const {cluster, run} = setup({name: 'tree'})
    await register(run, cluster)

    const list = await run('get')
    expectExit(list, 0)
    expect(list.stdout.trim()).toBe('tree')

    const whole = await run('get', 'tree')
    expectExit(whole, 0)
    expect(whole.stdout).toMatch(/^cluster\/revision = 1$/m)
    expect(whole.stdout).toMatch(/^hosts\/zk\/tree-zk-2\/sid = 2$/m)

    const sub = await run('get', 'tree', 'hosts/zk/tree-zk-1')
    expectExit(sub, 0)
    const subKeys = sub.stdout.trim().split('\n').map(l => l.split(' = ')[0])
    expect(subKeys.length).toBeGreaterThan(3)
    for (const key of subKeys) expect(key).toMatch(/^hosts\/zk\/tree-zk-1\//)

    const json = await run('get', 'tree', 'hosts', '--json')
    expectExit(json, 0)
    const parsed = JSON.parse(json.stdout) as {cluster: string; tree: {hosts: Record<string, Record<string, {sid: string}>>}}
    expect(parsed.cluster).toBe('tree')
    expect(Object.keys(parsed.tree)).toEqual(['hosts'])
    expect(Object.values(parsed.tree.hosts.zk!).map(n => n.sid).sort()).toEqual(['1', '2', '3'])

    const yaml = await run('get', 'tree', 'env', '--yaml')
    expectExit(yaml, 0)
    // `get CLUSTER env` says where each value came from (a default, a values file, --set) and whether it is secret.
    expect(yaml.stdout).toBe('client_port:\n  value: "2181"\n  source: default\n  secret: false\n')

    expectCleanError(await run('get', 'tree', 'no/such/key'), /no key no\/such\/key in cluster tree/)
  })

  it('never shows a secret env value in plan or get output; render shows it only with --show-secrets', SLOW, async () => {
    const {cluster, run} = setup({name: 'sec', secret: SECRET})
    const planned = await run('plan', cluster.spec, '--hosts', cluster.hosts)
    expectExit(planned, 0)
    // members.cfg reads the secret: the plan says it is created and shows none of it.
    expect(planned.stdout).toContain('+++ planned/sec-zk-1/conf/members.cfg\n@@ created; content hidden: the template reads a secret @@')
    expect(planned.stdout).not.toContain('password=')
    expect(planned.stdout).not.toContain(SECRET_MARK)

    await register(run, cluster)
    for (const args of [['get', 'sec'], ['get', 'sec', '--json'], ['get', 'sec', '--yaml']]) {
      const shown = await run(...args)
      expectExit(shown, 0)
      expect(shown.stdout, args.join(' ')).not.toContain(SECRET_MARK)
      expect(shown.stdout, args.join(' ')).toContain('<redacted>')
    }

    const redacted = await run('render', cluster.spec, '--hosts', cluster.hosts, '--node', 'sec-zk-1')
    expectExit(redacted, 0)
    expect(redacted.stdout).toContain('/conf/members.cfg (mode 0644; content hidden: the template reads a secret, --show-secrets shows it)')
    expect(redacted.stdout).toMatch(/data\/myid \(mode 0644\)\n1\n/)
    expect(redacted.stdout).not.toContain('password=')
    expect(redacted.stdout).not.toContain(SECRET_MARK)
    const shown = await run('render', cluster.spec, '--hosts', cluster.hosts, '--node', 'sec-zk-1', '--show-secrets')
    expectExit(shown, 0)
    expect(shown.stdout).toContain(`password=${SECRET}\n`)
  })

  // The registry tree value `cluster/spec` holds the spec as JSON, where the secret appears JSON-escaped.
  it('plan --json does not show a secret that JSON escapes', SLOW, async () => {
    const {cluster, run} = setup({name: 'secjson', secret: SECRET})
    const planned = await run('plan', cluster.spec, '--hosts', cluster.hosts, '--json')
    expectExit(planned, 0)
    expect(planned.stdout).not.toContain(SECRET_MARK)
  })

  it('render prints a node’s files; an unknown node exits 2 naming the nodes', SLOW, async () => {
    const {cluster, run} = setup({name: 'rnd'})
    const rendered = await run('render', cluster.spec, '--hosts', cluster.hosts, '--node', 'rnd-zk-2')
    expectExit(rendered, 0)
    expect(rendered.stdout).toMatch(/^# \/srv\/shoal\/rnd\/rnd-zk-2\/conf\/members\.cfg \(mode 0644\)$/m)
    expect(rendered.stdout).toMatch(/^# \/srv\/shoal\/rnd\/rnd-zk-2\/data\/myid \(mode 0644\)\n2\n/m)
    expect(memberLines(rendered.stdout).map(l => l.split('=')[0])).toEqual(['1', '2', '3'])

    const unknown = await run('render', cluster.spec, '--hosts', cluster.hosts, '--node', 'rnd-zk-9')
    expectExit(unknown, 2)
    expectCleanError(unknown, /no node rnd-zk-9 in cluster rnd; nodes: rnd-zk-1, rnd-zk-2, rnd-zk-3/)
  })

  it('scale adds, removes and sets counts; sids and node ids are never reused below the bound', SLOW, async () => {
    const {registry, cluster, run} = setup({name: 'sc'})
    await register(run, cluster)
    const nodes = async (): Promise<string[]> => (await registeredNodes(registry, 'sc', ROLE)).map(n => `${n.node_id}:${n.sid}`)
    const scale = (...args: string[]): Promise<CliResult> => run('scale', 'sc', '--role', ROLE, '--hosts', cluster.hosts, '--registry-only', ...args)

    expectExit(await scale('--add', '2'), 0)
    expect(await nodes()).toEqual(['sc-zk-1:1', 'sc-zk-2:2', 'sc-zk-3:3', 'sc-zk-4:4', 'sc-zk-5:5'])
    expectExit(await scale('--remove', 'sc-zk-2'), 0)
    expect(await nodes()).toEqual(['sc-zk-1:1', 'sc-zk-3:3', 'sc-zk-4:4', 'sc-zk-5:5'])
    expectExit(await scale('--add', '1'), 0)
    expect(await nodes()).toEqual(['sc-zk-1:1', 'sc-zk-3:3', 'sc-zk-4:4', 'sc-zk-5:5', 'sc-zk-6:6'])
    expectExit(await scale('--count', '3'), 0) // highest sids leave first
    expect(await nodes()).toEqual(['sc-zk-1:1', 'sc-zk-3:3', 'sc-zk-4:4'])
    expectExit(await scale('--count', '4'), 0)
    expect(await nodes()).toEqual(['sc-zk-1:1', 'sc-zk-3:3', 'sc-zk-4:4', 'sc-zk-7:7'])

    // Every node's files list exactly the current members.
    const {nodes: final, files} = await readRegistered(registry, 'sc')
    expect(Object.keys(files).sort()).toEqual(['sc-zk-1', 'sc-zk-3', 'sc-zk-4', 'sc-zk-7'])
    for (const nodeFiles of Object.values(files)) expect(memberLines(nodeFiles['conf/members.cfg']!)).toEqual(final.map(n => `${n.sid}=${n.ip}`))
  })

  it('reuses a released sid only once the bound is reached, and then with a new node id', SLOW, async () => {
    const {registry, cluster, run} = setup({name: 'bound', upperBound: 4, max: 4})
    await register(run, cluster)
    const scale = (...args: string[]): Promise<CliResult> => run('scale', 'bound', '--role', ROLE, '--hosts', cluster.hosts, '--registry-only', ...args)
    const nodes = async (): Promise<string[]> => (await registeredNodes(registry, 'bound', ROLE)).map(n => `${n.node_id}:${n.sid}`)
    expectExit(await scale('--remove', 'bound-zk-2'), 0)
    expectExit(await scale('--add', '1'), 0)
    expect(await nodes()).toEqual(['bound-zk-1:1', 'bound-zk-3:3', 'bound-zk-4:4'])
    expectExit(await scale('--add', '1'), 0)
    expect(await nodes()).toEqual(['bound-zk-1:1', 'bound-zk-5:2', 'bound-zk-3:3', 'bound-zk-4:4'])
  })

  it('scale enforces bounds, --dry-run writes nothing, usage errors exit 2', SLOW, async () => {
    const {registry, cluster, run} = setup({name: 'lim', min: 2, max: 5})
    await register(run, cluster)
    const revision = async (): Promise<string | undefined> => (await readRegistered(registry, 'lim')).revision
    const before = await revision()
    expect(before).toBe('1')
    const scale = (...args: string[]): Promise<CliResult> => run('scale', 'lim', '--role', ROLE, '--hosts', cluster.hosts, ...args)

    const tooMany = await scale('--count', '6', '--registry-only')
    expectExit(tooMany, 1)
    expectCleanError(tooMany, /count 6 is outside its scale bounds \[2, 5\]/)
    const tooFew = await scale('--remove', 'lim-zk-1', '--remove', 'lim-zk-2', '--registry-only')
    expectExit(tooFew, 1)
    expectCleanError(tooFew, /outside its scale bounds \[2, 5\]/)

    const dry = await scale('--add', '2', '--dry-run')
    expectExit(dry, 0)
    expect(dry.stdout).toContain('+ lim-zk-4')
    expect(dry.stdout).toContain('+ lim-zk-5')

    const noHosts = await run('scale', 'lim', '--role', ROLE, '--add', '1', '--registry-only')
    expectExit(noHosts, 2)
    expectCleanError(noHosts, /needs --hosts/)
    const unknown = await run('scale', 'nope', '--role', ROLE, '--remove', 'nope-zk-1', '--registry-only')
    expectExit(unknown, 1)
    expectCleanError(unknown, /cluster nope is not registered/)

    expect(await revision()).toBe(before)
    expect((await registeredNodes(registry, 'lim', ROLE)).map(n => n.node_id)).toEqual(['lim-zk-1', 'lim-zk-2', 'lim-zk-3'])
  })

  it('a held lock stops scale, naming its holder and the unlock command; unlock needs --force and the right id', SLOW, async () => {
    const {registry, cluster, run} = setup({name: 'lk'})
    await register(run, cluster)
    const holder = startWorker(registry.store, ['hold-lock', 'lk', '3'])
    workers.push(holder)
    const id = await holder.firstLine
    expect(id).toMatch(/^[0-9a-f-]{36}$/)

    const blocked = await run('scale', 'lk', '--role', ROLE, '--add', '1', '--hosts', cluster.hosts, '--registry-only')
    expectExit(blocked, 1)
    expectCleanError(blocked, new RegExp(`cluster lk is locked by \\S+ pid ${holder.child.pid}, running "test-hold"`))
    expect(blocked.stderr).toContain(`shoal unlock lk --force --id ${id}`)

    const shown = await run('unlock', 'lk')
    expectExit(shown, 0)
    expect(shown.stdout).toContain(`pid ${holder.child.pid}`)
    expect(shown.stdout).toContain(`(id ${id})`)
    const noId = await run('unlock', 'lk', '--force')
    expectExit(noId, 2)
    expectCleanError(noId, /--force needs --id/)
    const wrong = await run('unlock', 'lk', '--force', '--id', '00000000-0000-0000-0000-000000000000')
    expectExit(wrong, 1)
    expectCleanError(wrong, new RegExp(`locked with id ${id} .*refusing to remove it`))
    expect(JSON.parse((await run('unlock', 'lk', '--json')).stdout)).toMatchObject({locked: true, lock: {id}})

    const removed = await run('unlock', 'lk', '--force', '--id', id)
    expectExit(removed, 0)
    expect(removed.stdout).toContain(`removed lock ${id} of lk`)
    expect(JSON.parse((await run('unlock', 'lk', '--json')).stdout)).toEqual({cluster: 'lk', locked: false})
    expectExit(await run('scale', 'lk', '--role', ROLE, '--add', '1', '--hosts', cluster.hosts, '--registry-only'), 0)
    expect(await registeredNodes(registry, 'lk', ROLE)).toHaveLength(4)
  })

  it('the lock of a killed holder expires by itself', SLOW, async () => {
    const {registry, cluster, run} = setup({name: 'exp'})
    await register(run, cluster)
    const holder = startWorker(registry.store, ['hold-lock', 'exp', '2'])
    workers.push(holder)
    const id = await holder.firstLine
    expect(JSON.parse((await run('unlock', 'exp', '--json')).stdout)).toMatchObject({locked: true, lock: {id}})
    holder.child.kill('SIGKILL')
    await holder.exited

    await eventually('the dead holder\'s lock to expire', async () => {
      const r = await run('unlock', 'exp', '--json')
      return r.code === 0 && (JSON.parse(r.stdout) as {locked: boolean}).locked === false
    }, 30_000, 250)
    expectExit(await run('scale', 'exp', '--role', ROLE, '--add', '1', '--hosts', cluster.hosts, '--registry-only'), 0)
  })
})

