// Embedded registry with a long history: `shoal apply --registry-only` registering a new cluster on a state directory
// that saw 1,000 earlier operations (clusters created, their password changed twice, destroyed) against the same on a
// fresh directory, interleaved in one run; plus what the history left in state.json.
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parse, stringify} from 'yaml'
import {planAndRegister} from '../src/lifecycle/apply.js'
import type {GivenEnv} from '../src/plan/env.js'
import type {Operation} from '../src/plan/types.js'
import type {ClusterSpec} from '../src/spec/types.js'
import {openStore} from '../src/store/open.js'

const BIN = join(import.meta.dirname, '..', 'bin', 'run.js')

export interface HistoryResult {
  operations: number
  historyMs: number
  usedMs: number[]
  freshMs: number[]
  usedStateBytes: number
  freshStateBytes: number
  /** Copies of any password used during the history still found in the used state.json. */
  leftoverPasswords: number
}

function writeCluster(dir: string): {spec: string; hosts: string; parsed: ClusterSpec; templates: Map<string, string>} {
  mkdirSync(join(dir, 'templates'), {recursive: true})
  const template = 'port={{ env.port }}\npassword={{ env.password }}\n{% for h in hosts.app %}peer={{ h.ip }}\n{% endfor %}'
  writeFileSync(join(dir, 'templates', 'app.conf.liquid'), template)
  const parsed: ClusterSpec = {
    apiVersion: 'shoal/v1', kind: 'Cluster', name: 'bench-new',
    env: {port: {type: 'integer', default: 6379}, password: {type: 'string', secret: true}},
    roles: {app: {image: 'debian-12', cpu: 1, memory: '256Mi', disk: '1Gi', count: 3, files: [{template: 'templates/app.conf.liquid', dest: 'conf/app.conf'}]}},
  }
  // YAML, not JSON: `shoal apply` takes a file starting with `{` for a saved plan.
  writeFileSync(join(dir, 'cluster.yaml'), stringify(parsed))
  const hosts = Array.from({length: 3}, (_, i) => ({name: `h${i + 1}`, address: `127.0.4.${i + 1}`}))
  writeFileSync(join(dir, 'hosts.yaml'), stringify({apiVersion: 'shoal/v1', kind: 'Hosts', hosts}))
  return {spec: join(dir, 'cluster.yaml'), hosts: join(dir, 'hosts.yaml'), parsed, templates: new Map([['templates/app.conf.liquid', template]])}
}

const password = (i: number): GivenEnv => ({values: new Map([['password', {value: `history-pw-${i}`, source: '--set', fromText: true}]]), unset: []})

/** 1,000 registry operations in this process: per cycle, create a cluster, change its password twice, destroy it. */
async function history(state: string, spec: ClusterSpec, templates: Map<string, string>, inventory: {hosts: {name: string; address: string}[]}, operations: number): Promise<void> {
  const store = await openStore({state, env: {}})
  try {
    for (let i = 0; i < operations; i++) {
      const name = `old-${Math.floor(i / 4) % 5}`
      const step = i % 4
      const operation: Operation = step === 0 ? {kind: 'create'} : step === 3 ? {kind: 'destroy'} : {kind: 'apply'}
      await planAndRegister(store, {cluster: name, spec: {...spec, name}, templates, inventory, operation, lockWaitMs: 0, ...(step === 3 ? {} : {given: password(i)})})
    }
  } finally {
    await store.close()
  }
}

function timeCli(args: string[]): number {
  const start = process.hrtime.bigint()
  const result = spawnSync(process.execPath, [BIN, ...args], {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`shoal ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

async function destroy(state: string, spec: ClusterSpec, templates: Map<string, string>): Promise<void> {
  const store = await openStore({state, env: {}})
  try {
    await planAndRegister(store, {cluster: spec.name, spec, templates, inventory: {hosts: []}, operation: {kind: 'destroy'}, lockWaitMs: 0})
  } finally {
    await store.close()
  }
}

export async function benchHistory(operations = 1000, rounds = 7): Promise<HistoryResult> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-history-'))
  try {
    const {spec, hosts, parsed, templates} = writeCluster(dir)
    const used = join(dir, 'used')
    const inventory = parse(readFileSync(hosts, 'utf8')) as {hosts: {name: string; address: string}[]}
    const start = performance.now()
    await history(used, parsed, templates, inventory, operations)
    const historyMs = performance.now() - start
    const create = (state: string): string[] => ['apply', spec, '--hosts', hosts, '--registry-only', '--set', 'password=bench-pw', '--state', state]
    timeCli(create(join(dir, 'warm'))) // page cache and compile cache, for both alike
    const usedMs: number[] = []
    const freshMs: number[] = []
    let freshStateBytes = 0
    for (let round = 0; round < rounds; round++) {
      const fresh = join(dir, `fresh-${round}`)
      // Alternate which goes first, so a trend in machine load hits both alike.
      const pair = round % 2 === 0 ? ['used', 'fresh'] : ['fresh', 'used']
      for (const which of pair) {
        if (which === 'used') usedMs.push(timeCli(create(used)))
        else freshMs.push(timeCli(create(fresh)))
      }
      freshStateBytes = statSync(join(fresh, 'state.json')).size
      await destroy(used, parsed, templates)
    }
    const usedState = readFileSync(join(used, 'state.json'), 'utf8')
    const leftoverPasswords = usedState.match(/history-pw-\d+/g)?.length ?? 0
    // Measured after a last create, so both files hold one registered cluster.
    timeCli(create(used))
    return {operations, historyMs, usedMs, freshMs, usedStateBytes: statSync(join(used, 'state.json')).size, freshStateBytes, leftoverPasswords}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchHistory())
}
