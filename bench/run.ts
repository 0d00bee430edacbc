// `npm run bench`: every benchmark measured side by side in one run, printed as numbers and ratios (never asserted in tests).
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {formatCost, type StepCost} from './breakdown.js'

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

async function embeddedHistory(): Promise<void> {
  const {benchHistory} = await import('./history.js')
  const r = await benchHistory()
  const used = median(r.usedMs)
  const fresh = median(r.freshMs)
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`
  console.log(`\n## Embedded registry: register a new cluster (shoal apply --registry-only, CLI start to exit) after ${r.operations.toLocaleString('en')} earlier operations on the same state directory vs a fresh one (median of ${r.usedMs.length}, interleaved)`)
  console.log(`history: ${r.operations} operations (create, change the password twice, destroy; 5 cluster names) in ${(r.historyMs / 1000).toFixed(1)} s`)
  console.log(`used state dir   ${used.toFixed(0).padStart(5)} ms  (runs: ${r.usedMs.map((v) => v.toFixed(0)).join(', ')})`)
  console.log(`fresh state dir  ${fresh.toFixed(0).padStart(5)} ms  (runs: ${r.freshMs.map((v) => v.toFixed(0)).join(', ')})`)
  console.log(`used / fresh = ${(used / fresh).toFixed(2)} (goal ≤ 1.2); state.json with one cluster registered: used ${kib(r.usedStateBytes)}, fresh ${kib(r.freshStateBytes)}; passwords of the history left in it: ${r.leftoverPasswords}`)
}

const ms = (value: number): string => `${(value / 1000).toFixed(1)} s`
const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

