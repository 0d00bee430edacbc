// NodeMarks: node progress marks of one operation written together (group commit) on the embedded store.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {NodeMarks, nodeStepKey, readProgress} from '../src/operation/record.js'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})
async function freshStore(): Promise<EmbeddedStore> {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-marks-'))
  dirs.push(dir)
  return EmbeddedStore.open({dir})
}
const nodes = Array.from({length: 50}, (_, i) => `c-app-${i + 1}`)

describe('NodeMarks', () => {
  it('writes 50 marks asked for at once in two transactions, every one recorded when its promise resolves', async () => {
    const store = await freshStore()
    const marks = new NodeMarks(store, 'c')
    const before = store.counters.txns
    await Promise.all(nodes.map((n) => marks.mark('03-run-init-app', n, 'done')))
    expect(store.counters.txns - before).toBe(2)
    const progress = await readProgress(store, 'c')
    expect([...(progress.nodes.get('03-run-init-app')?.entries() ?? [])].filter(([, m]) => m === 'done')).toHaveLength(50)
    await store.close()
  })

  it('a mark resolves only after the registry holds it', async () => {
    const store = await freshStore()
    const marks = new NodeMarks(store, 'c')
    const seen = await Promise.all(nodes.slice(0, 5).map(async (n) => {
      await marks.mark('02-install-app', n, 'started')
      return (await store.get(nodeStepKey('c', '02-install-app', n)))?.value
    }))
    expect(seen).toEqual(['started', 'started', 'started', 'started', 'started'])
    await store.close()
  })

  it('a later mark of the same node replaces an unwritten earlier one; both resolve', async () => {
    const store = await freshStore()
    const marks = new NodeMarks(store, 'c')
    const first = marks.mark('02-install-app', 'c-app-1', 'started') // written alone, at once
    const queued = [marks.mark('02-install-app', 'c-app-2', 'started'), marks.mark('02-install-app', 'c-app-2', 'done')]
    await Promise.all([first, ...queued])
    expect((await store.get(nodeStepKey('c', '02-install-app', 'c-app-2')))?.value).toBe('done')
    await store.close()
  })

  it('a deferred mark is written at once, waited for by nobody; behind a write in flight it shares the next one with the mark after it', async () => {
    const store = await freshStore()
    const marks = new NodeMarks(store, 'c')
    const before = store.counters.txns
    // Nothing in flight: written now (a node waiting for its next step must not leave a finished script unrecorded).
    marks.defer('02-install-app', 'c-app-1', 'done')
    await marks.landed()
    expect(store.counters.txns - before).toBe(1)
    expect((await store.get(nodeStepKey('c', '02-install-app', 'c-app-1')))?.value).toBe('done')
    // A write in flight: the deferred mark and the next node mark go together in the following transaction.
    const inFlight = marks.mark('02-install-app', 'c-app-2', 'done')
    marks.defer('03-run-init-app', 'c-app-1', 'done', {'/shoal/test/log-of-init': 'x'})
    const next = marks.mark('04-run-start-app', 'c-app-1', 'started')
    await Promise.all([inFlight, next])
    expect(store.counters.txns - before).toBe(3)
    expect((await store.get(nodeStepKey('c', '03-run-init-app', 'c-app-1')))?.value).toBe('done')
    expect((await store.get('/shoal/test/log-of-init'))?.value).toBe('x')
    await store.close()
  })

  it('landed() writes what is still deferred and waits for a write in flight', async () => {
    const store = await freshStore()
    const marks = new NodeMarks(store, 'c')
    await marks.landed() // nothing asked for: settles at once
    marks.defer('03-run-init-app', 'c-app-1', 'done')
    await marks.landed()
    expect((await store.get(nodeStepKey('c', '03-run-init-app', 'c-app-1')))?.value).toBe('done')
    const inFlight = marks.mark('03-run-init-app', 'c-app-2', 'done')
    await marks.landed()
    expect((await store.get(nodeStepKey('c', '03-run-init-app', 'c-app-2')))?.value).toBe('done')
    await inFlight
    await store.close()
  })

  it('landed() rejects when a deferred mark cannot be written', async () => {
    const store = await freshStore()
    const marks = new NodeMarks(store, 'c')
    await store.close()
    marks.defer('03-run-init-app', 'c-app-1', 'done')
    await expect(marks.landed()).rejects.toThrow()
  })

  it('after a write fails (a deferred mark in it lost), nothing more is written and every later call fails with it', async () => {
    const store = await freshStore()
    let fail = true
    // The first transaction fails, later ones would succeed: a store that failed once, as a loaded disk may.
    const flaky = {maxOpsPerTxn: store.maxOpsPerTxn, txn: (...args: Parameters<EmbeddedStore['txn']>) => (fail ? ((fail = false), Promise.reject(new Error('disk full'))) : store.txn(...args))} as unknown as EmbeddedStore
    const marks = new NodeMarks(flaky, 'c')
    const first = marks.mark('02-install-app', 'c-app-2', 'done') // written alone, at once: fails
    marks.defer('02-install-app', 'c-app-1', 'done') // queued behind it
    const later = marks.mark('03-run-init-app', 'c-app-1', 'started')
    await expect(first).rejects.toThrow('disk full')
    await expect(later).rejects.toThrow('disk full')
    await expect(marks.landed()).rejects.toThrow('disk full')
    await expect(marks.mark('03-run-init-app', 'c-app-3', 'started')).rejects.toThrow('disk full')
    expect(await store.get(nodeStepKey('c', '03-run-init-app', 'c-app-1'))).toBeUndefined()
    await store.close()
  })

  it('a mark the registry cannot write rejects', async () => {
    const store = await freshStore()
    const marks = new NodeMarks(store, 'c')
    await store.close()
    await expect(marks.mark('03-run-init-app', 'c-app-1', 'done')).rejects.toThrow()
  })
})
