// Operations as a user meets them, through the CLI on real sandbox hosts: a quorum store created with the default
// update policy, script output kept per step and node (shoal logs, status timings and a failed step's last lines,
// secrets redacted), actions that never block (a failed one, a read-only one during an unfinished operation, arguments
// after --, restart without a restart script), and destroy's confirmation.
import {mkdtempSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, readRegistered, shoal, type CliResult, type Registry} from './support/shoal-cli.js'

let sandbox: TestSandbox
let registry: Registry
const dir = mkdtempSync(path.join(tmpdir(), 'shoal-ops-'))
const SECRET = 's3cr3t-token-42'
const CLUSTER_MS = 240_000

beforeAll(async () => {
  assertCliBuilt()
  registry = embeddedRegistry()
  sandbox = await startSandbox(4)
})
afterAll(async () => {
  await sandbox?.stop()
  registry?.dispose()
  rmSync(dir, {recursive: true, force: true})
})

const run = (...args: string[]): Promise<CliResult> => shoal([...args, ...registry.flags])
function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}
const yaml = (text: string): string => `'${text.replace(/'/g, "''")}'`

/**
 * A quorum store: each member serves on its own address and is healthy only while a majority of the members in its
 * membership file answer — a lone first member never is.
 */
function quorumSpec(name: string, port: number): string {
  const specDir = path.join(dir, name)
  mkdirSync(specDir, {recursive: true})
  mkdirSync(path.join(specDir, 'templates'), {recursive: true})
  writeFileSync(path.join(specDir, 'templates', 'majority.py.liquid'), `import json, socket, sys
members = json.load(open(sys.argv[1]))['after']['kv']
up = 0
for n in members:
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((n['ip'], ${port}))
        up += 1
    except OSError:
        pass
    finally:
        s.close()
sys.exit(0 if up * 2 > len(members) else 1)
`)
  writeFileSync(path.join(specDir, 'cluster.yaml'), `apiVersion: shoal/v1
kind: Cluster
name: ${name}
env:
  token: {type: string, secret: true, default: ${SECRET}}
roles:
  kv:
    image: debian-12
    cpu: 1
    memory: 64Mi
    disk: 1Gi
    count: 3
    files:
      - template: templates/majority.py.liquid
        dest: bin/majority.py
    services:
      start:
        cmd: ${yaml(`echo "starting $SHOAL_NODE_ID for $SHOAL_OPERATION with $SHOAL_ENV_TOKEN"; echo "a warning" >&2; if [ -f pid ] && kill -0 "$(cat pid)" 2>/dev/null; then exit 0; fi; nohup python3 -m http.server --bind "$SHOAL_IP" ${port} >/dev/null 2>&1 & echo $! > pid`)}
      stop:
        cmd: ${yaml('if [ -f pid ]; then kill "$(cat pid)" 2>/dev/null || true; rm -f pid; fi; echo "stopped $SHOAL_NODE_ID"')}
      init:
        cmd: ${yaml('if [ -e "/srv/fail-init-$SHOAL_NODE_ID" ]; then echo "cannot initialise: disk full" >&2; exit 4; fi; echo "initialised $SHOAL_NODE_ID"')}
    actions:
      echo:
        cmd: printf '[%s]'
        read_only: true
      broken:
        cmd: ${yaml('echo "about to fail"; exit 5')}
        on: bootstrap
    health_check:
      cmd: python3 bin/majority.py "$SHOAL_MEMBERSHIP"
      interval: 300ms
      timeout: 5s
      start_period: 20s
`)
  return path.join(specDir, 'cluster.yaml')
}

interface StatusJson {
  nodes: Array<{node_id: string; state: string; health: string}>
  unfinished?: {title: string}
  steps?: Array<{step: string; title: string; result: string; seconds: number}>
  failedOutput?: {step: string; node: string; lines: string[]}
}