/** Issues 4 and 5: one sandbox of 51 hosts serves both sections; it is stopped whatever happens. */
async function lifecycle(agentsOnly = false): Promise<void> {
  const {startLifecycleBench} = await import('./lifecycle.js')
  const rounds = Number(process.env.SHOAL_BENCH_LIFECYCLE_ROUNDS ?? 3)
  let bench: Awaited<ReturnType<typeof startLifecycleBench>> | undefined
  let pushLag: {p50: number; p99: number; max: number; count: number} | undefined
  try {
    if (agentsOnly) {
      // The push path's figure comes from the same run: one create and its scale-out, then the agents.
      bench = await startLifecycleBench(50)
      await bench.create(1, [])
      pushLag = (await bench.scaleOut()).reloadLagMs
      await agentsSection(bench, rounds, pushLag)
      return
    }
    await section('Lifecycle: create', async () => {
      bench = await startLifecycleBench(50)
      const load = loadAverage()
      // SHOAL_BENCH_ANSIBLE=50 (comma-separated forks; empty = none) narrows the Ansible runs, the slowest part.
      const forks = process.env.SHOAL_BENCH_ANSIBLE?.split(',').filter(Boolean).map(Number)
      const r = await bench.create(rounds, forks)
      console.log(`\n## Lifecycle: shoal create of ${r.nodes} sandbox nodes, init and start each \`sleep 1\` (median of ${r.rounds} interleaved rounds; load average ${load} → ${loadAverage()} on ${cores} cores: noisy)`)
      console.log(`yardstick: ${r.nodes} parallel OpenSSH clients, \`sleep 1; sleep 1\` each   ${ms(r.shellMs)}  (runs: ${r.shellRuns.map(ms).join(', ')})`)
      console.log(`shoal create (CLI start to exit, embedded registry)          ${ms(r.shoalMs)}  (runs: ${r.shoalRuns.map(ms).join(', ')})`)
      console.log(`shoal / OpenSSH = ${(r.shoalMs / r.shellMs).toFixed(2)} (goal ≤ 1.1)`)
      printCpu(r.shoalCpu, r.shellCpu)
      printSteps(r.shoalSteps)
      console.log(`one command on a sandbox host over an open connection: ${r.commandMs.toFixed(0)} ms in the connection's shell, ` +
        `${r.sessionCommandMs.toFixed(0)} ms on a new session (+ login shell); shoal runs 3 per new node (files, init, start), the yardstick 1`)
      console.log(`shoal's profile by module (one more create under node --cpu-prof, not timed; sample intervals are wall time, so on a loaded machine read the shares, not the seconds): ${r.profile.slice(0, 10).map((p) => `${p.module} ${(p.ms / 1000).toFixed(2)} s`).join(', ')}`)
      for (const a of r.ansible) {
        if (a.ms === undefined) console.log(`ansible-playbook forks=${a.forks}: not measured: ${a.error}`)
        else console.log(`ansible-playbook forks=${String(a.forks).padEnd(2)} (pipelining, no facts, two \`command: sleep 1\` tasks)  ${ms(a.ms)}  = ${(a.ms / r.shoalMs).toFixed(2)}x shoal's time${a.forks === r.nodes ? ' (goal: ≥ 4x)' : ''}`)
      }
    })
    await section('Lifecycle: scale out', async () => {
      if (!bench) throw new Error('no sandbox: the create section failed')
      const load = loadAverage()
      const r = await bench.scaleOut()
      console.log(`\n## Lifecycle: scale the 50-node cluster out by one, every script \`sleep 1\` (median of ${r.rounds} interleaved rounds, one per created cluster; load average ${load} → ${loadAverage()}: noisy)`)
      console.log(`yardstick: OpenSSH, one ControlMaster connection per host: reload on 50, init + start on 1, scale_out on 50   ${ms(r.shellMs)}  (runs: ${r.shellRuns.map(ms).join(', ')})`)
      console.log(`shoal scale --add 1 (CLI start to exit)                                                          ${ms(r.shoalMs)}  (runs: ${r.shoalRuns.map(ms).join(', ')})`)
      console.log(`shoal / OpenSSH = ${(r.shoalMs / r.shellMs).toFixed(2)} (goal ≤ 1.2)`)
      printCpu(r.shoalCpu, r.shellCpu)
      printSteps(r.shoalSteps)
      console.log(`only what changed: members.conf replaced on ${r.membersRewritten}/${r.existing} existing nodes and reloaded exactly once on ${r.membersReloadedOnce}/${r.existing}; ` +
        `self.conf (unchanged) replaced ${r.selfRewritten} times, reloaded ${r.selfReloads} times; reloads on the new nodes: ${r.newNodeReloads}` +
        (r.membersRewritten === r.existing && r.membersReloadedOnce === r.existing && r.selfRewritten + r.selfReloads + r.newNodeReloads === 0 ? ' (as expected)' : ' (NOT as expected)'))
      const lag = r.reloadLagMs
      pushLag = lag
      console.log(`registry commit of the scale-out → reload on each existing node: p50 ${ms(lag.p50)}, p99 ${ms(lag.p99)}, max ${ms(lag.max)} (${lag.count} reloads; goal p99 ≤ 2 s)`)
    })
    if (bench && pushLag) await agentsSection(bench, rounds, pushLag)
    await section('Lifecycle: transport candidates', async () => {
      if (!bench) throw new Error('no sandbox: the create section failed')
      const {CANDIDATE_WORK} = await import('./lifecycle.js')
      const load = loadAverage()
      const list = await bench.candidates(rounds)
      const w = CANDIDATE_WORK
      console.log(`\n## Lifecycle: transport candidates — ${w.hosts} hosts at once, each: connect, ${w.commands} commands, one ${w.fileBytes / 1024} KiB file, close (median of ${rounds} interleaved rounds; load average ${load} → ${loadAverage()})`)
      console.log(`${'candidate'.padEnd(48)} ${'wall'.padStart(7)} ${'shoal CPU'.padStart(10)} ${'sshd CPU'.padStart(9)} sessions round-trips  KiB out/in`)
      for (const c of list) {
        console.log(`${c.name.padEnd(48)} ${ms(c.wallMs).padStart(7)} ${ms(c.clientCpuMs).padStart(10)} ${ms(c.sshdCpuMs).padStart(9)} ${String(c.sessions).padStart(8)} ${String(c.roundTrips).padStart(11)}  ${(c.bytesOut / 1024).toFixed(0)}/${(c.bytesIn / 1024).toFixed(0)}`)
      }
    })
  } finally {
    await bench?.stop()
  }
}

