// `npm run bench`: every benchmark measured side by side in one run, printed as numbers and ratios (never asserted in tests).
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

const BIN = join(import.meta.dirname, '..', 'bin', 'run.js')

function timeOnce(cmd: string, args: string[]): number {
  const start = process.hrtime.bigint()
  const result = spawnSync(cmd, args, {stdio: 'ignore'})
  if (result.status !== 0 && result.status !== 1) throw new Error(`${cmd} ${args.join(' ')} exited ${result.status}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Run the commands interleaved (so machine noise hits all alike) and return each one's median wall time in ms. */
function interleaved(commands: Record<string, [string, string[]]>, rounds: number): Record<string, number> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]))
  for (const [cmd, args] of Object.values(commands)) timeOnce(cmd, args) // warm the page cache
  for (let i = 0; i < rounds; i++) {
    for (const [name, [cmd, args]] of Object.entries(commands)) samples[name]!.push(timeOnce(cmd, args))
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]))
}

function coldStart(): void {
  const spec = join(import.meta.dirname, '..', 'specs', 'zookeeper.yaml')
  const t = interleaved(
    {
      'node -e 0': [process.execPath, ['-e', '0']],
      'shoal --version': [process.execPath, [BIN, '--version']],
      'shoal lint zookeeper.yaml': [process.execPath, [BIN, 'lint', spec]],
    },
    15,
  )
  const base = t['node -e 0']!
  console.log('\n## Cold start (median of 15, interleaved)')
  for (const [name, ms] of Object.entries(t)) console.log(`${name.padEnd(28)} ${ms.toFixed(0).padStart(5)} ms  ${(ms / base).toFixed(2)}x node`)
}

function generatedSpec(i: number): string {
  return `apiVersion: shoal/v1
kind: Cluster
name: gen-${i}
env:
  port: {type: integer, default: ${2000 + (i % 1000)}, minimum: 1, maximum: 65535}
roles:
  app:
    image: app-${i % 7}
    cpu: 1
    memory: 512Mi
    disk: 1Gi
    count: ${1 + (i % 5)}
    scale: {min: 1, max: 9}
    files:
      - template: app.conf.liquid
        dest: conf/app.conf
    services:
      start: {cmd: "bin/start", timeout: 30s}
    health_check: {cmd: "bin/check", interval: 5s}
update: {canaries: 1, max_in_flight: 25%}
`
}

function lintThroughput(): void {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-lint-'))
  try {
    const count = 1000
    for (let i = 0; i < count; i++) {
      const sub = join(dir, `s${Math.floor(i / 100)}`)
      mkdirSync(sub, {recursive: true})
      writeFileSync(join(sub, `spec-${i}.yaml`), generatedSpec(i))
      writeFileSync(join(sub, 'app.conf.liquid'), 'port={{ env.port }}\n{% for h in hosts.app %}peer={{ h.ip }}\n{% endfor %}id={{ self.sid }}\n')
    }
    const ms = median([0, 1, 2].map(() => timeOnce(process.execPath, [BIN, 'lint', dir])))
    const check = spawnSync(process.execPath, [BIN, 'lint', dir], {encoding: 'utf8'})
    console.log('\n## Lint throughput (one invocation, 1,000 generated specs, median of 3, process start included)')
    console.log(`${count} specs in ${ms.toFixed(0)} ms = ${((count / ms) * 1000).toFixed(0)} specs/s (exit ${check.status})`)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

async function planning(): Promise<void> {
  const {benchPlan} = await import('./plan.js')
  benchPlan(1000) // warm up the JIT and the template engine
  const runs = [0, 1, 2].map(() => benchPlan(10_000))
  const ms = median(runs.map((r) => r.ms))
  const small = median([0, 1, 2].map(() => benchPlan(1000).ms))
  console.log('\n## Plan (pure planner, median of 3)')
  console.log(`10,000 nodes: ${ms.toFixed(0)} ms (goal < 1000 ms: ${(ms / 1000).toFixed(2)}x of the budget); 1,000 nodes: ${small.toFixed(0)} ms; 10x the nodes costs ${(ms / small).toFixed(1)}x the time`)
}

async function registry(): Promise<void> {
  const {benchRegistryScale} = await import('./registry.js')
  const r = await benchRegistryScale(1000)
  console.log('\n## Registry: scale a registered 1,000-node cluster out by one (real etcd)')
  console.log(`register: ${r.treeKeys} keys in ${r.registerTxns} txns (${r.registerMs.toFixed(0)} ms)`)
  console.log(`scale out by one: ${r.scaleTxns} txn, ${r.scaleOps} etcd ops, ${r.scaleBytes} bytes written (${r.scaleMs.toFixed(0)} ms) = ${((r.scaleOps / r.treeKeys) * 100).toFixed(2)}% of the tree's keys`)
}

async function section(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run()
  } catch (err) {
    console.log(`\n## ${name}: failed: ${(err as Error).message}`)
    process.exitCode = 1
  }
}

console.log(`shoal benchmarks — node ${process.version}, ${execFileSync('nproc', {encoding: 'utf8'}).trim()} cores, ${new Date().toISOString()}`)
coldStart()
lintThroughput()
await section('Plan', planning)
await section('Registry', registry)
