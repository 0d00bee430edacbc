// shoal agent against a real metad process over the embedded registry: the files it writes are byte for byte what
// `shoal render` shows for every example (create, scale out, scale in); it follows registry-only changes by itself,
// keeps the old file when a check refuses, puts it back when a reload fails, and rides out metad going away.
import {cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {request} from 'node:http'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Agent, type AgentEvent} from '../src/agent/agent.js'
import {sha256} from '../src/plan/index.js'
import {readAgentReports} from '../src/registry/agent-report.js'
import {clusterPrefix, clusterRevisionKey} from '../src/registry/index.js'
import {openStore} from '../src/store/open.js'
import {eventually} from './support/children.js'
import {startMetad, stopAllMetad, type MetadProcess} from './support/metad.js'
import {assertCliBuilt, describeResult, embeddedRegistry, readRegistered, REPO, shoal, type Registry} from './support/shoal-cli.js'

const SLOW = 300_000
const HOME_ROOT = '/srv/shoal'
const cleanups: Array<() => void> = []

beforeAll(() => assertCliBuilt())
afterAll(async () => {
  await stopAllMetad()
  for (const cleanup of cleanups.reverse()) cleanup()
})

function tempDir(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `shoal-agent-${name}-`))
  cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

/** A node's home is /srv/shoal/<cluster>/<node>: each test's clusters carry a name of their own, removed at the end. */
function ownClusterName(name: string): string {
  const own = `agent-${name}-${process.pid}`
  cleanups.push(() => rmSync(path.join(HOME_ROOT, own), {recursive: true, force: true}))
  return own
}

async function run(registry: Registry, ...args: string[]): Promise<void> {
  const result = await shoal([...args, ...registry.flags])
  expect(result.code, describeResult(result)).toBe(0)
}

/** Five hosts like specs/hosts.local.yaml, on addresses of this inventory's own (metad knows a node by its address). */
function inventory(dir: string, net: number): string {
  const source = readFileSync(path.join(REPO, 'specs/hosts.local.yaml'), 'utf8')
  const file = path.join(dir, 'hosts.yaml')
  writeFileSync(file, source.replace(/127\.0\.1\.(\d+)/g, (_, i: string) => `127.0.${net}.${i}`))
  return file
}

/** Run one agent pass for `ip` in this process (a real agent, a real metad). */
async function once(metad: MetadProcess, ip: string, events: AgentEvent[] = []): Promise<{revision: number; errors: string[]}> {
  const agent = new Agent({metad: metad.url, bind: ip, log: (e) => events.push(e), commandTimeoutMs: 30_000})
  try {
    return await agent.once()
  } finally {
    await agent.stop()
  }
}

