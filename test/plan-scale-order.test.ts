// The planner's step sequence for scale out and scale in, step by step, as the lifecycle design orders it (DESIGN.md):
// what each registry commit writes and which nodes each script and install step touches.
import {describe, expect, it} from 'vitest'
import {planCluster} from '../src/plan/index.js'
import type {Step} from '../src/plan/steps.js'
import type {ClusterState, Operation, Plan} from '../src/plan/types.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

// zoo.cfg lists every member; `backends` follows HAProxy's habit of dropping leaving nodes and showing joiners early,
// so both the in-flight (interim) and the final re-render have something to change.
const BACKENDS = '{% for m in hosts.zk %}{% unless deleting_hosts.zk contains m %}{{ m.sid }} {% endunless %}{% endfor %}| joining {% for m in adding_hosts.zk %}{{ m.sid }} {% endfor %}\n'
const spec = zkSpec({count: 3, files: [...zkSpec().roles.zk!.files!, {template: 'backends.liquid', dest: 'conf/backends', reload: 'bin/reload-backends'}]}, {update: {canaries: 1, max_in_flight: '100%'}})
const templates = new Map([...zkTemplates(), ['backends.liquid', BACKENDS]])
const inventory = hosts(9)

function registered(): ClusterState {
  const created = planCluster({spec, templates, inventory, operation: {kind: 'create'}})
  expect(created.errors).toEqual([])
  return applied(created)
}

function scale(operation: Operation): Plan {
  const current = registered()
  const p = planCluster({spec: current.spec!, templates, inventory, current, operation})
  expect(p.errors).toEqual([])
  return p
}

const describeStep = (s: Step): string => `${s.kind}${s.service ? `:${s.service}` : ''}${s.files ? `:${s.files}` : ''}${s.reload ? '+reload' : ''} [${s.nodes.join(' ')}]`
const keysOf = (entries: readonly (string | [string, string])[], section: string): string[] =>
  [...new Set(entries.map((e) => (typeof e === 'string' ? e : e[0])).filter((k) => k.startsWith(`clusters/zk-main/${section}/`)).map((k) => k.split('/')[4]!))].sort()

describe('scale out', () => {
  const p = scale({kind: 'scale', role: 'zk', add: 2})

  it('registers → re-renders the existing members (reload) → new members init, start, health → scale_out on the existing → clears adding-hosts → final files', () => {
    expect(p.steps.map(describeStep)).toEqual([
      'commit []',
      'install:interim [zk-main-zk-4 zk-main-zk-5]',
      'install:interim+reload [zk-main-zk-1 zk-main-zk-2 zk-main-zk-3]',
      'run:init [zk-main-zk-4 zk-main-zk-5]',
      'run:start [zk-main-zk-4]',
      'health [zk-main-zk-4]',
      'run:start [zk-main-zk-5]',
      'health [zk-main-zk-5]',
      'run:scale_out [zk-main-zk-1 zk-main-zk-2 zk-main-zk-3]',
      'commit []',
      'install:final+reload [zk-main-zk-1 zk-main-zk-2 zk-main-zk-3 zk-main-zk-4 zk-main-zk-5]',
    ])
  })

  it('the first commit puts the new nodes in hosts (pending) and in adding-hosts', () => {
    const register = p.steps[0]!.changes!
    expect(keysOf(register.puts, 'hosts/zk')).toEqual(['zk-main-zk-4', 'zk-main-zk-5'])
    expect(keysOf(register.puts, 'adding-hosts/zk')).toEqual(['zk-main-zk-4', 'zk-main-zk-5'])
    expect(register.puts.filter(([k]) => k.endsWith('/state')).map(([, v]) => v)).toEqual(['pending', 'pending'])
    expect(register.deletes).toEqual([])
  })

  it('the last commit marks them active and clears adding-hosts', () => {
    const finalize = p.steps[9]!.changes!
    expect(finalize.puts.filter(([k]) => k.endsWith('/state'))).toEqual([
      ['clusters/zk-main/hosts/zk/zk-main-zk-4/state', 'active'],
      ['clusters/zk-main/hosts/zk/zk-main-zk-5/state', 'active'],
    ])
    expect(keysOf(finalize.deletes, 'adding-hosts/zk')).toEqual(['zk-main-zk-4', 'zk-main-zk-5'])
    expect(applied(p).adding).toEqual([])
  })

  it('existing members see the new ones while they join, and the full list after', () => {
    const first = p.nodes.find((n) => n.node_id === 'zk-main-zk-1')!
    expect(first.interim!.find((f) => f.dest === 'conf/backends')!.content).toBe('1 2 3 4 5 | joining 4 5 \n')
    expect(first.files.find((f) => f.dest === 'conf/backends')!.content).toBe('1 2 3 4 5 | joining \n')
  })
})

