// Which clusters follow a changed one, in what order, and what stops the walk: dependents found through their links in
// a real (embedded) registry; the follow itself is the runner the caller passes (here one that records the calls).
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {dependentsOf, followError, followLinks, type FollowRunner} from '../src/lifecycle/dependents.js'
import {openStore} from '../src/store/open.js'
import type {Store} from '../src/store/store.js'

let dir: string
let store: Store
beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'shoal-dependents-'))
  store = await openStore({state: dir, env: {}})
})
afterEach(async () => {
  await store.close()
  rmSync(dir, {recursive: true, force: true})
})

/** Register clusters (just what the walk reads: the revision key and the links). */
async function register(clusters: Record<string, Record<string, string>>): Promise<void> {
  for (const [name, links] of Object.entries(clusters)) {
    await store.txn([], [
      {type: 'put', key: `clusters/${name}/cluster/revision`, value: '1'},
      ...Object.entries(links).map(([link, other]) => ({type: 'put' as const, key: `clusters/${name}/links/${link}`, value: other})),
    ])
  }
}

function recording(changes: Record<string, boolean | Error>): {calls: string[]; run: FollowRunner} {
  const calls: string[] = []
  return {
    calls,
    run: async (cluster, operation) => {
      calls.push(`${cluster}<-${operation.kind === 'apply' ? String(operation.follows) : operation.kind}`)
      const outcome = changes[cluster] ?? false
      if (outcome instanceof Error) throw outcome
      return {changed: outcome, revision: 2}
    },
  }
}

describe('following links', () => {
  it('finds the registered clusters whose links name a cluster, not others', async () => {
    await register({zk: {}, kafka: {zk: 'zk'}, web: {}, lb: {backend: 'web', coord: 'zk'}})
    expect(await dependentsOf(store, 'zk')).toEqual(['kafka', 'lb'])
    expect(await dependentsOf(store, 'web')).toEqual(['lb'])
    expect(await dependentsOf(store, 'kafka')).toEqual([])
  })

  it('follows down the links only through clusters that changed', async () => {
    await register({zk: {}, kafka: {zk: 'zk'}, connect: {kafka: 'kafka'}, audit: {zk: 'zk'}, report: {audit: 'audit'}})
    const {calls, run} = recording({kafka: true, audit: false})
    const results = await followLinks(store, 'zk', run)
    expect(calls).toEqual(['audit<-zk', 'kafka<-zk', 'connect<-kafka'])
    expect(results.map((r) => `${r.cluster}:${r.result}`)).toEqual(['audit:unchanged', 'kafka:updated', 'connect:unchanged'])
  })

  it('ends when links form a cycle, each pair followed once', async () => {
    await register({a: {b: 'b'}, b: {a: 'a'}})
    const {calls, run} = recording({a: true, b: true})
    await followLinks(store, 'a', run)
    expect(calls).toEqual(['b<-a', 'a<-b'])
  })

  it('one dependent failing does not stop the others; the error names it and how to retry', async () => {
    await register({zk: {}, kafka: {zk: 'zk'}, lb: {zk: 'zk'}})
    const {calls, run} = recording({kafka: new Error('cluster kafka is locked by bob'), lb: true})
    const results = await followLinks(store, 'zk', run)
    expect(calls).toEqual(['kafka<-zk', 'lb<-zk'])
    expect(results.map((r) => r.result)).toEqual(['failed', 'updated'])
    const error = followError('zk', results)!
    expect(error.code).toBe('dependents-failed')
    expect(error.message).toContain('kafka (links to zk): cluster kafka is locked by bob')
    expect(error.message).toContain('shoal resume zk')
    expect(followError('zk', results.slice(1))).toBeUndefined()
  })

  it('after a destroy the dependents are only reported', async () => {
    await register({kafka: {zk: 'zk'}})
    const {calls, run} = recording({})
    const results = await followLinks(store, 'zk', run, {destroyed: true})
    expect(calls).toEqual([])
    expect(results).toMatchObject([{cluster: 'kafka', result: 'skipped'}])
  })
})
