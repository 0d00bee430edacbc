// The planner's rules, one fact per test: identities, scaling, placement, links, templates, secrets, steps, no-op plans.
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {allocate} from '../src/plan/ids.js'
import {hasChanges, planCluster, redactPlan, renderPlan, type PlanInput} from '../src/plan/index.js'
import type {ClusterState, Operation, Plan} from '../src/plan/types.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

const create: Operation = {kind: 'create'}

function plan(overrides: Partial<PlanInput> = {}): Plan {
  return planCluster({spec: zkSpec(), templates: zkTemplates(), inventory: hosts(9), operation: create, ...overrides})
}

/** Plan, apply, and plan the next operation against the result, as a registry would. */
function then(previous: Plan, operation: Operation, overrides: Partial<PlanInput> = {}): Plan {
  const current = applied(previous)
  return plan({spec: current.spec!, current, operation, ...overrides})
}

const ok = (p: Plan): Plan => {
  expect(p.errors).toEqual([])
  return p
}
const codes = (p: Plan): string[] => p.errors.map((e) => e.code)
const nodesOf = (p: Plan, change?: string) => p.nodes.filter((n) => !change || n.change === change)

describe('identities', () => {
  it('gives new nodes sids from server_id.start upward and ids <cluster>-<role>-<n>', () => {
    const p = ok(plan({spec: zkSpec({server_id: {start: 10}})}))
    expect(p.nodes.map((n) => [n.node_id, n.sid])).toEqual([['zk-main-zk-1', 10], ['zk-main-zk-2', 11], ['zk-main-zk-3', 12]])
  })

  it('makes exactly the lowest sid the bootstrap node', () => {
    expect(ok(plan()).nodes.map((n) => n.bootstrap)).toEqual([true, false, false])
  })

  it('never reuses a sid or node id below the upper bound', () => {
    const shrunk = ok(then(ok(plan()), {kind: 'scale', role: 'zk', count: 2}))
    const grown = ok(then(shrunk, {kind: 'scale', role: 'zk', add: 1}))
    expect(nodesOf(grown, 'create').map((n) => [n.node_id, n.sid])).toEqual([['zk-main-zk-4', 4]])
  })

  it('reuses the lowest released sid once the bound is reached, with a fresh node id', () => {
    const full = ok(plan({spec: zkSpec({server_id: {upper_bound: 3}})}))
    const removed = ok(then(full, {kind: 'scale', role: 'zk', remove: ['zk-main-zk-2']}))
    const back = ok(then(removed, {kind: 'scale', role: 'zk', add: 1}))
    expect(nodesOf(back, 'create').map((n) => [n.node_id, n.sid])).toEqual([['zk-main-zk-4', 2]])
  })

  it('does not hand out a released sid whose node is still present', () => {
    const allocation = allocate('c', 'r', {sidHigh: 3, nodeSeq: 3, released: [1, 2]}, {start: 1, upperBound: 3}, new Set([1, 3]), 1)
    expect(allocation?.nodes).toEqual([{nodeId: 'c-r-4', sid: 2}])
  })

  it('fails with sid-exhausted when the bound is reached and nothing was released', () => {
    const full = ok(plan({spec: zkSpec({server_id: {upper_bound: 3}})}))
    const p = then(full, {kind: 'scale', role: 'zk', add: 1})
    expect(codes(p)).toEqual(['sid-exhausted'])
    expect(p.errors[0]!.message).toContain('upper_bound')
  })

  it('moves the bootstrap flag to the lowest remaining sid when the bootstrap node leaves', () => {
    const p = ok(then(ok(plan()), {kind: 'scale', role: 'zk', remove: ['zk-main-zk-1']}))
    expect(p.desired!.nodes.map((n) => [n.node_id, n.bootstrap])).toEqual([['zk-main-zk-2', true], ['zk-main-zk-3', false]])
  })
})

