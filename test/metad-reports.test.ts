// metad's agent reports in a real embedded registry: a key that went without metad revoking it (its lease lapsed while
// the store was slow or away) is written again by the next unchanged heartbeat, so a live agent does not show as down.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {Reports} from '../src/metad/reports.js'
import {agentKey} from '../src/registry/index.js'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'

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
})