/** Issue 13: the same 50-node cluster with agents, beside the push path's figures from this run. */
async function agentsSection(bench: import('./lifecycle.js').LifecycleBench, rounds: number, push: {p50: number; p99: number; max: number; count: number}): Promise<void> {
  await section('Lifecycle: agents', async () => {
    const load = loadAverage()
    const idleSeconds = Number(process.env.SHOAL_BENCH_AGENT_IDLE_S ?? 60)
    const r = await bench.agents(rounds, idleSeconds)
    console.log(`\n## Lifecycle: the 50-node cluster with agents (agent: true, metad on the sandbox gateway), scaled out by one ${r.rounds} times (load average ${load} → ${loadAverage()})`)
    console.log(`registry commit → reload on each existing node: agents p50 ${ms(r.reloadLagMs.p50)}, p99 ${ms(r.reloadLagMs.p99)}, max ${ms(r.reloadLagMs.max)} (${r.reloadLagMs.count} reloads; goal p99 ≤ 0.5 s); ` +
      `SSH push in this run: p50 ${ms(push.p50)}, p99 ${ms(push.p99)}, max ${ms(push.max)} (${push.count} reloads)`)
    console.log(`  each scale-out, p50 / max: ${r.reloadLagPerRoundMs.map((x) => `${ms(x.p50)} / ${ms(x.max)}`).join(', ')}`)
    console.log(`  the floor: the same ${r.nodes} reloads forked at once by one Perl process, no agent, metad or shoal at all — first fork → last reload: ${r.reloadFloorMs.map((v) => `${v.toFixed(0)} ms`).join(', ')}`)
    console.log(`members.conf reloaded exactly once on ${r.reloadedOnce}/${r.existing} existing nodes${r.reloadedOnce === r.existing ? ' (as expected)' : ' (NOT as expected)'}; scale --add 1 with agents, CLI start to exit: ${r.scaleRuns.map(ms).join(', ')}; create of 50 with agents ${ms(r.createMs)}`)
    console.log(`  where the first scale --add 1 spent its time: ${r.scaleSteps.map((s) => `${s.title.trim()} ${ms(s.ms)}`).join('; ')}`)
    console.log(`idle, nothing changing, ${r.idle.seconds} s: ${r.idle.agentsCpuS.toFixed(2)} CPU s for all ${r.nodes} agents and their ${r.idle.drivers} command drivers (${(r.idle.agentsCpuS / r.nodes * 1000 / r.idle.seconds).toFixed(2)} ms per agent per second; no heartbeat: each agent answers its poll's timeout once a minute), metad ${r.idle.metadCpuS.toFixed(2)} CPU s`)
    console.log(`agent RSS: median ${r.rssMb.median.toFixed(0)} MB, max ${r.rssMb.max.toFixed(0)} MB (goal ≤ 60 MB each); of it private to the agent (not the Node.js binary's pages every Node process shares): median ${r.privateMb.median.toFixed(0)} MB, max ${r.privateMb.max.toFixed(0)} MB; its command driver (Perl): RSS median ${r.driverRssMb.median.toFixed(1)} MB, max ${r.driverRssMb.max.toFixed(1)} MB`)
  })
}

/** Issue 12: metad under 1,000 long-polls over a 1,000-node registry in a real etcd. */
async function metad(): Promise<void> {
  const {benchMetad, percentile} = await import('./metad.js')
  const load = loadAverage()
  const r = await benchMetad(Number(process.env.SHOAL_BENCH_METAD_ROUNDS ?? 20))
  const f = (v: number): string => `${v.toFixed(0)} ms`
  console.log(`\n## metad: ${r.polls} long-polls from distinct 127.0.x.x addresses, ${r.nodes}-node registry in etcd (100 clusters of 10, 99 linking to one; load average ${load} → ${loadAverage()} on ${cores} cores)`)
  console.log(`commit → last woken caller answered (${r.rounds} commits, each waking all ${r.polls}): p50 ${f(percentile(r.lastWokenMs, 50))}, p99 ${f(percentile(r.lastWokenMs, 99))}, max ${f(Math.max(...r.lastWokenMs))} (goal p99 ≤ 100 ms)`)
  console.log(`  where the time goes (medians per commit): the commit itself ${f(percentile(r.commitMs, 50))}; first answer at ${f(percentile(r.firstWokenMs, 50))}, last at ${f(percentile(r.lastWokenMs, 50))}: ${r.polls} answers in ${f(percentile(r.lastWokenMs, 50) - percentile(r.firstWokenMs, 50))}`)
  console.log(`  every woken caller: p50 ${f(percentile(r.eachWokenMs, 50))}, p99 ${f(percentile(r.eachWokenMs, 99))} (${r.eachWokenMs.length} answers; coalescing quiet period 5 ms included)`)
  console.log(`  each commit, last caller answered: ${r.lastWokenMs.map((v) => v.toFixed(0)).join(', ')} ms; the ${r.coldLastWokenMs.length} commits before them, just after metad started (not counted above): ${r.coldLastWokenMs.map((v) => v.toFixed(0)).join(', ')} ms`)
  console.log(`  a commit to one linked cluster of 10 nodes woke ${r.wokenByOneCluster} callers`)
  console.log(`metad RSS with the ${r.polls} polls open: ${r.rssMb.toFixed(0)} MB (${r.rssIdleMb.toFixed(0)} MB before them; goal ≤ 150 MB)`)
  console.log(`plain GET /self (${r.bodyBytes}-byte answers, ${r.getConnections} keep-alive connections from node addresses, client in the same 2 cores): ${r.getPerSecond.toFixed(0)} GET/s (goal ≥ 5,000)`)
  console.log(`  yardstick: a bare Node http server answering ${r.bodyBytes} fixed bytes, same client: ${r.bare.getPerSecond.toFixed(0)} GET/s; metad / bare = ${(r.getPerSecond / r.bare.getPerSecond).toFixed(2)}`)
  console.log(`metad's own CPU: ${r.cpuPerRoundMs.toFixed(0)} ms per commit waking ${r.polls} callers (answers and the re-polls; the load generator: ${r.clientCpuPerRoundMs.toFixed(0)} ms from the commit to its last answer read), ${r.cpuPerGetUs.toFixed(0)} µs per GET /self ` +
    `= ${(1e6 / r.cpuPerGetUs).toFixed(0)} GET/s per core it gets (the bare server: ${r.bare.cpuPerGetUs.toFixed(0)} µs)`)
}