describe('scaling', () => {
  it('removes the highest sids first when shrinking by count', () => {
    const p = ok(then(ok(plan({spec: zkSpec({count: 5})})), {kind: 'scale', role: 'zk', count: 3}))
    expect(nodesOf(p, 'remove').map((n) => n.node_id)).toEqual(['zk-main-zk-4', 'zk-main-zk-5'])
    expect(nodesOf(p, 'remove')[0]!.reason).toContain('scale in zk 5 → 3')
  })

  it('removes exactly the named nodes', () => {
    const p = ok(then(ok(plan()), {kind: 'scale', role: 'zk', remove: ['zk-main-zk-2']}))
    expect(nodesOf(p, 'remove').map((n) => [n.node_id, n.reason])).toEqual([['zk-main-zk-2', 'removal requested']])
  })

  it('records the new count in the registered spec', () => {
    const p = ok(then(ok(plan()), {kind: 'scale', role: 'zk', add: 2}))
    expect(p.desired!.spec!.roles.zk!.count).toBe(5)
  })

  it('converges a registered cluster to the spec on create (apply)', () => {
    const p = ok(then(ok(plan()), create, {spec: zkSpec({count: 4})}))
    expect(nodesOf(p, 'create').map((n) => n.node_id)).toEqual(['zk-main-zk-4'])
  })

  it('refuses counts outside scale bounds', () => {
    const p = then(ok(plan({spec: zkSpec({scale: {min: 1, max: 7}})})), {kind: 'scale', role: 'zk', count: 9})
    expect(codes(p)).toEqual(['scale-bounds'])
    expect(p.errors[0]!.message).toBe('role zk: count 9 is outside its scale bounds [1, 7] (roles.zk.scale)')
  })

  it('needs exactly one of count, add and remove', () => {
    expect(codes(then(ok(plan()), {kind: 'scale', role: 'zk', count: 4, add: 1}))).toEqual(['scale-args'])
  })

  it('refuses to remove a node that is not in the role', () => {
    expect(codes(then(ok(plan()), {kind: 'scale', role: 'zk', remove: ['zk-main-zk-9']}))).toEqual(['unknown-node'])
  })

  it('refuses an unknown role', () => {
    expect(codes(then(ok(plan()), {kind: 'scale', role: 'kafka', add: 1}))).toEqual(['unknown-role'])
  })

  it('refuses to scale or destroy a cluster that is not registered', () => {
    expect(codes(plan({operation: {kind: 'scale', role: 'zk', add: 1}}))).toEqual(['not-registered'])
    expect(codes(plan({operation: {kind: 'destroy'}}))).toEqual(['not-registered'])
  })

  it('plans from an unfinished operation instead of refusing it (fix forward: see plan-fix-forward.test.ts)', () => {
    const current: ClusterState = {...applied(ok(plan())), adding: ['zk-main-zk-3']}
    expect(codes(plan({current, operation: {kind: 'scale', role: 'zk', add: 1}}))).toEqual([])
  })

  it('refuses a state registered for another cluster', () => {
    const current = applied(ok(plan()))
    expect(codes(plan({spec: {...zkSpec(), name: 'other'}, current}))).toEqual(['cluster-mismatch'])
  })
})