describe('shoal agent renders what shoal render shows', () => {
  const registry = embeddedRegistry()
  cleanups.push(() => registry.dispose())
  let metad: MetadProcess
  const dir = tempDir('examples')
  const names: Record<string, string> = {}
  // Linking clusters after the clusters they link to (kafka needs zookeeper registered).
  const links = (file: string): boolean => /^links:(?! {})/m.test(readFileSync(path.join(REPO, 'specs', file), 'utf8'))
  const examples = readdirSync(path.join(REPO, 'specs')).filter((f) => f.endsWith('.yaml') && f !== 'hosts.local.yaml').sort((a, b) => Number(links(a)) - Number(links(b)) || (a < b ? -1 : 1))

  beforeAll(async () => {
    cpSync(path.join(REPO, 'specs'), dir, {recursive: true})
    // Every example gets its own cluster name (and links follow the renames) and its own five addresses.
    for (const file of examples) names[/^name: (\S+)$/m.exec(readFileSync(path.join(dir, file), 'utf8'))![1]!] = ownClusterName(file.replace(/\.yaml$/, ''))
    for (const file of examples) {
      let text = readFileSync(path.join(dir, file), 'utf8')
      for (const [from, to] of Object.entries(names)) text = text.replace(new RegExp(`(name: |: )${from}$`, 'gm'), `$1${to}`)
      writeFileSync(path.join(dir, file), text)
    }
    metad = await startMetad(registry.flags)
  }, SLOW)

  /** Values of the parameters an example requires (its secrets have no default). */
  const values: Record<string, string[]> = {
    'mariadb.yaml': ['--set', 'app_password=agent-test-app', '--set', 'repl_password=agent-test-repl'],
    'zookeeper.yaml': ['--set', 'super_password=agent-test-super-password'],
  }
  /** The role an example scales, as the index of its `count:` line (the first role unless it cannot grow). */
  const scaledRole: Record<string, number> = {'mariadb.yaml': 1}
  const countLine = /^(\s+count: )(\d+)$/gm
  const countOf = (text: string, file: string): number => Number([...text.matchAll(countLine)][scaledRole[file] ?? 0]![2])

  /** Apply the example with its scaled role at `count` (registry only), then compare every node's files with render's. */
  const check = async (file: string, index: number, count: number | undefined): Promise<void> => {
    const specFile = path.join(dir, file)
    if (count !== undefined) {
      let seen = -1
      writeFileSync(specFile, readFileSync(specFile, 'utf8').replace(countLine, (line, prefix: string) => (++seen === (scaledRole[file] ?? 0) ? `${prefix}${count}` : line)))
    }
    const hosts = inventory(dir, 20 + index)
    await run(registry, 'apply', specFile, '--hosts', hosts, '--registry-only', ...(values[file] ?? []))
    const cluster = names[/^name: (\S+)$/m.exec(readFileSync(specFile, 'utf8'))![1]!] ?? /^name: (\S+)$/m.exec(readFileSync(specFile, 'utf8'))![1]!
    const registered = await readRegistered(registry, cluster)
    expect(registered.nodes.length).toBeGreaterThan(0)
    for (const node of registered.nodes) {
      const result = await once(metad, node.ip)
      expect(result.errors, `${node.node_id}: ${result.errors.join('; ')}`).toEqual([])
      const shown = await shoal(['render', specFile, '--hosts', hosts, '--node', node.node_id, '--show-secrets', '--json', ...registry.flags])
      expect(shown.code, describeResult(shown)).toBe(0)
      const files = (JSON.parse(shown.stdout) as {files: Array<{path: string; content: string; mode: string}>}).files
      expect(files.length).toBeGreaterThan(0)
      for (const f of files) expect(readFileSync(f.path, 'utf8'), `${node.node_id} ${f.path}`).toBe(f.content)
    }
  }

  it.each(examples.map((file, index) => [file, index] as const))('%s: created, scaled out by one, scaled in again', async (file, index) => {
    const start = countOf(readFileSync(path.join(dir, file), 'utf8'), file)
    await check(file, index, undefined)
    await check(file, index, start + 1)
    await check(file, index, start)
  }, SLOW)
})