/** Issue 14: the examples scaled under a steady stream of real client operations; what the clients saw. */
async function scaling(): Promise<void> {
  const {benchHaproxyScaling, benchMariadbScaling, benchRedisScaling, benchZookeeperScaling, printScaling} = await import('./scaling.js')
  const load = loadAverage()
  const rows = [...await benchHaproxyScaling(), ...await benchRedisScaling(), ...await benchMariadbScaling(), ...await benchZookeeperScaling()]
  console.log(`\n## Scaling under load: each example scaled through shoal on sandbox hosts while clients keep working (load average ${load} → ${loadAverage()})`)
  printScaling(rows)
}

function printCpu(shoal: {clientMs: number; sshdMs: number}, shell: {clientMs: number; sshdMs: number}): void {
  console.log(`CPU (median per run): shoal ${ms(shoal.clientMs)} + its hosts' sshd and commands ${ms(shoal.sshdMs)}; ` +
    `yardstick: OpenSSH clients ${ms(shell.clientMs)} + sshd and commands ${ms(shell.sshdMs)}`)
}

function printSteps(steps: Array<{title: string; ms: number; cost?: StepCost}>): void {
  console.log('where shoal spent its time (the run closest to the median): wall time per step, and what the transport did in it')
  for (const step of steps) {
    console.log(`  ${ms(step.ms).padStart(7)}  ${step.title}`)
    if (step.cost) console.log(`           ${formatCost(step.cost)}`)
  }
}

async function section(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run()
  } catch (err) {
    console.log(`\n## ${name}: failed: ${(err as Error).message}`)
    process.exitCode = 1
  }
}

const cores = execFileSync('nproc', {encoding: 'utf8'}).trim()
console.log(`shoal benchmarks — node ${process.version}, ${cores} cores, ${new Date().toISOString()}`)
// `npm run bench -- lifecycle` (or SHOAL_BENCH_ONLY=lifecycle) reruns just the sandbox sections (e.g. when the machine is quieter);
// `npm run bench -- metad` (or SHOAL_BENCH_ONLY=metad) runs the metad section alone; `-- history` (npm run bench:history)
// the embedded registry's long-history section; `-- agents` one push create + scale-out and the agents section;
// `-- scaling` the examples scaled under client load.
const only = process.env.SHOAL_BENCH_ONLY ?? process.argv[2]
if (only === undefined) {
  coldStart()
  lintThroughput()
  await section('Plan', planning)
  await section('Registry', registry)
}
if (only === undefined || only === 'history') await section('Embedded registry history', embeddedHistory)
if (only === undefined || only === 'lifecycle') await lifecycle()
if (only === 'agents') await lifecycle(true)
if (only === undefined || only === 'metad') await section('metad', metad)
if (only === undefined || only === 'scaling') await section('Scaling under load', scaling)