describe('placement', () => {
  it('counts every node on a host against its capacity, other roles and other clusters included', () => {
    const spec = zkSpec({count: 2, placement: {max_per_host: 4}})
    spec.roles.app = {image: 'app', cpu: 1, memory: '1Gi', disk: '1Gi', count: 2, placement: {max_per_host: 4}}
    const p = ok(plan({spec, inventory: hosts(2, {cpu: 3}), otherUsage: {h1: {cpu: 1, memory: 0, disk: 0}}}))
    const perHost = (h: string) => p.nodes.filter((n) => n.host === h).length
    expect([perHost('h1'), perHost('h2')]).toEqual([2, 2])
  })

  it('puts a new node on the host with the most free capacity', () => {
    const p = ok(plan({spec: zkSpec({count: 1}), inventory: hosts(3, {cpu: 4}), otherUsage: {h1: {cpu: 2, memory: 0, disk: 0}, h2: {cpu: 1, memory: 0, disk: 0}}}))
    expect(p.nodes[0]!.host).toBe('h3')
  })

  it('keeps existing nodes on their hosts', () => {
    const first = ok(plan())
    const p = ok(then(first, {kind: 'scale', role: 'zk', add: 1}, {otherUsage: {h1: {cpu: 7, memory: 0, disk: 0}}}))
    expect(nodesOf(p, 'keep').map((n) => n.host)).toEqual(first.nodes.map((n) => n.host))
  })

  it('places only on hosts carrying the role labels and names them when short', () => {
    const inventory = {hosts: [...hosts(2, undefined, {disk: 'ssd'}).hosts, {name: 'x1', address: '10.9.9.9'}]}
    const p = plan({spec: zkSpec({placement: {labels: {disk: 'ssd'}}}), inventory})
    expect(codes(p)).toEqual(['placement-failed'])
    expect(p.errors[0]!.message).toContain('role zk: 1 of 3 new nodes cannot be placed')
    expect(p.errors[0]!.message).toContain('1 host lack labels disk=ssd')
    expect(p.errors[0]!.details).toEqual({short: 1, labels: 1, max_per_host: 2})
  })

  it('honours max_per_host', () => {
    const p = plan({spec: zkSpec({count: 5, placement: {max_per_host: 2}}), inventory: hosts(2)})
    expect(p.errors[0]!.message).toContain('role zk: 1 of 5 new nodes cannot be placed (out of max_per_host')
  })

  it('names the exhausted resource', () => {
    const p = plan({spec: zkSpec({memory: '20Gi'}), inventory: hosts(3, {memory: '16Gi'})})
    expect(p.errors[0]!.details).toEqual({short: 3, memory: 3})
    expect(p.errors[0]!.message).toContain('3 hosts short of memory')
  })

  it('reports an empty inventory', () => {
    expect(plan({inventory: {hosts: []}}).errors[0]!.message).toContain('the inventory has no hosts')
  })

  it('treats capacity left out as unlimited', () => {
    expect(ok(plan({spec: zkSpec({count: 3, cpu: 64, placement: {max_per_host: 3}}), inventory: hosts(1, {})})).nodes.every((n) => n.host === 'h1')).toBe(true)
  })
})

describe('links', () => {
  it('fails with link-missing when a linked cluster is not registered', () => {
    const p = plan({spec: zkSpec({}, {links: {zookeeper: 'zk-other'}})})
    expect(codes(p)).toEqual(['link-missing'])
    expect(p.errors[0]!.message).toContain('cluster zk-other is not registered')
  })

  it('renders the linked cluster\'s hosts', () => {
    const zk = applied(ok(plan()))
    const spec = zkSpec({count: 1, files: [{template: 'kafka.liquid', dest: 'conf/server.properties'}]}, {name: 'kafka', links: {zookeeper: 'zk-main'}})
    const templates = new Map([['kafka.liquid', 'zookeeper.connect={% for h in links.zookeeper.hosts.zk %}{{ h.ip }}:2181{% unless forloop.last %},{% endunless %}{% endfor %}\n']])
    const p = ok(plan({spec, templates, linked: {'zk-main': zk}}))
    expect(p.nodes[0]!.files[0]!.content).toBe('zookeeper.connect=10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181\n')
  })
})

