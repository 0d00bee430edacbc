// A role's new nodes go through place files → init → start node by node (lifecycle/execute.ts pipelineFrom):
// which steps are walked that way, and on real sandbox hosts that a node starts while another still inits, that a
// failure stops every node before its next step (those running finish), and that resume finishes without re-running
// what is done.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {pipelineFrom} from '../src/lifecycle/execute.js'
import type {Step} from '../src/plan/steps.js'
import {eventually} from './support/children.js'
import {count, markerLines, controlFile} from './support/lifecycle-cluster.js'
import {registryKeys} from './support/real-services.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, registeredNodes, shoal, spawnShoal, type CliResult, type Registry} from './support/shoal-cli.js'

const step = (id: string, extra: Partial<Step> = {}): Step => ({id, kind: 'run', title: id, role: 'app', nodes: ['a', 'b'], ...extra})
const CREATE: Step[] = [
  step('01-commit', {kind: 'commit', role: undefined, nodes: []}),
  step('02-install-app', {kind: 'install', files: 'interim', reload: false}),
  step('03-run-init-app', {service: 'init'}),
  step('04-run-start-app', {service: 'start'}),
  step('05-health-app', {kind: 'health'}),
  step('06-commit', {kind: 'commit', role: undefined, nodes: []}),
]
const ids = (steps: Step[]): string[] => steps.map((s) => s.id)

describe('pipelineFrom: the steps walked node by node', () => {
  it('a new role: place files, init and start; health stays a barrier (its start_period counts from every start)', () => {
    expect(ids(pipelineFrom(CREATE, 1, new Set(), false))).toEqual(['02-install-app', '03-run-init-app', '04-run-start-app'])
    expect(pipelineFrom(CREATE, 0, new Set(), false)).toEqual([])
  })

  it('from a step part-way (resume) and up to a step recorded done', () => {
    expect(ids(pipelineFrom(CREATE, 2, new Set(), false))).toEqual(['03-run-init-app', '04-run-start-app'])
    expect(ids(pipelineFrom(CREATE, 1, new Set(['04-run-start-app']), false))).toEqual(['02-install-app', '03-run-init-app'])
  })

  it('not with agents (the install waits for every agent), batches, reloads, other services, other nodes or roles', () => {
    expect(pipelineFrom(CREATE, 1, new Set(), true)).toEqual([])
    expect(ids(pipelineFrom(CREATE, 2, new Set(), true))).toEqual(['03-run-init-app', '04-run-start-app'])
    const variants: Array<[string, Partial<Step>]> = [
      ['a canary batch', {batch: {index: 1, of: 2, canary: true}}],
      ['a service other than init and start', {service: 'scale_out'}],
      ['an action', {action: 'hello'}],
      ['other nodes', {nodes: ['a']}],
      ['another role', {role: 'db'}],
    ]
    for (const [what, extra] of variants) {
      const steps = [CREATE[1]!, CREATE[2]!, {...CREATE[3]!, ...extra}]
      expect(ids(pipelineFrom(steps, 0, new Set(), false)), what).toEqual(['02-install-app', '03-run-init-app'])
    }
    const reloading = [{...CREATE[1]!, reload: true}, CREATE[2]!]
    expect(pipelineFrom(reloading, 0, new Set(), false)).toEqual([])
  })
})

const HOSTS = 3
const OPERATION_MS = 120_000
let sandbox: TestSandbox
let registry: Registry
let dir: string

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(HOSTS)
  registry = embeddedRegistry()
  dir = mkdtempSync(path.join(tmpdir(), 'shoal-pipeline-'))
})
afterAll(async () => {
  registry?.dispose()
  await sandbox?.stop()
  if (dir) rmSync(dir, {recursive: true, force: true})
})

const srvDirs = (): string[] => sandbox.state.hosts.map((h) => path.join(h.dir, 'srv'))
const control = (name: string, present: boolean): void => controlFile(srvDirs(), name, present)

