// What scripts did per node, read from a stopped operation's plan and progress marks (the planner's fix-forward input).
import {describe, expect, it} from 'vitest'
import {factsOf, mergeFacts} from '../src/operation/facts.js'
import type {Step} from '../src/plan/steps.js'
import type {NodeMark, Progress} from '../src/operation/record.js'

const steps: Step[] = [
  {id: '1-commit', kind: 'commit', title: 'register', nodes: []},
  {id: '2-install-app', kind: 'install', title: 'files', nodes: ['a', 'b'], files: 'interim', reload: false},
  {id: '3-run-init-app', kind: 'run', title: 'init', nodes: ['a', 'b'], service: 'init'},
  {id: '4-run-start-app', kind: 'run', title: 'start', nodes: ['a', 'b'], service: 'start'},
  {id: '5-health-app', kind: 'health', title: 'health', nodes: ['a', 'b']},
  {id: '6-commit', kind: 'commit', title: 'finish', nodes: []},
  {id: '7-install-app', kind: 'install', title: 'files', nodes: ['a', 'b'], files: 'final', reload: true},
]
function progress(done: string[], marks: Record<string, Record<string, NodeMark>> = {}): Progress {
  return {steps: new Set(done), nodes: new Map(Object.entries(marks).map(([step, m]) => [step, new Map(Object.entries(m))]))}
}

describe('factsOf', () => {
  it('a script that finished on a node is done there; one that began is only touched', () => {
    const f = factsOf({steps}, progress(['1-commit', '2-install-app'], {'3-run-init-app': {a: 'done', b: 'started'}}))
    expect(f.a).toMatchObject({done: ['init'], touched: ['init']})
    expect(f.b).toMatchObject({done: [], touched: ['init']})
  })

  it('a start counts as finished only once the health after it passed on that node', () => {
    const f = factsOf({steps}, progress(['1-commit', '2-install-app', '3-run-init-app', '4-run-start-app'], {'5-health-app': {a: 'done'}}))
    expect(f.a!.done).toEqual(['init', 'start'])
    expect(f.b!.done).toEqual(['init'])
    expect(f.b!.unhealthy).toBe(true)
  })

  it('files are stale where an install after a commit that landed did not finish', () => {
    expect(factsOf({steps}, progress([])).a?.filesStale).toBeUndefined()
    expect(factsOf({steps}, progress(['1-commit'])).a?.filesStale).toBe(true)
    const all = ['1-commit', '2-install-app', '3-run-init-app', '4-run-start-app', '5-health-app', '6-commit']
    expect(factsOf({steps}, progress(all, {'7-install-app': {a: 'done'}})).b?.filesStale).toBe(true)
    expect(factsOf({steps}, progress(all, {'7-install-app': {a: 'done'}})).a?.filesStale).toBe(false)
  })
})

describe('mergeFacts', () => {
  it('keeps what an older operation did, unless the newer one found the node unhealthy after its start', () => {
    const older = {a: {done: ['init', 'start'] as const, touched: ['init', 'start'] as const}}
    const merged = mergeFacts({a: {done: [...older.a.done], touched: [...older.a.touched]}}, {a: {done: [], touched: [], unhealthy: true}})
    expect(merged.a!.done).toEqual(['init'])
    expect(merged.a!.touched).toEqual(['init', 'start'])
    expect(mergeFacts({a: {done: ['init'], touched: ['init']}}, {b: {done: ['stop'], touched: ['stop']}})).toEqual({
      a: {done: ['init'], touched: ['init']}, b: {done: ['stop'], touched: ['stop']},
    })
  })
})