describe('a quorum store on sandbox hosts', () => {
  const spec = quorumSpec('quorum', 20000 + Math.floor(Math.random() * 5000))

  it('creates with the default update policy: every member starts before health is awaited', async () => {
    const created = await run('create', spec, '--hosts', sandbox.state.inventory)
    expectExit(created, 0)
    const status = await run('status', 'quorum', '--json')
    expectExit(status, 0)
    const s = JSON.parse(status.stdout) as StatusJson
    expect(s.nodes.map((n) => [n.state, n.health])).toEqual([['active', 'healthy'], ['active', 'healthy'], ['active', 'healthy']])
    expect(s.steps?.map((t) => [t.step, t.result])).toEqual([['1-commit', 'ok'], ['2-install-kv', 'ok'], ['3-run-init-kv', 'ok'], ['4-run-start-kv', 'ok'], ['5-health-kv', 'ok'], ['6-commit', 'ok']])
    expect(s.steps!.every((t) => typeof t.seconds === 'number' && t.seconds >= 0)).toBe(true)
  }, CLUSTER_MS)

  it('keeps every script\'s stdout and stderr per step and node, secrets redacted', async () => {
    const logs = await run('logs', 'quorum', '--step', '4-run-start-kv', '--node', 'quorum-kv-2')
    expectExit(logs, 0)
    expect(logs.stdout).toContain('quorum-kv-2 | starting quorum-kv-2 for create with <redacted>')
    expect(logs.stdout).toContain('quorum-kv-2 ! a warning')
    expect(logs.stdout).not.toContain('quorum-kv-1 |')
    expect(logs.stdout).not.toContain(SECRET)
    const json = JSON.parse((await run('logs', 'quorum', '--json')).stdout) as {logs: Array<{step: string; node: string}>; timings: unknown[]}
    expect(json.logs.filter((l) => l.step === '4-run-start-kv').map((l) => l.node)).toEqual(['quorum-kv-1', 'quorum-kv-2', 'quorum-kv-3'])
  }, CLUSTER_MS)

  it('a failed step shows its last lines in text status; a read-only action runs while the operation is unfinished, its arguments shell-quoted', async () => {
    for (const srv of sandbox.state.hosts.map((h) => path.join(h.dir, 'srv'))) writeFileSync(path.join(srv, 'fail-init-quorum-kv-4'), '')
    const failed = await run('scale', 'quorum', '--role', 'kv', '--add', '1')
    expectExit(failed, 1)
    const status = await run('status', 'quorum', '--no-health')
    expectExit(status, 0)
    expect(status.stdout).toMatch(/Unfinished operation: "scale kv \(add 1\)"/)
    expect(status.stdout).toMatch(/shoal rollback quorum/)
    expect(status.stdout).toMatch(/Last lines of \d+-run-init-kv on quorum-kv-4[^\n]*:\n {2}! cannot initialise: disk full/)
    expect(status.stdout).toMatch(/run-init-kv\s+failed\s+[\d.]+s/)

    // Flags go before `--`: everything after it is the action's arguments.
    const echoed = await shoal(['run', 'quorum', 'echo', '--node', 'quorum-kv-1', ...registry.flags, '--', 'a b', '$HOME', "it's"])
    expectExit(echoed, 0)
    expect(echoed.stdout).toContain("quorum-kv-1 | [a b][$HOME][it's]")
    // The read-only action left the unfinished operation as it was: fixing forward still works.
    for (const srv of sandbox.state.hosts.map((h) => path.join(h.dir, 'srv'))) rmSync(path.join(srv, 'fail-init-quorum-kv-4'), {force: true})
    expectExit(await run('scale', 'quorum', '--role', 'kv', '--add', '1'), 0)
    expect((await readRegistered(registry, 'quorum')).nodes.map((n) => [n.node_id, n.state])).toEqual(
      [1, 2, 3, 4].map((i) => [`quorum-kv-${i}`, 'active']),
    )
  }, CLUSTER_MS)

  it('a failed action ends without blocking the cluster; its output stays in shoal logs', async () => {
    const broken = await run('run', 'quorum', 'broken')
    expectExit(broken, 1)
    expect(broken.stderr).toMatch(/does not block the cluster.*shoal logs quorum --operation/s)
    const id = /--operation ([0-9a-f-]+)/.exec(broken.stderr)![1]!
    const logs = await run('logs', 'quorum', '--operation', id)
    expect(logs.stdout).toContain('quorum-kv-1 | about to fail')
    expect(logs.stdout).toContain('quorum-kv-1 exited 5')
    expectExit(await run('scale', 'quorum', '--role', 'kv', '--count', '3'), 0)
  }, CLUSTER_MS)

  it('restart without a restart script runs stop then start on every node', async () => {
    const restarted = await run('run', 'quorum', 'restart')
    expectExit(restarted, 0)
    const order = restarted.stdout.split('\n').filter((l) => /\| (stopped|starting) /.test(l)).map((l) => l.replace(/ for .*/, '').replace(/^(\S+) \| (\w+) .*/, '$2 $1'))
    expect(order).toEqual(['stopped quorum-kv-1', 'starting quorum-kv-1', 'stopped quorum-kv-2', 'starting quorum-kv-2', 'stopped quorum-kv-3', 'starting quorum-kv-3'])
    const s = JSON.parse((await run('status', 'quorum', '--json')).stdout) as StatusJson
    expect(s.nodes.map((n) => n.health)).toEqual(['healthy', 'healthy', 'healthy'])
  }, CLUSTER_MS)

  it('destroy without a terminal needs --yes, and then leaves nothing registered', async () => {
    const refused = await run('destroy', 'quorum')
    expectExit(refused, 2)
    expect(refused.stderr).toMatch(/no terminal to ask on, so confirm with: shoal destroy quorum --yes/)
    expect((await readRegistered(registry, 'quorum')).nodes).toHaveLength(3)
    expectExit(await run('destroy', 'quorum', '--yes'), 0)
    expect((await readRegistered(registry, 'quorum')).sections).toEqual([])
  }, CLUSTER_MS)
})