/** init waits while /srv/hold-init-<node> exists and fails while /srv/fail-init-<node> does; each script marks itself. */
function writeSpec(name: string): string {
  const mark = (what: string): string => `mkdir -p /srv/markers && echo "${what} $SHOAL_NODE_ID" >> /srv/markers/$SHOAL_CLUSTER.log`
  const file = path.join(dir, `${name}.yaml`)
  writeFileSync(file, `apiVersion: shoal/v1
kind: Cluster
name: ${name}
roles:
  app:
    image: debian-12
    cpu: 1
    memory: 256Mi
    disk: 1Gi
    count: 3
    services:
      init:
        cmd: '${mark('init')}; while [ -f /srv/hold-init-$SHOAL_NODE_ID ]; do sleep 0.1; done; if [ -f /srv/fail-init-$SHOAL_NODE_ID ]; then echo "init refused on $SHOAL_NODE_ID" >&2; exit 4; fi; ${mark('init-done')}'
        timeout: 1m
      start:
        cmd: '${mark('start')}; touch started'
        timeout: 1m
    health_check: {cmd: test -f started, interval: 100ms, timeout: 5s, start_period: 30s}
`)
  return file
}

const cli = (...args: string[]): Promise<CliResult> => shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})

describe('a new role node by node on sandbox hosts', () => {
  const name = 'pipe'
  const [n1, n2, n3] = [1, 2, 3].map((sid) => `${name}-app-${sid}`) as [string, string, string]
  const markers = (): string[] => markerLines(srvDirs(), name)

  it('a node starts while another still inits; a failed init stops the rest before their next step', async () => {
    control(`hold-init-${n1}`, true)
    control(`hold-init-${n3}`, true)
    control(`fail-init-${n3}`, true)
    const create = spawnShoal(['create', writeSpec(name), '--hosts', sandbox.state.inventory, ...registry.flags], {limitMs: OPERATION_MS})
    try {
      // With every init before any start, this would never happen while node 1 is held in init.
      await eventually(() => `${n2} started while ${n1} is held in init (markers: ${markers().join(', ')})`, async () => markers().includes(`start ${n2}`), 60_000, 100)
      expect(markers()).not.toContain(`init-done ${n1}`)
      // Node 3's init fails; node 1 is still in its init, which finishes (not abandoned) and goes no further. shoal
      // keeps a failed script's log before it stops the other nodes: node 1 is let go once that log is registered.
      control(`hold-init-${n3}`, false)
      // The log's key (logs/<operation>/<step>/<node>), not the node's mark (steps/<step>/<node>), written as its init began.
      const failedLog = new RegExp(`/logs/[^/]+/\\d+-run-init-app/${n3}$`)
      await eventually(() => `${n3}'s failed init logged in the registry`, async () => (await registryKeys(registry)).some((k) => failedLog.test(k)), 60_000, 100)
      control(`hold-init-${n1}`, false)
    } finally {
      control(`hold-init-${n1}`, false)
      control(`hold-init-${n3}`, false)
    }
    const failed = await create.exited
    expect(failed.code, describeResult(failed)).toBe(1)
    expect(failed.stderr).toMatch(new RegExp(`step \\d+-run-init-app \\(app: run init on 3 nodes\\) failed on ${n3} .*exited 4`))
    expect(failed.stderr).toContain(`init refused on ${n3}`)
    const lines = markers()
    expect(lines).toContain(`init-done ${n1}`)
    expect(lines).not.toContain(`start ${n1}`)
    expect(lines).not.toContain(`start ${n3}`)
    expect(count(lines, `start ${n2}`)).toBe(1)
  }, OPERATION_MS)

  it('resume after the fix: node 3 inits again, nodes 1 and 2 do not; every node starts once and is active', async () => {
    control(`fail-init-${n3}`, false)
    const resumed = await cli('resume', name)
    expect(resumed.code, describeResult(resumed)).toBe(0)
    const lines = markers()
    expect([n1, n2, n3].map((n) => count(lines, `init ${n}`))).toEqual([1, 1, 2])
    expect([n1, n2, n3].map((n) => count(lines, `start ${n}`))).toEqual([1, 1, 1])
    expect((await registeredNodes(registry, name, 'app')).map((n) => n.state)).toEqual(['active', 'active', 'active'])
    expect((await cli('destroy', name, '--yes')).code).toBe(0)
  }, OPERATION_MS)
})
