// `shoal plan --format markdown` (issue 17): the pull-request summary pinned for a change of the HAProxy example after
// an imperative scale, and no secret in it (a secret parameter said to change, files reading it named, not shown).
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {assertCliBuilt, describeResult, embeddedRegistry, shoal, type CliResult, type Registry} from './support/shoal-cli.js'

const HOSTS = 'specs/hosts.local.yaml'
let registry: Registry
let work: string
beforeAll(() => {
  assertCliBuilt()
  registry = embeddedRegistry()
  work = mkdtempSync(path.join(tmpdir(), 'shoal-markdown-'))
})
afterAll(() => {
  registry?.dispose()
  if (work) rmSync(work, {recursive: true, force: true})
})

async function ok(...args: string[]): Promise<CliResult> {
  const result = await shoal([...args, ...registry.flags])
  expect(result.code, describeResult(result)).toBe(0)
  return result
}

describe('plan --format markdown', () => {
  it('a change after shoal scale: the table, the imperative line, node changes, parameters and a short diff', async () => {
    await ok('apply', 'specs/haproxy.yaml', '--hosts', HOSTS, '--registry-only')
    await ok('scale', 'web-lb', '--role', 'web', '--count', '3', '--hosts', HOSTS, '--registry-only')
    const {stdout} = await ok('plan', 'specs/haproxy.yaml', '--hosts', HOSTS, '--format', 'markdown', '--set', 'maxconn=100')
    expect(stdout).toBe(`## shoal plan: web-lb, change

| cluster | action | nodes | files | parameters |
|---|---|---|---|---|
| \`web-lb\` | change | −1 | 1 node | 1 |

### \`web-lb\`: change

**Registered by commands, not by this spec:**
- role web: count 2 in the spec, 3 registered by an earlier command: this plan scales in by 1 (\`shoal get web-lb --spec\` prints the registered spec)

- ➖ \`web-lb-web-3\` web sid 3 on \`local-4\` (127.0.1.4): remove
- ✏️ \`web-lb-lb-1\` lb sid 1 on \`local-3\` (127.0.1.3): 1 file change
- 2 nodes unchanged

**Parameters:** \`maxconn\` \`2000\` → \`100\`

<details><summary>Files: 1 change</summary>

\`web-lb-lb-1\` \`conf/haproxy.cfg\` changed:
\`\`\`diff
@@ -1,6 +1,6 @@
 # HAProxy for lb node web-lb-lb-1 of cluster web-lb; rendered by shoal, do not edit.
 global
-    maxconn 2000
+    maxconn 100
     # The pid file is bin/start.sh's -p (the master's pid); a \`pidfile\` here too makes HAProxy warn at each start.
     # The runtime API. Reloads do not need it: the master's new workers take the listeners over from the old ones
     # through the master's own socket pair (-x sockpair@N); \`expose-fd listeners\` lets an HAProxy started by hand
@@ -29,4 +29,3 @@
     default-server inter 2s fall 2 rise 1
     server web-lb-web-1 127.0.1.1:8080 check
     server web-lb-web-2 127.0.1.2:8080 check
-    server web-lb-web-3 127.0.1.4:8080 check
\`\`\`

</details>
`)
  })

  it('a secret parameter change: said to change, its value nowhere, the files reading it named only', async () => {
    const first = path.join(work, 'first-password')
    const second = path.join(work, 'second-password')
    writeFileSync(first, 'first-redis-password-0123456789')
    writeFileSync(second, 'second-redis-password-0123456789')
    await ok('apply', 'specs/redis-cluster.yaml', '--hosts', HOSTS, '--registry-only', '--set-file', `password=${first}`)
    const {stdout} = await ok('plan', 'specs/redis-cluster.yaml', '--hosts', HOSTS, '--format', 'markdown', '--set-file', `password=${second}`)
    expect(stdout).toContain('**Parameters:** `password` changed (secret)')
    expect(stdout).toMatch(/`redis-main-redis-1` `conf\/redis\.conf` changed: content hidden \(the template reads a secret\)/)
    expect(stdout).not.toContain('redis-password-0123456789')
  })
})

describe('the example specs as one set (registry only)', () => {
  it('applied in link order with values per cluster (secrets from files), then planned again: nothing changes', async () => {
    const secret = (name: string, text: string): string => {
      const file = path.join(work, name)
      writeFileSync(file, text)
      return file
    }
    const values = [
      '--set-file', `zk-main.super_password=${secret('zk', 'zk-super-password-0123456789')}`,
      '--set-file', `db-main.app_password=${secret('app', 'db-app-password-0123456789')}`,
      '--set-file', `db-main.repl_password=${secret('repl', 'db-repl-password-0123456789')}`,
    ]
    const separate = embeddedRegistry()
    try {
      const run = (...args: string[]): Promise<CliResult> => shoal([...args, ...separate.flags])
      const unqualified = await run('plan', 'specs', '--hosts', HOSTS, '--set', 'tick_time=3000')
      expect(unqualified.code).toBe(2)
      expect(unqualified.stderr).toContain('--set tick_time: with several specs a parameter names its cluster, as CLUSTER.NAME')
      const common = secret('common.yaml', 'web-lb: {maxconn: 100, balance: leastconn}\n')
      const later = secret('later.yaml', 'web-lb: {maxconn: 200}\n')
      const applied = await run('apply', 'specs', '--hosts', HOSTS, '--registry-only', ...values, '--set', 'zk-main.tick_time=3000', '--values', common, '--values', later)
      expect(applied.code, describeResult(applied)).toBe(0)
      const order = [...applied.stdout.matchAll(/^=== (\S+)$/gm)].map((m) => m[1]!)
      expect(order.indexOf('kafka-main')).toBeGreaterThan(order.indexOf('zk-main'))
      expect(order.indexOf('db-proxy')).toBeGreaterThan(order.indexOf('db-main'))
      expect(order.sort()).toEqual(['db-main', 'db-proxy', 'kafka-main', 'redis-main', 'web-lb', 'zk-main'])
      // A later values file wins parameter by parameter, not cluster by cluster.
      const env = JSON.parse((await run('get', 'web-lb', 'env', '--json')).stdout) as {env: Record<string, {value: string}>}
      expect([env.env.maxconn?.value, env.env.balance?.value]).toEqual(['200', 'leastconn'])
      const again = await run('plan', 'specs', '--hosts', HOSTS, '--detailed-exitcode')
      expect(again.code, describeResult(again)).toBe(0)
      expect(again.stdout).toContain('6 clusters: 0 to create, 0 to change, 6 unchanged.')
      expect(again.stdout + again.stderr).not.toMatch(/password-0123456789/)
    } finally {
      separate.dispose()
    }
  })
})