describe('templates', () => {
  it('names node, template and line:col when a template fails to render', () => {
    const templates = new Map([...zkTemplates(), ['zk/myid.liquid', '{{ self.sid }}\n{{ self.nope }}\n']])
    const p = plan({templates})
    expect(p.errors[0]).toMatchObject({code: 'template-render', node: 'zk-main-zk-1', template: 'zk/myid.liquid', line: 2, col: 4})
    expect(p.errors[0]!.message).toBe('zk/myid.liquid:2:4: rendering for node zk-main-zk-1: undefined variable: self.nope')
  })

  it('reports parse errors and missing templates', () => {
    expect(plan({templates: new Map([...zkTemplates(), ['zk/myid.liquid', '{% if %}']])}).errors[0]).toMatchObject({code: 'template-parse', template: 'zk/myid.liquid', line: 1})
    expect(codes(plan({templates: new Map([['zk/zoo.cfg.liquid', '']])}))).toEqual(['template-missing'])
  })

  it('gives every declared role a key in hosts, adding_hosts and deleting_hosts', () => {
    const spec = zkSpec({count: 1, files: [{template: 't', dest: 'roles'}]})
    spec.roles.spare = {image: 'x', cpu: 1, memory: '1Gi', disk: '1Gi', count: 0}
    const t = '{{ hosts.spare | size }} {{ adding_hosts.spare | size }} {{ deleting_hosts.zk | size }}'
    expect(ok(plan({spec, templates: new Map([['t', t]])})).nodes[0]!.files[0]!.content).toBe('0 0 0')
  })

  it('places interim files while nodes join and the final ones after', () => {
    const spec = zkSpec({files: [{template: 't', dest: 'joining', reload: 'bin/reload'}]})
    const templates = new Map([['t', '{% for h in adding_hosts.zk %}{{ h.node_id }} {% endfor %}']])
    const p = ok(then(ok(plan({spec, templates})), {kind: 'scale', role: 'zk', add: 1}, {templates}))
    expect(p.nodes[0]!.interim![0]!.content).toBe('zk-main-zk-4 ')
    expect(p.nodes[0]!.files[0]!.content).toBe('')
    expect(p.steps.at(-1)).toMatchObject({kind: 'install', files: 'final', reload: true})
  })

  it('resolves relative destinations under the node home and keeps absolute ones', () => {
    const spec = zkSpec({count: 1, files: [{template: 't', dest: 'conf/a'}, {template: 't', dest: '/etc/b', mode: '0600', owner: 'zk'}]})
    const files = ok(plan({spec, templates: new Map([['t', 'x']])})).nodes[0]!.files
    expect(files.map((f) => [f.path, f.mode, f.owner])).toEqual([['/srv/shoal/zk-main/zk-main-zk-1/conf/a', '0644', undefined], ['/etc/b', '0600', 'zk']])
  })
})

describe('secrets', () => {
  const spec = zkSpec({count: 1, files: [{template: 't', dest: 'pw'}]}, {env: {password: {type: 'string', default: 's3cr3t-pw', secret: true}}})
  const templates = new Map([['t', 'password={{ env.password }}\n']])

  it('stores secret values marked in the tree', () => {
    const tree = Object.fromEntries(ok(plan({spec, templates})).tree)
    expect(tree['clusters/zk-main/env/password']).toBe('s3cr3t-pw')
    expect(tree['clusters/zk-main/env-secret/password']).toBe('true')
  })

  it('redacts them from the readable plan and from redactPlan', () => {
    const p = ok(plan({spec, templates}))
    // The file's template reads the secret: the diff says it is created and shows none of it.
    expect(renderPlan(p)).toContain('+++ planned/zk-main-zk-1/pw\n@@ created; content hidden: the template reads a secret @@')
    expect(renderPlan(p)).not.toContain('password=')
    expect(renderPlan(p)).not.toContain('s3cr3t-pw')
    expect(JSON.stringify(redactPlan(p))).not.toContain('s3cr3t-pw')
  })
})

