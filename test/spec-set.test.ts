// A repository of specs planned and applied as one set (issue 17): link order, a cycle, destroy candidates and
// --prune, one summary and --detailed-exitcode over the whole set; on sandbox hosts with a real embedded registry.
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {isSpecSet, linkOrder} from '../src/workspace/spec-set.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'
import {assertCliBuilt, describeResult, embeddedRegistry, shoal, type CliResult, type Registry} from './support/shoal-cli.js'

describe('linkOrder', () => {
  it('puts every cluster after the clusters of the set it links to; links outside the set do not order', () => {
    expect(linkOrder([{name: 'top', links: ['mid']}, {name: 'mid', links: ['base', 'elsewhere']}, {name: 'base', links: []}, {name: 'alone', links: []}]))
      .toEqual(['alone', 'base', 'mid', 'top'])
  })

  it('names a cycle, a self link included', () => {
    expect(() => linkOrder([{name: 'x', links: ['y']}, {name: 'y', links: ['z']}, {name: 'z', links: ['x']}])).toThrow('the specs link in a cycle: x → y → z → x')
    expect(() => linkOrder([{name: 'x', links: ['x']}])).toThrow('the specs link in a cycle: x → x')
  })

  it('a set is a directory or several paths; one file is one spec', () => {
    expect(isSpecSet(['specs'])).toBe(true)
    expect(isSpecSet(['specs/haproxy.yaml', 'specs/zookeeper.yaml'])).toBe(true)
    expect(isSpecSet(['specs/haproxy.yaml'])).toBe(false)
  })
})

const OPERATION_MS = 180_000
let sandbox: TestSandbox
let registry: Registry
let work: string

beforeAll(async () => {
  assertCliBuilt()
  sandbox = await startSandbox(3)
  registry = embeddedRegistry()
  work = mkdtempSync(path.join(tmpdir(), 'shoal-spec-set-'))
})
afterAll(async () => {
  registry?.dispose()
  await sandbox?.stop()
  if (work) rmSync(work, {recursive: true, force: true})
})

/** A one-node cluster linking to `links`; its start marks the order clusters were started in on the host. */
function writeSpec(dir: string, name: string, links: string[], count = 1): void {
  mkdirSync(dir, {recursive: true})
  writeFileSync(path.join(dir, `${name}.yaml`), `apiVersion: shoal/v1
kind: Cluster
name: ${name}
links: {${links.map((l) => `${l}: ${l}`).join(', ')}}
roles:
  app:
    image: debian-12
    cpu: 1
    memory: 64Mi
    disk: 64Mi
    count: ${count}
    services:
      start: {cmd: 'mkdir -p /srv/markers && echo ${name} >> /srv/markers/spec-set.log', timeout: 30s}
`)
}

const cli = (...args: string[]): Promise<CliResult> => shoal([...args, ...registry.flags], {limitMs: OPERATION_MS})
function expectExit(result: CliResult, code: number): void {
  expect(result.code, describeResult(result)).toBe(code)
}

