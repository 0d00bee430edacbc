// 20 processes racing read-modify-guarded-write increments on one key: every increment lands exactly once.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {openStore} from '../src/store/open.js'
import {startWorker, type StoreSpec} from './support/children.js'
import {startEtcd, type EtcdCluster} from './support/etcd.js'

const PROCESSES = 20

async function raceIncrements(spec: StoreSpec): Promise<{finalValue: string | undefined; reported: number[]; failures: string[]}> {
  const workers = Array.from({length: PROCESSES}, () => startWorker(spec, ['increment', 'counter']))
  const results = await Promise.all(workers.map(w => w.exited))
  const failures = results.filter(r => r.code !== 0).map(r => `exit ${String(r.code ?? r.signal)}: ${r.stderr.slice(-500)}`)
  // Each worker prints the value its successful write stored: all different, 1..20, if no update was lost.
  const reported = results.map(r => Number(r.stdout.split(' ')[0])).sort((a, b) => a - b)
  const store = await openStore({...spec, env: {}})
  const finalValue = (await store.get('counter'))?.value
  await store.close()
  return {finalValue, reported, failures}
}

describe('concurrent guarded increments from 20 processes', () => {
  let etcd: EtcdCluster
  let dir: string
  beforeAll(async () => {
    etcd = await startEtcd()
    dir = mkdtempSync(path.join(tmpdir(), 'shoal-race-'))
  })
  afterAll(async () => {
    await etcd?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('loses no update in the embedded store', async () => {
    const {finalValue, reported, failures} = await raceIncrements({state: dir})
    expect(failures).toEqual([])
    expect(finalValue).toBe(String(PROCESSES))
    expect(reported).toEqual(Array.from({length: PROCESSES}, (_, i) => i + 1))
  })

  it('loses no update in etcd', async () => {
    const {finalValue, reported, failures} = await raceIncrements({etcd: etcd.endpoints.join(','), prefix: '/race/'})
    expect(failures).toEqual([])
    expect(finalValue).toBe(String(PROCESSES))
    expect(reported).toEqual(Array.from({length: PROCESSES}, (_, i) => i + 1))
  })
})