describe('shoal agent follows the registry by itself', () => {
  const registry = embeddedRegistry()
  cleanups.push(() => registry.dispose())
  const dir = tempDir('follow')
  const cluster = ownClusterName('follow')
  const specFile = path.join(dir, 'app.yaml')
  const hosts = inventory(dir, 30)
  let metad: MetadProcess
  const home = (id: string): string => path.join(HOME_ROOT, cluster, id)

  /** A role whose two files share one reload; the check refuses a member list marked "refuse", the reload fails on "fail". */
  const writeSpec = (count: number, mode = 'ok'): void => {
    writeFileSync(path.join(dir, 'members.liquid'), '{% for h in hosts.app %}{{ h.node_id }} {{ h.ip }}\n{% endfor %}mode {{ env.mode }}\n')
    writeFileSync(path.join(dir, 'count.liquid'), '{{ hosts.app | size }}\n')
    writeFileSync(path.join(dir, 'reload.liquid'), '#!/bin/sh\necho "$SHOAL_REVISION $(tr "\\\\n" " " < conf/members)" >> reloads.log\ngrep -q "mode fail" conf/members && exit 3\nexit 0\n')
    writeFileSync(specFile, `apiVersion: shoal/v1
kind: Cluster
name: ${cluster}
env:
  mode: {type: string, description: How the files behave., default: ${mode}}
roles:
  app:
    image: debian-12
    cpu: 1
    memory: 256Mi
    disk: 1Gi
    count: ${count}
    scale: {min: 1, max: 5}
    files:
      - {template: reload.liquid, dest: bin/reload.sh, mode: "0755"}
      - {template: members.liquid, dest: conf/members, check: "! grep -q 'mode refuse' {{src}}", reload: sh bin/reload.sh}
      - {template: count.liquid, dest: conf/count, reload: sh bin/reload.sh}
`)
  }

  beforeAll(async () => {
    writeSpec(2)
    await run(registry, 'apply', specFile, '--hosts', hosts, '--registry-only')
    metad = await startMetad(registry.flags, ['--quiet', '5ms'])
  }, SLOW)

  /** Each node's agent as `shoal status` shows it. */
  const agents = async (): Promise<Record<string, {state: string; revision?: number; errors?: string[]}>> => {
    const result = await shoal(['status', cluster, '--no-health', '--json', ...registry.flags])
    expect(result.code, describeResult(result)).toBe(0)
    const status = JSON.parse(result.stdout) as {nodes: Array<{node_id: string; agent?: {state: string; revision?: number; errors?: string[]}}>}
    return Object.fromEntries(status.nodes.map((n) => [n.node_id, n.agent ?? {state: 'not shown'}]))
  }

  const firstNode = async (): Promise<{node_id: string; ip: string}> => (await readRegistered(registry, cluster)).nodes[0]!

  it('applies a registry-only scale with no shoal command for the node; two files sharing a reload reload it once; the ready file follows', async () => {
    const node = await firstNode()
    const events: AgentEvent[] = []
    const readyFile = path.join(tempDir('ready'), 'agent.ready')
    const agent = new Agent({metad: metad.url, bind: node.ip, log: (e) => events.push(e), pollSeconds: 5, readyFile})
    const running = agent.run()
    try {
      await eventually('the first pass and its reload', async () => existsSync(path.join(home(node.node_id), 'reloads.log')))
      expect(readFileSync(path.join(home(node.node_id), 'conf/count'), 'utf8')).toBe('2\n')
      const reloadsBefore = readFileSync(path.join(home(node.node_id), 'reloads.log'), 'utf8').split('\n').filter(Boolean).length
      expect(reloadsBefore).toBe(1)
      await run(registry, 'scale', cluster, '--role', 'app', '--count', '3', '--hosts', hosts, '--registry-only')
      await eventually('the agent to render the third member', async () => readFileSync(path.join(home(node.node_id), 'conf/count'), 'utf8') === '3\n')
      await eventually('the reload to run', async () => readFileSync(path.join(home(node.node_id), 'reloads.log'), 'utf8').split('\n').filter(Boolean).length >= 2)
      // Each pass's outcome, one line, as shoal's start command reads it.
      const passes = (): number[] => events.flatMap((e) => (e.event === 'applied' || e.event === 'unchanged' ? [e.revision] : []))
      await eventually('the ready file to name the last pass', async () => readFileSync(readyFile, 'utf8') === `applied ${Math.max(...passes())}\n`)
      // One reload per change, however many of the files naming it changed.
      const applied = events.flatMap((e) => (e.event === 'applied' ? [e] : []))
      for (const e of applied) expect(e.reloads, e.changed.join(', ')).toEqual(e.changed.some((f) => f.startsWith('conf/')) ? [{command: 'sh bin/reload.sh', ok: true}] : [])
      expect(applied.some((e) => e.changed.includes('conf/count') && e.changed.includes('conf/members'))).toBe(true)
      const log = readFileSync(path.join(home(node.node_id), 'reloads.log'), 'utf8').split('\n').filter(Boolean)
      expect(log.length).toBe(applied.filter((e) => e.reloads.length > 0).length)
      // Its report reached the registry through metad; the nodes with no agent show as down.
      const last = Math.max(...events.flatMap((e) => (e.event === 'applied' || e.event === 'unchanged' ? [e.revision] : [])))
      await eventually('the report of the last pass', async () => (await agents())[node.node_id]?.revision === last, 40_000)
      const shown = await agents()
      expect(shown[node.node_id]).toMatchObject({state: 'in-sync', revision: last})
      expect(Object.entries(shown).filter(([id]) => id !== node.node_id).map(([, a]) => a.state)).toEqual(['down', 'down'])
    } finally {
      await agent.stop()
      await running
    }
  }, SLOW)

  it('keeps the old file when its check refuses the new one, and says so', async () => {
    const node = await firstNode()
    const members = path.join(home(node.node_id), 'conf/members')
    await once(metad, node.ip)
    const before = readFileSync(members, 'utf8')
    writeSpec(3, 'refuse')
    await run(registry, 'apply', specFile, '--hosts', hosts, '--registry-only')
    const result = await once(metad, node.ip)
    expect(result.errors.join('\n')).toMatch(/conf\/members: the check of \S+conf\/members refused the new content \(exit 1\); the old file is kept/)
    expect(readFileSync(members, 'utf8')).toBe(before)
    expect((await agents())[node.node_id]).toMatchObject({state: 'failed', revision: result.revision, errors: [expect.stringMatching(/the check of/)]})
    const cli = await shoal(['agent', '--metad', metad.url, '--bind', node.ip, '--once'])
    expect(cli.code, describeResult(cli)).toBe(1)
    expect(cli.stderr).toMatch(/not in sync at revision \d+: conf\/members: the check of/)
  }, SLOW)

  it('puts the previous file back and reloads it when the reload fails', async () => {
    const node = await firstNode()
    const members = path.join(home(node.node_id), 'conf/members')
    writeSpec(3, 'ok')
    await run(registry, 'apply', specFile, '--hosts', hosts, '--registry-only')
    expect((await once(metad, node.ip)).errors).toEqual([])
    const good = readFileSync(members, 'utf8')
    writeSpec(3, 'fail')
    await run(registry, 'apply', specFile, '--hosts', hosts, '--registry-only')
    const result = await once(metad, node.ip)
    expect(result.errors.join('\n')).toMatch(/the reload `sh bin\/reload.sh` of conf\/members exited 3: the previous content is back and reloaded/)
    expect(readFileSync(members, 'utf8')).toBe(good)
    // What the agent reports is what is on disk: the previous content, not the one it rendered and took back.
    const store = await openStore({...registry.store, env: {}})
    try {
      await eventually('the report of the restored file', async () => (await readAgentReports(store, cluster)).get(node.node_id)?.files['conf/members'] === sha256(good))
    } finally {
      await store.close()
    }
    const log = readFileSync(path.join(home(node.node_id), 'reloads.log'), 'utf8').trim().split('\n')
    expect(log.at(-1)).toContain('mode ok')
    expect(log.at(-2)).toContain('mode fail')
  }, SLOW)

  it('takes a report only from the node it is about, checked and bounded', async () => {
    const node = await firstNode()
    const post = (from: string, body: string): Promise<{status: number; body: string}> => new Promise((resolve, reject) => {
      const req = request(`${metad.url}/agent`, {method: 'POST', localAddress: from, headers: {'content-type': 'application/json'}}, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => (text += c.toString()))
        res.on('end', () => resolve({status: res.statusCode ?? 0, body: text}))
      })
      req.on('error', reject)
      req.end(body)
    })
    const good = JSON.stringify({revision: 1, files: {}, errors: []})
    expect((await post('127.0.30.200', good)).status).toBe(404)
    const bad = await post(node.ip, '{"revision": "x"}')
    expect([bad.status, JSON.parse(bad.body).error.code]).toEqual([400, 'invalid-report'])
    expect((await post(node.ip, JSON.stringify({revision: 1, files: {}, errors: ['x'.repeat(300_000)]}))).status).toBe(413)
  }, SLOW)

  it('leaves the files alone for an address metad does not know, and keeps them while metad is away, catching up when it is back', async () => {
    const stranger = await once(metad, '127.0.30.200').catch((error: Error) => ({revision: 0, errors: [error.message]}))
    expect(stranger.errors.join('\n')).toMatch(/unknown-node/)
    writeSpec(3, 'ok')
    await run(registry, 'apply', specFile, '--hosts', hosts, '--registry-only')
    const node = await firstNode()
    expect((await once(metad, node.ip)).errors).toEqual([])
    const count = path.join(home(node.node_id), 'conf/count')
    const events: AgentEvent[] = []
    const agent = new Agent({metad: metad.url, bind: node.ip, log: (e) => events.push(e), pollSeconds: 5})
    const running = agent.run()
    try {
      await eventually('the agent to be in sync', async () => events.some((e) => e.event === 'unchanged'))
      const port = metad.port
      await metad.stop()
      await eventually('the agent to notice metad is away', async () => events.some((e) => e.event === 'unreachable'))
      expect(readFileSync(count, 'utf8')).toBe('3\n')
      await run(registry, 'scale', cluster, '--role', 'app', '--count', '4', '--hosts', hosts, '--registry-only')
      metad = await startMetad(registry.flags, [], port)
      await eventually('the agent to catch up once metad is back', async () => readFileSync(count, 'utf8') === '4\n', 30_000)
      expect(events.some((e) => e.event === 'reconnected')).toBe(true)
    } finally {
      await agent.stop()
      await running
    }
  }, SLOW)

  it('leaves the files as they are when a registered template fails to render, says why once, and waits for the next change', async () => {
    const node = await firstNode()
    const count = path.join(home(node.node_id), 'conf/count')
    expect((await once(metad, node.ip)).errors).toEqual([])
    const before = readFileSync(count, 'utf8')
    const events: AgentEvent[] = []
    const agent = new Agent({metad: metad.url, bind: node.ip, log: (e) => events.push(e), pollSeconds: 5})
    const running = agent.run()
    const store = await openStore({...registry.store, env: {}})
    const key = `${clusterPrefix(cluster)}cluster/templates/count.liquid`
    try {
      await eventually('the agent to be in sync', async () => events.some((e) => e.event === 'unchanged'))
      // A template that reads what its view does not have (strict variables), committed as a change (the revision key
      // rewritten with it) so metad serves it at a new revision.
      const revision = clusterRevisionKey(cluster)
      const current = (await store.get(revision))!.value
      await store.txn([], [{type: 'put', key, value: '{{ env.no_such_parameter }}\n'}, {type: 'put', key: revision, value: current}])
      await eventually('the agent to refuse the change', async () => events.some((e) => e.event === 'refused'))
      await new Promise((resolve) => setTimeout(resolve, 2000))
      const refused = events.filter((e) => e.event === 'refused')
      expect(refused.length, JSON.stringify(refused.slice(0, 2))).toBe(1)
      expect(refused[0]).toMatchObject({reason: expect.stringMatching(/count\.liquid.*no_such_parameter/)})
      expect(readFileSync(count, 'utf8')).toBe(before)
      expect((await agents())[node.node_id]).toMatchObject({state: 'failed'})
    } finally {
      await store.txn([], [{type: 'put', key, value: readFileSync(path.join(dir, 'count.liquid'), 'utf8')}, {type: 'put', key: clusterRevisionKey(cluster), value: (await store.get(clusterRevisionKey(cluster)))!.value}])
      await store.close()
      await agent.stop()
      await running
    }
  }, SLOW)
})

