// Drift (issue 17): `plan --refresh` reads every registered file on its host and shows what differs (content with a
// diff, mode, missing) before the planned changes; `apply --refresh` puts the registered files back and reloads them.
import {chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {count, markerLines, writeLifecycleCluster, type LifecycleCluster} from './support/lifecycle-cluster.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, shoal, type CliResult, type Registry} from './support/shoal-cli.js'

const OPERATION_MS = 120_000
const NAME = 'drift'
let sandbox: TestSandbox
let registry: Registry
let cluster: LifecycleCluster

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(2)
  registry = embeddedRegistry()
  cluster = writeLifecycleCluster({name: NAME, count: 2})
})
afterAll(async () => {
  registry?.dispose()
  await sandbox?.stop()
  cluster?.dispose()
})

const cli = (...args: string[]): Promise<CliResult> => shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
const srvDirs = (): string[] => sandbox.state.hosts.map((h) => path.join(h.dir, 'srv'))
/** The local path of a node's home on whichever host holds it (and that host's /srv). */
function homeOf(node: string): {home: string; srv: string} {
  for (const srv of srvDirs()) {
    const home = path.join(srv, 'shoal', NAME, node)
    if (existsSync(home)) return {home, srv}
  }
  throw new Error(`no home for ${node}`)
}
const [n1, n2] = [`${NAME}-app-1`, `${NAME}-app-2`]

describe('drift', () => {
  it('nothing drifted: plan --refresh says so and changes nothing', async () => {
    expect((await cli('create', cluster.spec, '--hosts', sandbox.state.inventory)).code).toBe(0)
    const plan = await cli('plan', cluster.spec, '--hosts', sandbox.state.inventory, '--refresh', '--detailed-exitcode')
    expect(plan.code, describeResult(plan)).toBe(0)
    expect(plan.stdout).toMatch(/^Cluster drift is up to date \(revision \d+\): no changes\.\n\nDrift: none \(every registered file is on its host as registered\)\.\n$/)
  }, OPERATION_MS)

  it('a hand edit, a chmod and a deleted file: each shown as drift (the edit with a diff), and the plan installs them again', async () => {
    const one = homeOf(n1)
    const two = homeOf(n2)
    writeFileSync(path.join(one.home, 'conf/app.conf'), `${readFileSync(path.join(one.home, 'conf/app.conf'), 'utf8')}edited=by hand\n`)
    chmodSync(path.join(one.home, 'data/sid'), 0o644)
    rmSync(path.join(two.srv, `abs-${NAME}.conf`))
    const plan = await cli('plan', cluster.spec, '--hosts', sandbox.state.inventory, '--refresh', '--detailed-exitcode')
    expect(plan.code, describeResult(plan)).toBe(2)
    const drift = plan.stdout.slice(plan.stdout.indexOf('Drift'), plan.stdout.indexOf('\nNodes:'))
    expect(drift).toContain('Drift (on the hosts, not as registered; applying puts the registered files back):\n')
    expect(drift).toMatch(new RegExp(`  ! ${n1} conf/app.conf on \\S+: content differs\\n    --- host/${n1}/conf/app.conf\\n    \\+\\+\\+ registered/${n1}/conf/app.conf\\n(.*\\n)*    -edited=by hand\\n`))
    expect(drift).toMatch(new RegExp(`  ! ${n1} data/sid on \\S+: mode differs \\(mode 0644 on the host, 0600 registered\\)\\n`))
    expect(drift).toMatch(new RegExp(`  ! ${n2} /srv/abs-${NAME}\\.conf on \\S+: missing\\n`))
    const status = await cli('status', NAME, '--drift', '--no-health')
    expect(status.code, describeResult(status)).toBe(0)
    expect(status.stdout).toContain(drift.trimEnd())
    const json = JSON.parse((await cli('status', NAME, '--drift', '--no-health', '--json')).stdout) as {drift: Array<{node: string; dest: string; problem: string}>}
    expect(json.drift.map((d) => `${d.node} ${d.dest} ${d.problem}`)).toEqual([`${n1} conf/app.conf content`, `${n1} data/sid mode`, `${n2} /srv/abs-${NAME}.conf missing`])
    const set = await cli('plan', cluster.dir, '--hosts', sandbox.state.inventory, '--refresh', '--detailed-exitcode')
    expect(set.code, describeResult(set)).toBe(2)
    expect(set.stdout).toContain(`Summary:\n  drift  change (3 drifted files put back)\n`)
    expect(plan.stdout).toMatch(/app: install changed files and reload on 1 node \(batch 1\/2\)\n.*app: install changed files and reload on 1 node \(batch 2\/2\)\n/)
  }, OPERATION_MS)

  it('apply --refresh puts the registered files back (reloading the edited one); then no drift is left', async () => {
    const reloadsBefore = count(markerLines(srvDirs(), NAME), `reload ${n1}`)
    const applied = await cli('apply', cluster.spec, '--hosts', sandbox.state.inventory, '--refresh')
    expect(applied.code, describeResult(applied)).toBe(0)
    const one = homeOf(n1)
    expect(readFileSync(path.join(one.home, 'conf/app.conf'), 'utf8')).not.toContain('edited=by hand')
    expect(statSync(path.join(one.home, 'data/sid')).mode & 0o777).toBe(0o600)
    expect(existsSync(path.join(homeOf(n2).srv, `abs-${NAME}.conf`))).toBe(true)
    expect(count(markerLines(srvDirs(), NAME), `reload ${n1}`)).toBe(reloadsBefore + 1)
    const plan = await cli('plan', cluster.spec, '--hosts', sandbox.state.inventory, '--refresh', '--detailed-exitcode')
    expect(plan.code, describeResult(plan)).toBe(0)
    expect(plan.stdout).toContain('Drift: none')
    expect((await cli('destroy', NAME, '--yes')).code).toBe(0)
  }, OPERATION_MS)
})