describe('scale in', () => {
  const highest = scale({kind: 'scale', role: 'zk', count: 1})
  const named = scale({kind: 'scale', role: 'zk', remove: ['zk-main-zk-1']})

  it('registers the leaving → re-renders the rest (reload) → scale_in on the rest → leaving stop, destroy, remove → finalize → final files', () => {
    expect(highest.steps.map(describeStep)).toEqual([
      'commit []',
      'install:interim+reload [zk-main-zk-1]',
      'run:scale_in [zk-main-zk-1]',
      'run:stop [zk-main-zk-2 zk-main-zk-3]',
      'run:destroy [zk-main-zk-2 zk-main-zk-3]',
      'remove [zk-main-zk-2 zk-main-zk-3]',
      'commit []',
      'install:final+reload [zk-main-zk-1]',
    ])
  })

  it('without names, the highest sids leave', () => {
    expect(highest.nodes.filter((n) => n.change === 'remove').map((n) => n.node_id)).toEqual(['zk-main-zk-2', 'zk-main-zk-3'])
  })

  it('named nodes leave whatever their sid; the bootstrap role moves to the lowest remaining sid', () => {
    expect(named.steps.map(describeStep)).toEqual([
      'commit []',
      'install:interim+reload [zk-main-zk-2 zk-main-zk-3]',
      'run:scale_in [zk-main-zk-2 zk-main-zk-3]',
      'run:stop [zk-main-zk-1]',
      'run:destroy [zk-main-zk-1]',
      'remove [zk-main-zk-1]',
      'commit []',
      'install:final+reload [zk-main-zk-2 zk-main-zk-3]',
    ])
    expect(named.nodes.filter((n) => n.bootstrap).map((n) => n.node_id)).toEqual(['zk-main-zk-2'])
  })

  it('the first commit marks the leaving nodes leaving and lists them in deleting-hosts; they stay in hosts', () => {
    const register = named.steps[0]!.changes!
    expect(keysOf(register.puts, 'deleting-hosts/zk')).toEqual(['zk-main-zk-1'])
    expect(register.puts).toContainEqual(['clusters/zk-main/hosts/zk/zk-main-zk-1/state', 'leaving'])
    expect(keysOf(register.deletes, 'hosts/zk')).toEqual([])
  })

  it('the last commit removes them from hosts and clears deleting-hosts', () => {
    const finalize = named.steps[6]!.changes!
    expect(keysOf(finalize.deletes, 'hosts/zk')).toEqual(['zk-main-zk-1'])
    expect(keysOf(finalize.deletes, 'deleting-hosts/zk')).toEqual(['zk-main-zk-1'])
    const after = applied(named)
    expect([after.nodes.map((n) => n.node_id), after.deleting]).toEqual([['zk-main-zk-2', 'zk-main-zk-3'], []])
  })

  it('the remaining members drop the leaving one while it leaves, and keep only themselves after', () => {
    const second = named.nodes.find((n) => n.node_id === 'zk-main-zk-2')!
    expect(second.interim!.find((f) => f.dest === 'conf/zoo.cfg')!.content).toContain('server.1=')
    expect(second.interim!.find((f) => f.dest === 'conf/backends')!.content).toBe('2 3 | joining \n')
    expect(second.files.find((f) => f.dest === 'conf/zoo.cfg')!.content).not.toContain('server.1=')
  })
})
