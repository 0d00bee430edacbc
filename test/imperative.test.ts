// Imperative changes named (issue 17): when the registered cluster differs from the spec being applied because of
// `shoal scale` or `--set`, the plan says so and what it does about it; `shoal get CLUSTER --spec` prints the spec as
// registered (counts as they stand) so a repository can be brought in line. Real operations on sandbox hosts.
import {readFileSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {imperativeLine} from '../src/plan/show.js'
import {writeLifecycleCluster, type LifecycleCluster} from './support/lifecycle-cluster.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, shoal, type CliResult, type Registry} from './support/shoal-cli.js'

const OPERATION_MS = 120_000
let sandbox: TestSandbox
let registry: Registry
let cluster: LifecycleCluster
const NAME = 'imp'

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(3)
  registry = embeddedRegistry()
  cluster = writeLifecycleCluster({name: NAME, count: 3})
})
afterAll(async () => {
  registry?.dispose()
  await sandbox?.stop()
  cluster?.dispose()
})

const cli = (...args: string[]): Promise<CliResult> => shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
async function ok(...args: string[]): Promise<CliResult> {
  const result = await cli(...args)
  expect(result.code, describeResult(result)).toBe(0)
  return result
}

/** Keys sorted at every level, so two specs compare by content, not by the order their keys were written in. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted)
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted((value as Record<string, unknown>)[k])]))
}

describe('imperative changes named in the plan', () => {
  it('each kind of line says what the command did and what applying the spec does', () => {
    expect(imperativeLine({kind: 'count', role: 'web', spec: 2, registered: 4, by: 'shoal scale web (count 4)', at: '2026-12-07T10:00:00.000Z'}, 'lb'))
      .toBe('role web: count 2 in the spec, 4 registered by `shoal scale web (count 4)` at 2026-12-07T10:00:00.000Z: this plan scales in by 2 (`shoal get lb --spec` prints the registered spec)')
    expect(imperativeLine({kind: 'count', role: 'web', spec: 3, registered: 1}, 'lb')).toBe('role web: count 3 in the spec, 1 registered by an earlier command: this plan scales out by 2 (`shoal get lb --spec` prints the registered spec)')
    expect(imperativeLine({kind: 'env', name: 'port', source: '--set'}, 'lb')).toBe('port: the value given by --set stays registered (applying the spec keeps it; --unset port returns to the spec)')
  })

  it('after shoal scale: the plan of the spec names the scale and the scale-out it makes; get --spec prints the registered counts', async () => {
    await ok('create', cluster.spec, '--hosts', sandbox.state.inventory)
    await ok('scale', NAME, '--role', 'app', '--count', '2')
    const plan = await ok('plan', cluster.spec, '--hosts', sandbox.state.inventory)
    expect(plan.stdout).toMatch(/Registered by commands, not by this spec:\n {2}! role app: count 3 in the spec, 2 registered by `shoal scale app \(count 2\)` at \d{4}-\d\d-\d\dT[\d:.]+Z: this plan scales out by 1 \(`shoal get imp --spec` prints the registered spec\)\n/)
    const json = JSON.parse((await ok('plan', cluster.spec, '--hosts', sandbox.state.inventory, '--json')).stdout) as {plan: {imperative?: unknown[]}}
    expect(json.plan.imperative).toEqual([expect.objectContaining({kind: 'count', role: 'app', spec: 3, registered: 2, by: 'shoal scale app (count 2)'})])

    const printed = (await ok('get', NAME, '--spec')).stdout
    expect(printed.split('\n')[0]).toMatch(/^# The spec cluster imp is registered with \(revision \d+\), counts as they stand\.$/)
    const registered = parse(printed) as {roles: {app: {count: number}}}
    expect(registered.roles.app.count).toBe(2)
    const written = parse(readFileSync(cluster.spec, 'utf8')) as {roles: {app: {count: number}}}
    written.roles.app.count = 2
    expect(sorted(registered)).toEqual(sorted(written))
    expect(Object.keys(registered).slice(0, 3)).toEqual(['apiVersion', 'kind', 'name'])
  }, OPERATION_MS)

  it('after apply --set: the value stays registered and the plan of the spec says so; the count note is gone once applied', async () => {
    await ok('apply', cluster.spec, '--hosts', sandbox.state.inventory, '--set', 'port=7001')
    const plan = await ok('plan', cluster.spec, '--hosts', sandbox.state.inventory)
    expect(plan.stdout).toBe(`Cluster ${NAME} is up to date (revision ${/revision (\d+)/.exec(plan.stdout)![1]}): no changes.\n\nRegistered by commands, not by this spec:\n  ! port: the value given by --set stays registered (applying the spec keeps it; --unset port returns to the spec)\n`)
    const unset = await ok('plan', cluster.spec, '--hosts', sandbox.state.inventory, '--unset', 'port')
    expect(unset.stdout).not.toContain('Registered by commands')
    await ok('destroy', NAME, '--yes')
  }, OPERATION_MS)
})
