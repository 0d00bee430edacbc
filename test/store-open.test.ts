// openStore picks etcd when endpoints are given (flag or environment) and the embedded state directory otherwise.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {openStore, parseEndpoints} from '../src/store/open.js'

describe('openStore', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-open-'))
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  it('opens the embedded store in the state directory when no endpoints are given', async () => {
    const store = await openStore({state: dir, env: {}})
    expect(store.description).toBe(`embedded ${dir}`)
    expect(store.maxOpsPerTxn).toBe(Infinity)
    await store.close()
  })

  it('opens etcd from SHOAL_ETCD_ENDPOINTS, and the flag wins over the environment', async () => {
    const fromEnv = await openStore({state: dir, env: {SHOAL_ETCD_ENDPOINTS: 'http://127.0.0.1:1, http://127.0.0.1:2'}})
    expect(fromEnv.description).toBe('etcd http://127.0.0.1:1,http://127.0.0.1:2 (prefix /shoal/)')
    expect(fromEnv.maxOpsPerTxn).toBe(128)
    await fromEnv.close()
    const fromFlag = await openStore({etcd: 'http://127.0.0.1:3', prefix: '/p/', env: {SHOAL_ETCD_ENDPOINTS: 'http://127.0.0.1:1'}})
    expect(fromFlag.description).toBe('etcd http://127.0.0.1:3 (prefix /p/)')
    await fromFlag.close()
  })

  it('refuses an endpoint that is not an http(s) URL, naming it', () => {
    expect(() => parseEndpoints('localhost:2379')).toThrow(/"localhost:2379" must use http/)
    expect(() => parseEndpoints('127.0.0.1:2379')).toThrow(/"127.0.0.1:2379" is not a URL; expected e.g. http/)
    expect(() => parseEndpoints('http://ok:1,nonsense')).toThrow(/"nonsense" is not a URL/)
  })

  it('refuses a user without a password', async () => {
    await expect(openStore({etcd: 'http://127.0.0.1:1', user: 'root', env: {}})).rejects.toMatchObject({code: 'INVALID_REQUEST'})
  })
})