describe('plan and apply a directory of specs', () => {
  let repo: string

  it('plan: the base is created, the clusters linking to it wait for it, a registered cluster not in the set is a destroy candidate', async () => {
    repo = path.join(work, 'repo')
    writeSpec(repo, 'top', ['mid'])
    writeSpec(path.join(repo, 'nested'), 'mid', ['base'])
    writeSpec(repo, 'base', [])
    writeSpec(path.join(work, 'other'), 'old', [])
    expectExit(await cli('apply', path.join(work, 'other', 'old.yaml'), '--hosts', sandbox.state.inventory), 0)

    const plan = await cli('plan', repo, '--hosts', sandbox.state.inventory, '--detailed-exitcode')
    expectExit(plan, 2)
    const summary = plan.stdout.slice(plan.stdout.indexOf('Summary:\n'))
    expect(summary).toBe([
      'Summary:',
      '  base  create (+1 node)',
      '  mid   create or change once base is registered (apply orders it after)',
      '  top   create or change once mid is registered (apply orders it after)',
      '  old   destroy candidate: registered, not in the specs (--prune destroys it)',
      '4 clusters: 1 to create, 0 to change, 0 unchanged, 2 planned once the clusters they link to are registered, 1 destroy candidate.',
      '',
    ].join('\n'))
    expect(plan.stdout).toContain(`=== base (${path.join(repo, 'base.yaml')})\nPlan: apply cluster base`)
    const markdown = await cli('plan', repo, '--hosts', sandbox.state.inventory, '--format', 'markdown')
    expectExit(markdown, 0)
    expect(markdown.stdout).toContain('## shoal plan: 4 clusters: 1 to create, 0 to change, 0 unchanged, 2 planned once the clusters they link to are registered, 1 destroy candidate\n')
    expect(markdown.stdout).toContain('| `base` | create | +1 | — | — |\n| `mid` | after-links: planned once base is registered | — | — | — |\n')
    expect(markdown.stdout).toContain('| `old` | destroy-candidate: registered, not in the specs (--prune destroys it) | — | — | — |\n')
  }, OPERATION_MS)

  it('apply: in link order, each as apply SPEC does it; the candidate is listed, not destroyed; planned again, nothing changes', async () => {
    const applied = await cli('apply', repo, '--hosts', sandbox.state.inventory)
    expectExit(applied, 0)
    expect([...applied.stdout.matchAll(/^=== (\S+)$/gm)].map((m) => m[1])).toEqual(['base', 'mid', 'top'])
    expect(applied.stdout).toContain('Destroy candidates (registered, not in the specs; apply with --prune destroys them): old')
    const started = sandbox.state.hosts.flatMap((h) => {
      try {
        return readFileSync(path.join(h.dir, 'srv', 'markers', 'spec-set.log'), 'utf8').split('\n').filter(Boolean)
      } catch {
        return []
      }
    })
    expect(started.sort()).toEqual(['base', 'mid', 'old', 'top'])

    const again = await cli('plan', repo, '--hosts', sandbox.state.inventory, '--detailed-exitcode')
    expectExit(again, 0)
    expect(again.stdout).toContain('4 clusters: 0 to create, 0 to change, 3 unchanged, 1 destroy candidate.')
    const json = JSON.parse((await cli('plan', repo, '--hosts', sandbox.state.inventory, '--json')).stdout) as {changes: boolean; clusters: Array<{cluster: string; action: string}>}
    expect(json.changes).toBe(false)
    expect(json.clusters.map((c) => `${c.cluster} ${c.action}`)).toEqual(['base no-op', 'mid no-op', 'top no-op', 'old destroy-candidate'])
  }, OPERATION_MS)

  it('plan --out saves the set; apply of the file applies exactly those plans, and refuses them once stale', async () => {
    writeSpec(path.join(repo, 'nested'), 'mid', ['base'], 2)
    const file = path.join(work, 'set.plan')
    // mid changes and links to base, which does not change: savable. With base changing too it is not.
    writeSpec(repo, 'base', [], 2)
    const refused = await cli('plan', repo, '--hosts', sandbox.state.inventory, '--out', file)
    expectExit(refused, 1)
    expect(refused.stderr).toContain('the set cannot be saved as one plan: mid changes and links to base, which changes first')
    writeSpec(repo, 'base', [], 1)
    const planned = await cli('plan', repo, '--hosts', sandbox.state.inventory, '--out', file)
    expectExit(planned, 0)
    expect(planned.stdout).toContain(`Saved the plans to ${file}; apply them with: shoal apply ${file}`)
    const applied = await cli('apply', file, '--hosts', sandbox.state.inventory)
    expectExit(applied, 0)
    expect([...applied.stdout.matchAll(/^=== (\S+)$/gm)].map((m) => m[1])).toEqual(['mid'])
    expectExit(await cli('plan', repo, '--hosts', sandbox.state.inventory, '--detailed-exitcode'), 0)

    writeSpec(repo, 'top', ['mid'], 2)
    expectExit(await cli('plan', repo, '--hosts', sandbox.state.inventory, '--out', file), 0)
    expectExit(await cli('scale', 'top', '--role', 'app', '--count', '3', '--hosts', sandbox.state.inventory), 0)
    const stale = await cli('apply', file, '--hosts', sandbox.state.inventory)
    expectExit(stale, 1)
    expect(stale.stderr).toContain('the plan is stale: top changed since the plans were made; nothing was applied; plan again')
    writeSpec(repo, 'top', ['mid'], 1)
    writeSpec(path.join(repo, 'nested'), 'mid', ['base'], 1)
    expectExit(await cli('apply', repo, '--hosts', sandbox.state.inventory), 0)
  }, OPERATION_MS)

  it('a cycle is refused before anything is planned, naming it', async () => {
    const cyclic = path.join(work, 'cyclic')
    writeSpec(cyclic, 'x', ['y'])
    writeSpec(cyclic, 'y', ['x'])
    const plan = await cli('plan', cyclic, '--hosts', sandbox.state.inventory)
    expectExit(plan, 1)
    expect(plan.stderr).toContain('the specs link in a cycle: x → y → x')
  }, OPERATION_MS)

  it('--prune refuses to destroy a cluster the set links to; otherwise destroys the candidates after the others', async () => {
    const linking = path.join(work, 'linking')
    writeSpec(linking, 'uses-old', ['old'])
    const refused = await cli('apply', repo, linking, '--hosts', sandbox.state.inventory, '--prune')
    expectExit(refused, 1)
    expect(refused.stderr).toContain('--prune would destroy clusters the specs still link to (uses-old links to old); nothing was applied')

    const planned = await cli('plan', repo, linking, '--hosts', sandbox.state.inventory, '--prune', '--out', path.join(work, 'pruned.plan'))
    expectExit(planned, 1)
    expect(planned.stderr).toContain('the set cannot be saved as one plan: old cannot be planned')
    const shown = await cli('plan', repo, linking, '--hosts', sandbox.state.inventory, '--prune')
    expect(shown.stdout).toMatch(/ {2}old +cannot be planned: --prune would destroy it, and uses-old of the specs links to it\n/)

    const pruned = await cli('apply', repo, '--hosts', sandbox.state.inventory, '--prune')
    expectExit(pruned, 0)
    expect([...pruned.stdout.matchAll(/^=== (\S+)$/gm)].map((m) => m[1])).toEqual(['base', 'mid', 'top', 'old'])
    const listed = JSON.parse((await cli('get', '--json')).stdout) as {clusters: string[]}
    expect(listed.clusters.sort()).toEqual(['base', 'mid', 'top'])
    for (const name of ['top', 'mid', 'base']) expectExit(await cli('destroy', name, '--yes'), 0)
  }, OPERATION_MS)
})