describe('shoal agent follows a linked cluster by itself', () => {
  const registry = embeddedRegistry()
  cleanups.push(() => registry.dispose())
  const dir = tempDir('linked')
  const base = ownClusterName('linked-db')
  const app = ownClusterName('linked-app')
  const hosts = inventory(dir, 31)

  /** `base` has a role db of `count` nodes; `app` links to it and lists the db nodes in a file whose reload is logged. */
  const writeSpecs = (count: number): {base: string; app: string} => {
    writeFileSync(path.join(dir, 'db.liquid'), 'db {{ self.sid }}\n')
    writeFileSync(path.join(dir, 'upstream.liquid'), '{% for h in links.db.hosts.db %}{{ h.node_id }} {{ h.ip }}\n{% endfor %}')
    const role = (name: string, n: number, files: string): string => `roles:\n  ${name}:\n    image: debian-12\n    cpu: 1\n    memory: 256Mi\n    disk: 1Gi\n    count: ${n}\n    scale: {min: 1, max: 3}\n    placement: {max_per_host: 1}\n    files:\n${files}`
    const baseFile = path.join(dir, 'base.yaml')
    const appFile = path.join(dir, 'app.yaml')
    writeFileSync(baseFile, `apiVersion: shoal/v1\nkind: Cluster\nname: ${base}\n${role('db', count, '      - {template: db.liquid, dest: conf/db}\n')}`)
    writeFileSync(appFile, `apiVersion: shoal/v1\nkind: Cluster\nname: ${app}\nlinks: {db: ${base}}\n${role('web', 1, '      - {template: upstream.liquid, dest: conf/upstream, reload: "echo reloaded >> reloads.log"}\n')}`)
    return {base: baseFile, app: appFile}
  }

  it('a registry-only scale of the cluster it links to reaches its files and reload, with no shoal command for its own cluster', async () => {
    const specs = writeSpecs(1)
    await run(registry, 'apply', specs.base, '--hosts', hosts, '--registry-only')
    await run(registry, 'apply', specs.app, '--hosts', hosts, '--registry-only')
    const metad = await startMetad(registry.flags)
    const node = (await readRegistered(registry, app)).nodes[0]!
    const home = path.join(HOME_ROOT, app, node.node_id)
    const agent = new Agent({metad: metad.url, bind: node.ip, log: () => undefined, pollSeconds: 5})
    const running = agent.run()
    try {
      const upstream = (): string => (existsSync(path.join(home, 'conf/upstream')) ? readFileSync(path.join(home, 'conf/upstream'), 'utf8') : '')
      const reloads = (): number => (existsSync(path.join(home, 'reloads.log')) ? readFileSync(path.join(home, 'reloads.log'), 'utf8').split('\n').filter(Boolean).length : 0)
      await eventually('the first pass and its reload', async () => upstream().split('\n').filter(Boolean).length === 1 && reloads() === 1)
      writeSpecs(3)
      await run(registry, 'scale', base, '--role', 'db', '--count', '3', '--hosts', hosts, '--registry-only')
      await eventually(() => `the app node listing 3 db nodes (has: ${upstream()})`, async () => upstream().split('\n').filter(Boolean).length === 3)
      expect(upstream()).toMatch(new RegExp(`^${base}-db-1 .*\\n${base}-db-2 .*\\n${base}-db-3 `))
      await eventually('its reload', async () => reloads() === 2)
    } finally {
      await agent.stop()
      await running
      await metad.stop()
    }
  }, SLOW)
})