describe('steps', () => {
  const spec = zkSpec({count: 5}, {update: {canaries: 1, max_in_flight: '50%'}})

  it('orders a create: register, files, init, start of every node before health (a quorum forms), mark active', () => {
    const p = ok(plan({spec}))
    expect(p.steps.map((s) => `${s.kind}${s.service ? `:${s.service}` : ''}:${s.nodes.length}`)).toEqual([
      'commit:0', 'install:5', 'run:init:5', 'run:start:5', 'health:5', 'commit:0',
    ])
    expect(p.steps.some((s) => s.batch?.canary)).toBe(false)
    expect(new Set(p.steps.map((s) => s.id)).size).toBe(p.steps.length)
  })

  it('starts the joiners of a scale out canary first, with health after each batch (the update policy)', () => {
    const p = ok(then(ok(plan({spec})), {kind: 'scale', role: 'zk', add: 4}))
    expect(p.steps.filter((s) => s.service === 'start' || s.kind === 'health').map((s) => `${s.kind}:${s.nodes.length}${s.batch?.canary ? ':canary' : ''}`)).toEqual([
      'run:1:canary', 'health:1:canary', 'run:2', 'health:2', 'run:1', 'health:1',
    ])
  })

  it('runs scale_out only on existing members and reloads changed files before new members start', () => {
    const p = ok(then(ok(plan({spec})), {kind: 'scale', role: 'zk', add: 1}))
    const kinds = p.steps.map((s) => `${s.kind}${s.service ? `:${s.service}` : ''}`)
    expect(kinds.indexOf('install')).toBeLessThan(kinds.indexOf('run:start'))
    expect(p.steps.filter((s) => s.service === 'scale_out').flatMap((s) => s.nodes)).toEqual(['zk-main-zk-1', 'zk-main-zk-2', 'zk-main-zk-3', 'zk-main-zk-4', 'zk-main-zk-5'])
    expect(p.steps.filter((s) => s.kind === 'install' && s.reload).flatMap((s) => s.nodes)).toHaveLength(5)
  })

  it('orders a scale in: register leaving, scale_in on the rest, stop, destroy, remove, finalize, re-render', () => {
    const p = ok(then(ok(plan({spec})), {kind: 'scale', role: 'zk', count: 4}))
    const kinds = [...new Set(p.steps.map((s) => `${s.kind}${s.service ? `:${s.service}` : ''}`))]
    expect(kinds).toEqual(['commit', 'run:scale_in', 'run:stop', 'run:destroy', 'remove', 'install'])
    expect(p.steps.filter((s) => s.service === 'stop').flatMap((s) => s.nodes)).toEqual(['zk-main-zk-5'])
    expect(p.steps.filter((s) => s.kind === 'commit')).toHaveLength(2)
  })

  it('destroys: every node stops and is destroyed, and every key goes', () => {
    const created = ok(plan({spec}))
    const p = ok(then(created, {kind: 'destroy'}))
    expect(p.desired).toBeNull()
    expect(p.tree).toEqual([])
    expect(p.changes.deletes).toHaveLength(created.tree.length)
    expect(p.steps.filter((s) => s.service === 'destroy').flatMap((s) => s.nodes)).toHaveLength(5)
  })
})

describe('revisions and no-op plans', () => {
  it('plans nothing when the registered cluster already matches', () => {
    const p = ok(then(ok(plan()), create))
    expect(hasChanges(p)).toBe(false)
    expect(p.revision).toBe(1)
    expect(renderPlan(p)).toContain('up to date')
  })

  it('bumps the revision and reloads the changed files when env changes', () => {
    const spec = zkSpec({}, {env: {tick_time: {type: 'integer', default: 3000}}})
    const p = ok(then(ok(plan()), create, {spec}))
    expect([p.baseRevision, p.revision]).toEqual([1, 2])
    expect(p.nodes.every((n) => n.fileChanges.map((c) => c.dest).join() === 'conf/zoo.cfg')).toBe(true)
    expect(renderPlan(p)).toContain('-tickTime=2000\n+tickTime=3000\n')
  })

  it('re-renders templates that read the revision with the new one', () => {
    const templates = new Map([...zkTemplates(), ['zk/myid.liquid', '{{ cluster.revision }}']])
    const p = ok(then(ok(plan({templates})), {kind: 'scale', role: 'zk', add: 1}, {templates}))
    expect(p.nodes.map((n) => n.files[1]!.content)).toEqual(['2', '2', '2', '2'])
  })
})

describe('purity', () => {
  it('uses no clock, randomness, environment or file system in src/plan', () => {
    const dir = join(import.meta.dirname, '..', 'src', 'plan')
    for (const file of readdirSync(dir)) {
      const source = readFileSync(join(dir, file), 'utf8')
      expect(source, file).not.toMatch(/\bDate\b|Math\.random|process\.|node:fs|node:child_process|randomUUID/)
    }
  })

  it('gives the same plan for the same input', () => {
    const first = ok(then(ok(plan()), {kind: 'scale', role: 'zk', add: 2}))
    const second = ok(then(ok(plan()), {kind: 'scale', role: 'zk', add: 2}))
    expect(JSON.stringify(second)).toBe(JSON.stringify(first))
  })
})
