// metad's agent reports in a real embedded registry: an agent is alive while it reports or holds a long-poll open (it
// sends no heartbeat), and a key that went without metad deleting it (its lease lapsed while the store was slow or
// away) is written again by the next unchanged report or poll, so a live agent does not show as down.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {Reports} from '../src/metad/reports.js'
import {agentKey} from '../src/registry/index.js'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'
import {eventually} from './support/children.js'

const dir = mkdtempSync(path.join(tmpdir(), 'shoal-reports-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('agent reports', () => {
  it('an unchanged heartbeat writes the report again once its key has gone', async () => {
    const store = await EmbeddedStore.open({dir})
    const reports = new Reports(store, 2)
    try {
      const ref = {cluster: 'c', nodeId: 'c-r-1'}
      const report = {revision: 7, files: {}, errors: []}
      await reports.report(ref, report)
      expect(JSON.parse((await store.get(agentKey('c', 'c-r-1')))!.value)).toMatchObject({revision: 7})
      // Gone behind metad's back (as an expired lease leaves it).
      await store.txn([], [{type: 'delete', key: agentKey('c', 'c-r-1')}])
      await reports.report(ref, report)
      // Within half the TTL an unchanged heartbeat writes nothing; after it, it looks and puts the report back.
      expect(await store.get(agentKey('c', 'c-r-1'))).toBeUndefined()
      await new Promise((resolve) => setTimeout(resolve, 1100))
      await reports.report(ref, report)
      expect(JSON.parse((await store.get(agentKey('c', 'c-r-1')))!.value)).toMatchObject({revision: 7})
    } finally {
      reports.close()
      await store.close()
    }
  })

  it('a report stays while its agent holds a poll open past the TTL, and goes a TTL after the poll closed', async () => {
    const store = await EmbeddedStore.open({dir})
    const reports = new Reports(store, 1)
    const key = agentKey('c', 'c-r-2')
    try {
      const ref = {cluster: 'c', nodeId: 'c-r-2'}
      await reports.report(ref, {revision: 3, files: {}, errors: []})
      reports.pollOpened(ref)
      await new Promise((resolve) => setTimeout(resolve, 1500))
      expect(await store.get(key)).toBeDefined()
      reports.pollClosed(ref)
      // The agent asks again at once after an answer: a new poll within the TTL keeps it.
      await new Promise((resolve) => setTimeout(resolve, 500))
      reports.pollOpened(ref)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      expect(await store.get(key)).toBeDefined()
      reports.pollClosed(ref)
      await eventually('the report key deleted a TTL after the poll closed', async () => (await store.get(key)) === undefined, 3000, 50)
    } finally {
      reports.close()
      await store.close()
    }
  })

  it('a poll puts back a report whose key went behind metad\'s back', async () => {
    const store = await EmbeddedStore.open({dir})
    const reports = new Reports(store, 2)
    const key = agentKey('c', 'c-r-3')
    try {
      const ref = {cluster: 'c', nodeId: 'c-r-3'}
      await reports.report(ref, {revision: 5, files: {}, errors: []})
      reports.pollOpened(ref)
      await store.txn([], [{type: 'delete', key}])
      reports.pollClosed(ref)
      await new Promise((resolve) => setTimeout(resolve, 1100))
      reports.pollOpened(ref)
      await eventually('the report key written again', async () => (await store.get(key)) !== undefined, 3000, 50)
      expect(JSON.parse((await store.get(key))!.value)).toMatchObject({revision: 5})
      reports.pollClosed(ref)
    } finally {
      reports.close()
      await store.close()
    }
  })
})

