// Lifecycle benchmarks on sandbox hosts (issues 4 and 5): `shoal create` of 50 nodes and a scale-out by one, each
// timed against plain parallel OpenSSH clients doing the same commands in the same run (and create against Ansible).
import {spawn, spawnSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {parse, stringify} from 'yaml'
import type {HostsFile} from '../src/inventory/types.js'
import {EmbeddedStore} from '../src/store/embedded/embedded-store.js'
import {SshTransport, type SshTransportOptions} from '../src/transport/ssh.js'
import {startSandbox, type TestSandbox} from '../test/support/sandbox.js'
import {childrenCpuMs, costBetween, profileByModule, readTimeline, settledSshdCpuMs, type Sample, type StepCost} from './breakdown.js'

const REPO = path.resolve(import.meta.dirname, '..')
const FANOUT = path.join(import.meta.dirname, 'ssh-fanout.sh')
const ROLE = 'app'
/** Seconds every lifecycle script sleeps. */
const SLEEP = 1
/** The member list's reload: it marks when it ran, then takes a second as a real reload might. */
const MEMBER_RELOAD = `date +%s%N >> "$SHOAL_HOME/reloads-members" && sleep ${SLEEP}`
/** A command that takes longer than this is killed and the benchmark fails, instead of hanging `npm run bench`. */
const RUN_LIMIT_MS = 180_000

export interface Timed {
  ms: number
}

/** One line of a command's stdout and when it arrived (ms since the command was spawned). */
export interface TimedLine {
  at: number
  line: string
}

export interface StepTime {
  title: string
  ms: number
  /** What the transport did in the step and shoal's CPU in it (steps that reach hosts). */
  cost?: StepCost
}

/** Per run: CPU of the client side (shoal, or the OpenSSH clients) and of the hosts' sshd and what it ran. */
export interface RunCpu {
  clientMs: number
  sshdMs: number
}

export interface CreateResult {
  nodes: number
  rounds: number
  /** Medians over the rounds, ms. */
  shoalMs: number
  shellMs: number
  shoalRuns: number[]
  shellRuns: number[]
  /** Where the median-closest shoal run spent its time: CLI start until the first step, each step, and the end. */
  shoalSteps: StepTime[]
  ansible: {forks: number; ms?: number; error?: string}[]
  /** One command (`true`) on a sandbox host over an open connection, median of 15: in the shell / on a session of its own. */
  commandMs: number
  sessionCommandMs: number
  /** Medians over the rounds. */
  shoalCpu: RunCpu
  shellCpu: RunCpu
  /** shoal's CPU in one more (profiled) create, by module. */
  profile: Array<{module: string; ms: number}>
}

export interface ScaleResult {
  rounds: number
  shoalMs: number
  shellMs: number
  shoalRuns: number[]
  shellRuns: number[]
  shoalSteps: StepTime[]
  /** Existing nodes whose member list was replaced (new inode) / reloaded exactly once; expected: all of them. */
  existing: number
  membersRewritten: number
  membersReloadedOnce: number
  /** Files that did not change and must not be touched: replaced / reloaded anywhere (expected 0 and 0). */
  selfRewritten: number
  selfReloads: number
  /** Reloads on the new node (its files are placed before it starts: expected 0). */
  newNodeReloads: number
  shoalCpu: RunCpu
  shellCpu: RunCpu
  /** Registry commit of the scale-out → each existing node's reload, ms, over every round. */
  reloadLagMs: {p50: number; p99: number; max: number; count: number}
}

export interface AgentsResult {
  nodes: number
  rounds: number
  createMs: number
  /** Registry commit of the scale-out → each existing node's reload (its agent's), ms, over every round. */
  reloadLagMs: {p50: number; p99: number; max: number; count: number}
  /** The scale-out command, CLI start to exit, per round. */
  scaleRuns: number[]
  /** Existing nodes whose members.conf was reloaded exactly once per round (expected: all of them). */
  reloadedOnce: number
  existing: number
  /** CPU seconds of all agents with their command drivers (and of metad) over the idle period, with nothing changing. */
  idle: {seconds: number; agentsCpuS: number; drivers: number; metadCpuS: number}
  /** The same lag, each scale-out on its own. */
  reloadLagPerRoundMs: Array<{p50: number; max: number}>
  /**
   * The floor under the lag: the same reload command of every existing node forked at once by one small process
   * (Perl, as the agents' drivers fork them) with no agent, metad or shoal work at all — start → last reload's mark, ms,
   * per try. The reloads alone take this long on the machine's cores.
   */
  reloadFloorMs: number[]
  /** Where the first scale-out's time went, step by step (the CLI's own step lines). */
  scaleSteps: StepTime[]
  /** Resident memory of each agent process, MB. */
  rssMb: {median: number; max: number}
  /**
   * Where it goes: of each agent's RSS, the pages only it uses (its heap, its stacks) — the rest are the Node.js
   * binary's code and data pages, the same physical pages for every Node process on the host; and the RSS of each
   * agent's command driver (a Perl process).
   */
  privateMb: {median: number; max: number}
  driverRssMb: {median: number; max: number}
}

/** A started sandbox with the spec and inventories the benchmarks use; `stop()` tears everything down. */
export interface LifecycleBench {
  /** `rounds` interleaved shoal/yardstick pairs, each creating its own cluster; then Ansible once per forks value (none: skipped). */
  create(rounds: number, ansibleForks?: number[]): Promise<CreateResult>
  /** Scale every cluster `create` made out by one node (one round per cluster). */
  scaleOut(): Promise<ScaleResult>
  /** The transport's candidate settings, each on the same work (see `candidates`). */
  candidates(rounds?: number): Promise<Candidate[]>
  /** A cluster of the same shape with agents (and metad on the sandbox gateway): idle cost, then `rounds` scale-outs by one. */
  agents(rounds: number, idleSeconds?: number): Promise<AgentsResult>
  stop(): Promise<void>
}

/** 51 sandbox hosts: clusters are created on the first 50; the 51st receives the node each scale-out adds. */
export async function startLifecycleBench(nodes = 50, log: (line: string) => void = () => undefined): Promise<LifecycleBench> {
  const work = mkdtempSync(path.join(tmpdir(), 'shoal-bench-lifecycle-'))
  let sandbox: TestSandbox | undefined
  // A Ctrl-C must still stop the sshd servers: exiting runs the sandbox's exit hook.
  const interrupted = (): void => process.exit(130)
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    const bin = await privateCli(work)
    log(`starting ${nodes + 1} sandbox hosts`)
    sandbox = await startSandbox(nodes + 1)
    const sb = sandbox
    const all = parse(readFileSync(sb.state.inventory, 'utf8')) as HostsFile
    const createInventory = path.join(work, `hosts-${nodes}.yaml`)
    writeFileSync(createInventory, stringify({...all, hosts: all.hosts.slice(0, nodes)}))
    const addresses = sb.state.hosts.map((h) => h.address)
    const srvOf = new Map(sb.state.hosts.map((h) => [h.address, path.join(h.dir, 'srv')]))
    const ssh = {key: sb.state.key, knownHosts: sb.state.knownHosts, port: sb.port}
    const sshdPids = sb.state.hosts.map((h) => h.pid)
    const clusters: Array<{name: string; state: string}> = []

    return {
      async create(rounds, ansibleForks = [5, nodes]) {
        const shoalRuns: number[] = []
        const shellRuns: number[] = []
        const runs: ShoalRun[] = []
        const shoalCpu: RunCpu[] = []
        const shellCpu: RunCpu[] = []
        // Interleaved, so load from other work on the machine hits both alike.
        for (let round = 1; round <= rounds; round++) {
          let sshd = await settledSshdCpuMs(sshdPids)
          const shell = fanout(ssh, [{addresses: addresses.slice(0, nodes), command: `sleep ${SLEEP}; sleep ${SLEEP}`}], '')
          shellRuns.push(shell.ms)
          shellCpu.push({clientMs: shell.cpuMs, sshdMs: -sshd + (sshd = await settledSshdCpuMs(sshdPids))})
          const cluster = {name: `bench-${round}`, state: path.join(work, `state-${round}`)}
          const run = await shoal(bin, ['create', writeSpec(work, cluster.name, nodes), '--hosts', createInventory, '--state', cluster.state])
          shoalCpu.push({clientMs: run.cpuMs, sshdMs: (await settledSshdCpuMs(sshdPids)) - sshd})
          clusters.push(cluster)
          shoalRuns.push(run.ms)
          runs.push(run)
          log(`create round ${round}: shoal ${run.ms.toFixed(0)} ms vs shell ${shellRuns.at(-1)!.toFixed(0)} ms; ${stepTimes(run).map((st) => `${st.title.trim()} ${st.ms.toFixed(0)}`).join(', ')}`)
        }
        // One more create, profiled (not timed: the profiler costs CPU): shoal's CPU by module.
        const profileDir = path.join(work, 'cpu-profile')
        await shoal(bin, ['create', writeSpec(work, 'bench-profiled', nodes), '--hosts', createInventory, '--state', path.join(work, 'state-profiled')], ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])
        const profile = profileByModule(profileDir)
        const ansible: CreateResult['ansible'] = []
        const ready = ansibleForks.length > 0 ? ansibleReady(log) : true
        for (const forks of ansibleForks) {
          if (ready !== true) {
            ansible.push({forks, error: ready})
            continue
          }
          try {
            ansible.push({forks, ms: runAnsible(work, sb, addresses.slice(0, nodes), forks).ms})
            log(`ansible forks=${forks}: ${ansible.at(-1)!.ms!.toFixed(0)} ms`)
          } catch (error) {
            ansible.push({forks, error: (error as Error).message})
          }
        }
        const pick = closestToMedian(shoalRuns)
        const commandMs = await commandCost(sb)
        const sessionCommandMs = await commandCost(sb, {persistentShell: false})
        return {
          commandMs, sessionCommandMs, nodes, rounds, shoalMs: median(shoalRuns), shellMs: median(shellRuns), shoalRuns, shellRuns, shoalSteps: stepTimes(runs[pick]!), ansible,
          shoalCpu: medianCpu(shoalCpu), shellCpu: medianCpu(shellCpu), profile,
        }
      },

      async scaleOut() {
        if (clusters.length === 0) throw new Error('scaleOut needs the clusters create() made')
        const shoalRuns: number[] = []
        const shellRuns: number[] = []
        const runs: ShoalRun[] = []
        const shoalCpu: RunCpu[] = []
        const shellCpu: RunCpu[] = []
        const lags: number[] = []
        let membersRewritten = 0
        let membersReloadedOnce = 0
        let selfRewritten = 0
        let selfReloads = 0
        let newNodeReloads = 0
        let existing = 0
        const newHost = addresses[nodes]!
        for (const [round, cluster] of clusters.entries()) {
          // The yardstick: reload on the existing nodes, init + start on the new one, scale_out on the existing ones,
          // one reused connection per host (ControlMaster), as shoal does.
          const control = mkdtempSync(path.join(tmpdir(), 'sbc-'))
          let sshd = await settledSshdCpuMs(sshdPids)
          let clientMs = 0
          try {
            const shell = fanout(ssh, [
              {addresses: addresses.slice(0, nodes), command: `sleep ${SLEEP}`},
              {addresses: [newHost], command: `sleep ${SLEEP}; sleep ${SLEEP}`},
              {addresses: addresses.slice(0, nodes), command: `sleep ${SLEEP}`},
            ], control)
            shellRuns.push(shell.ms)
            clientMs = shell.cpuMs
          } finally {
            // The persisted masters' CPU is counted once they exit and are reaped (by nobody we wait for: not counted).
            closeMasters(control)
          }
          shellCpu.push({clientMs, sshdMs: -sshd + (sshd = await settledSshdCpuMs(sshdPids))})
          const before = nodeFiles(srvOf, cluster.name)
          const scaleStarted = Date.now()
          const run = await shoal(bin, ['scale', cluster.name, '--role', ROLE, '--add', '1', '--hosts', sb.state.inventory, '--state', cluster.state])
          shoalCpu.push({clientMs: run.cpuMs, sshdMs: (await settledSshdCpuMs(sshdPids)) - sshd})
          shoalRuns.push(run.ms)
          runs.push(run)
          log(`scale round ${round + 1}: shoal ${run.ms.toFixed(0)} ms vs shell ${shellRuns.at(-1)!.toFixed(0)} ms`)

          const commitAt = await registerCommitTime(cluster.state, cluster.name, scaleStarted)
          const after = nodeFiles(srvOf, cluster.name)
          for (const [node, was] of before) {
            const now = after.get(node)
            if (!now) throw new Error(`node ${node} lost its files in the scale-out`)
            existing++
            if (now.membersInode !== was.membersInode) membersRewritten++
            if (now.selfInode !== was.selfInode) selfRewritten++
            const reloads = now.memberReloads.slice(was.memberReloads.length)
            if (reloads.length === 1) membersReloadedOnce++
            selfReloads += now.selfReloads.length - was.selfReloads.length
            for (const ns of reloads) lags.push(Number(ns / 1_000_000n) - commitAt)
          }
          const added = [...after.keys()].filter((n) => !before.has(n))
          if (added.length !== 1) throw new Error(`the scale-out of ${cluster.name} added ${added.length} nodes, not 1`)
          newNodeReloads += after.get(added[0]!)!.memberReloads.length + after.get(added[0]!)!.selfReloads.length
        }
        const pick = closestToMedian(shoalRuns)
        const sorted = [...lags].sort((a, b) => a - b)
        return {
          rounds: clusters.length, shoalMs: median(shoalRuns), shellMs: median(shellRuns), shoalRuns, shellRuns, shoalSteps: stepTimes(runs[pick]!),
          shoalCpu: medianCpu(shoalCpu), shellCpu: medianCpu(shellCpu),
          existing, membersRewritten, membersReloadedOnce, selfRewritten, selfReloads, newNodeReloads,
          reloadLagMs: {p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? NaN, count: sorted.length},
        }
      },

      candidates: (rounds = 3) => candidates(sb, sshdPids, rounds),

      async agents(rounds, idleSeconds = 60) {
        const cluster = {name: 'bench-agents', state: path.join(work, 'state-agents')}
        const metad = await startMetadProcess(bin, sb.state.network!.gateway, cluster.state)
        try {
          const create = await shoal(bin, ['create', writeSpec(work, cluster.name, nodes, true), '--hosts', createInventory, '--state', cluster.state, '--metad', metad.url])
          log(`agents: created ${nodes} nodes in ${create.ms.toFixed(0)} ms`)
          const agentPids = (): number[] => processesMatching((cmd) => cmd.includes('agent.mjs') && cmd.includes(`--node ${cluster.name}-`) && !cmd.includes('--once'))
          const pids = agentPids()
          if (pids.length !== nodes) throw new Error(`expected ${nodes} agent processes, found ${pids.length}`)
          // Idle: nothing changes; the agents hold their long-polls (no heartbeat).
          await new Promise((resolve) => setTimeout(resolve, 5000))
          // Each agent with its command driver (a child that stays): both are what an idle agent costs.
          const withDrivers = [...pids, ...pids.flatMap(childrenOf)]
          const before = cpuSeconds(withDrivers)
          const metadBefore = cpuSeconds([metad.pid])
          await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
          const idle = {seconds: idleSeconds, agentsCpuS: cpuSeconds(withDrivers) - before, drivers: withDrivers.length - pids.length, metadCpuS: cpuSeconds([metad.pid]) - metadBefore}
          const rss = pids.map(rssMb).sort((a, b) => a - b)
          const own = pids.map(privateMb).sort((a, b) => a - b)
          const drivers = pids.flatMap(childrenOf).map(rssMb).sort((a, b) => a - b)
          log(`agents: idle ${idleSeconds} s: ${idle.agentsCpuS.toFixed(2)} CPU s for ${nodes} agents; RSS median ${median(rss).toFixed(0)} MB`)
          const lags: number[] = []
          const perRound: Array<{p50: number; max: number}> = []
          const scaleRuns: number[] = []
          let scaleSteps: StepTime[] = []
          let reloadedOnce = 0
          let existing = 0
          for (let round = 1; round <= rounds; round++) {
            const before = nodeFiles(srvOf, cluster.name)
            const roundFrom = lags.length
            const started = Date.now()
            const run = await shoal(bin, ['scale', cluster.name, '--role', ROLE, '--add', '1', '--hosts', sb.state.inventory, '--state', cluster.state])
            scaleRuns.push(run.ms)
            if (round === 1) scaleSteps = stepTimes(run)
            const commitAt = await registerCommitTime(cluster.state, cluster.name, started)
            const after = nodeFiles(srvOf, cluster.name)
            for (const [node, was] of before) {
              const reloads = after.get(node)!.memberReloads.slice(was.memberReloads.length)
              existing++
              if (reloads.length === 1) reloadedOnce++
              for (const ns of reloads) lags.push(Number(ns / 1_000_000n) - commitAt)
            }
            const roundLags = lags.slice(roundFrom).sort((a, b) => a - b)
            perRound.push({p50: percentile(roundLags, 0.5), max: roundLags.at(-1) ?? NaN})
            log(`agents: scale round ${round}: ${run.ms.toFixed(0)} ms`)
            // Back to `nodes` for the next round (the added node's host is the only free one).
            await shoal(bin, ['scale', cluster.name, '--role', ROLE, '--count', String(nodes), '--hosts', sb.state.inventory, '--state', cluster.state])
          }
          await shoal(bin, ['destroy', cluster.name, '--yes', '--state', cluster.state])
          const reloadFloorMs = [1, 2, 3].map(() => reloadFloor(work, nodes))
          const sorted = [...lags].sort((a, b) => a - b)
          return {
            nodes, rounds, createMs: create.ms, scaleRuns, reloadedOnce, existing, idle,
            reloadLagMs: {p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? NaN, count: sorted.length},
            reloadLagPerRoundMs: perRound,
            reloadFloorMs, scaleSteps,
            rssMb: {median: median(rss), max: rss.at(-1) ?? NaN},
            privateMb: {median: median(own), max: own.at(-1) ?? NaN},
            driverRssMb: {median: drivers.length ? median(drivers) : NaN, max: drivers.at(-1) ?? NaN},
          }
        } finally {
          metad.stop()
        }
      },

      async stop() {
        process.removeListener('SIGINT', interrupted)
        process.removeListener('SIGTERM', interrupted)
        try {
          await sb.stop()
        } finally {
          rmSync(work, {recursive: true, force: true})
        }
      },
    }
  } catch (error) {
    process.removeListener('SIGINT', interrupted)
    process.removeListener('SIGTERM', interrupted)
    await sandbox?.stop().catch(() => undefined)
    rmSync(work, {recursive: true, force: true})
    throw error
  }
}

/**
 * A copy of the built CLI (bin, dist, manifest; node_modules linked): test runs on this shared machine rebuild dist/
 * (rm -rf first) whenever sources change, which would fail a benchmark run half way.
 */
async function privateCli(work: string): Promise<string> {
  const dir = path.join(work, 'cli')
  const needed = ['dist/commands/create.js', 'dist/commands/scale.js', 'dist/generated/validators.cjs', 'oclif.manifest.json']
  // A build in progress elsewhere (rm -rf dist, then tsc) takes several seconds: wait for it rather than copy half of it.
  for (let waited = 0; ; waited += 1000) {
    if (needed.every((f) => existsSync(path.join(REPO, f)))) {
      rmSync(dir, {recursive: true, force: true})
      for (const entry of ['bin', 'dist', 'package.json', 'oclif.manifest.json', 'schemas']) {
        if (existsSync(path.join(REPO, entry))) cpSync(path.join(REPO, entry), path.join(dir, entry), {recursive: true})
      }
      if (needed.every((f) => existsSync(path.join(dir, f)))) break
    }
    if (waited >= 90_000) throw new Error('the CLI is not built (dist/commands missing): run npm run build (npm run bench does)')
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'))
  return path.join(dir, 'bin', 'run.js')
}

/**
 * The benchmark cluster: one role whose init, start and scale_out sleep; a member list whose reload records when it ran
 * (`date +%s%N`) and sleeps; a file of the node's own identity, which a scale-out must leave alone. No canaries and
 * one batch: the work is the same as the yardstick's (canaries would add a round of each script by design).
 */
function writeSpec(dir: string, cluster: string, nodes: number, agent = false): string {
  const templates = path.join(dir, 'templates')
  mkdirSync(templates, {recursive: true})
  writeFileSync(path.join(templates, 'members.liquid'), '{% for m in hosts.app %}{{ m.sid }} {{ m.node_id }} {{ m.ip }}\n{% endfor %}')
  writeFileSync(path.join(templates, 'self.liquid'), 'node={{ self.node_id }}\nsid={{ self.sid }}\n')
  const file = path.join(dir, `${cluster}.yaml`)
  writeFileSync(file, `apiVersion: shoal/v1
kind: Cluster
name: ${cluster}
roles:
  ${ROLE}:
    image: debian-12
    cpu: 1
    memory: 256Mi
    disk: 1Gi
    count: ${nodes}
    scale: {min: 1, max: ${nodes + 10}}
    files:
      - template: templates/members.liquid
        dest: conf/members.conf
        reload: '${MEMBER_RELOAD}'
      - template: templates/self.liquid
        dest: conf/self.conf
        reload: 'date +%s%N >> "$SHOAL_HOME/reloads-self"'
    services:
      init: {cmd: 'sleep ${SLEEP}', timeout: 1m}
      start: {cmd: 'sleep ${SLEEP}', timeout: 1m}
      scale_out: {cmd: 'sleep ${SLEEP}', on: existing, timeout: 1m}
update: {canaries: 0, max_in_flight: 100%}
${agent ? 'agent: true\n' : ''}`)
  return file
}

/**
 * `count` copies of the benchmark's member reload (`date +%s%N >> ...reloads-members && sleep 1`, through /bin/sh -c
 * as every reload runs) forked at once by one Perl process: ms from the first fork to the last `date` mark.
 */
function reloadFloor(work: string, count: number): number {
  const dir = mkdtempSync(path.join(work, 'floor-'))
  try {
    const perl = String.raw`
use POSIX (); use Time::HiRes (); my ($dir, $count, $cmd) = @ARGV; my $t = Time::HiRes::time();
for my $i (1 .. $count) { my $pid = fork; if (defined $pid && $pid == 0) { mkdir "$dir/$i"; $ENV{SHOAL_HOME} = "$dir/$i"; exec('/bin/sh', '-c', $cmd) or POSIX::_exit(127) } }
1 while wait() > 0; printf "%.0f
", $t * 1000;`
    const run = spawnSync('perl', ['-e', perl, dir, String(count), MEMBER_RELOAD], {encoding: 'utf8', timeout: 60_000})
    if (run.status !== 0) throw new Error(`the reload floor did not run: ${run.stderr}`)
    const started = Number(run.stdout.trim())
    const marks = readdirSync(dir).map((i) => Number(BigInt(readFileSync(path.join(dir, i, 'reloads-members'), 'utf8').trim()) / 1_000_000n))
    if (marks.length !== count) throw new Error(`the reload floor: ${marks.length} of ${count} reloads ran`)
    return Math.max(...marks) - started
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** metad over the embedded registry in `stateDir`, on `host` (the sandbox gateway) and a port it picks. */
async function startMetadProcess(bin: string, host: string, stateDir: string): Promise<{url: string; pid: number; stop(): void}> {
  const child = spawn(process.execPath, [bin, 'metad', '--listen', `${host}:0`, '--state', stateDir], {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  const url = await new Promise<string>((resolve, reject) => {
    const limit = setTimeout(() => reject(new Error(`metad did not start: ${stderr}`)), 60_000)
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      const m = /listening on (\S+) over/.exec(stderr)
      if (m) {
        clearTimeout(limit)
        resolve(`http://${m[1]}`)
      }
    })
    child.once('exit', (code) => reject(new Error(`metad exited ${code}: ${stderr}`)))
  })
  return {url, pid: child.pid!, stop: () => void child.kill('SIGTERM')}
}

/** Pids of the processes whose command line passes `match`. */
function processesMatching(match: (cmdline: string) => boolean): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (match(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '))) out.push(Number(entry))
    } catch {
      // ended while we looked
    }
  }
  return out
}

/** User + system CPU seconds of the processes (from /proc/PID/stat; clock ticks of 10 ms). */
function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / 100
}

function rssMb(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kb) / 1024
}

/** The resident pages no other process shares (Private_Clean + Private_Dirty), MB. */
function privateMb(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0)
  return (kb('Private_Clean') + kb('Private_Dirty')) / 1024
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** What one command on a host costs over an already open connection (shoal's transport). */
async function commandCost(sb: TestSandbox, options: SshTransportOptions = {}): Promise<number> {
  const transport = new SshTransport(options)
  try {
    const host = sb.hosts[0]!
    await transport.exec(host, 'true', {timeoutMs: 60_000})
    const runs: number[] = []
    for (let i = 0; i < 15; i++) {
      const start = performance.now()
      await transport.exec(host, 'true', {timeoutMs: 60_000})
      runs.push(performance.now() - start)
    }
    return median(runs)
  } finally {
    await transport.close()
  }
}

/** A shoal run: wall time, its stdout lines, its CPU and its transport's timeline (see breakdown.ts). */
export interface ShoalRun extends Timed {
  lines: TimedLine[]
  /** Epoch ms when it was spawned (the timeline's clock). */
  startedAt: number
  cpuMs: number
  timeline: Sample[]
  /** When the CLI reached each phase before its first step (SHOAL_PHASES), ms since it was spawned. */
  phases: Array<{phase: string; at: number}>
}

export interface Candidate {
  name: string
  /** Medians over the rounds. */
  wallMs: number
  clientCpuMs: number
  sshdCpuMs: number
  sessions: number
  roundTrips: number
  bytesOut: number
  bytesIn: number
}

/** How many hosts and how much work each candidate does: what one operation does per node, a bit more. */
export const CANDIDATE_WORK = {hosts: 20, commands: 10, fileBytes: 64 * 1024}

/**
 * The transport settings the issue asks to measure, on the same work in this process: connect to 20 hosts, run 10
 * commands and put one 64 KiB file on each, close. Interleaved rounds; CPU of this process (the transport) and of the
 * hosts' sshd with everything it ran.
 */
async function candidates(sb: TestSandbox, sshdPids: number[], rounds: number): Promise<Candidate[]> {
  const variants: Array<{name: string; options: SshTransportOptions}> = [
    {name: 'a session + login shell per command', options: {persistentShell: false}},
    {name: 'one long-lived shell per connection (default)', options: {}},
    {name: 'shell, cipher chacha20-poly1305', options: {algorithms: {cipher: ['chacha20-poly1305@openssh.com']}}},
    {name: 'shell, cipher aes128-gcm', options: {algorithms: {cipher: ['aes128-gcm@openssh.com']}}},
    {name: 'shell, aes128-ctr + hmac-sha2-256-etm', options: {algorithms: {cipher: ['aes128-ctr'], hmac: ['hmac-sha2-256-etm@openssh.com']}}},
    {name: 'shell, kex ecdh-sha2-nistp256', options: {algorithms: {kex: ['ecdh-sha2-nistp256']}}},
  ]
  const hosts = sb.hosts.slice(0, CANDIDATE_WORK.hosts)
  const file = Buffer.alloc(CANDIDATE_WORK.fileBytes, 'shoal\n')
  const samples = variants.map(() => [] as Candidate[])
  for (let round = 0; round < rounds; round++) {
    for (const [i, variant] of variants.entries()) {
      const sshd = await settledSshdCpuMs(sshdPids)
      const cpu = process.cpuUsage()
      const start = performance.now()
      const transport = new SshTransport(variant.options)
      try {
        await Promise.all(hosts.map(async (host) => {
          for (let c = 0; c < CANDIDATE_WORK.commands; c++) {
            const result = await transport.exec(host, 'true', {timeoutMs: 60_000})
            if (result.exitCode !== 0) throw new Error(`${variant.name}: \`true\` exited ${result.exitCode} on ${host.name}`)
          }
          await transport.putFile(host, '/srv/bench-candidate.dat', file)
        }))
      } finally {
        await transport.close()
      }
      const wallMs = performance.now() - start
      const used = process.cpuUsage(cpu)
      const stats = transport.stats()
      samples[i]!.push({
        name: variant.name, wallMs, clientCpuMs: (used.user + used.system) / 1000, sshdCpuMs: (await settledSshdCpuMs(sshdPids)) - sshd,
        sessions: stats.sessions, roundTrips: stats.roundTrips, bytesOut: stats.bytesOut, bytesIn: stats.bytesIn,
      })
    }
  }
  return samples.map((runs) => ({
    ...runs[0]!,
    wallMs: median(runs.map((r) => r.wallMs)),
    clientCpuMs: median(runs.map((r) => r.clientCpuMs)),
    sshdCpuMs: median(runs.map((r) => r.sshdCpuMs)),
  }))
}

/** Run the built CLI; time it and its stdout lines; throw with its output when it fails. `nodeArgs` e.g. --cpu-prof. */
function shoal(bin: string, args: string[], nodeArgs: string[] = []): Promise<ShoalRun> {
  const statsFile = path.join(tmpdir(), `shoal-bench-stats-${process.pid}-${Math.random().toString(36).slice(2)}.jsonl`)
  const phasesFile = `${statsFile}.phases`
  return new Promise((resolve, reject) => {
    const cpuBefore = childrenCpuMs()
    const startedAt = Date.now()
    const start = performance.now()
    const child = spawn(process.execPath, [...nodeArgs, bin, ...args], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1', SHOAL_TRANSPORT_STATS: statsFile, SHOAL_PHASES: phasesFile}})
    const lines: TimedLine[] = []
    let partial = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const at = performance.now() - start
      const parts = (partial + chunk).split('\n')
      partial = parts.pop()!
      for (const line of parts) lines.push({at, line})
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const limit = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(limit)
      const ms = performance.now() - start
      const timeline = readTimeline(statsFile)
      const phases = readPhases(phasesFile, startedAt)
      rmSync(statsFile, {force: true})
      rmSync(phasesFile, {force: true})
      if (code === 0) return resolve({ms, lines, startedAt, cpuMs: childrenCpuMs() - cpuBefore, timeline, phases})
      const out = lines.map((l) => l.line).slice(-15).join('\n')
      reject(new Error(`shoal ${args.join(' ')} ${signal ? `was killed by ${signal}` : `exited ${code}`}:\n${out}\n${stderr.trim().split('\n').slice(-15).join('\n')}`))
    })
  })
}

interface Phase {
  addresses: string[]
  command: string
}

/** Time the yardstick script over the phases (cpuMs: the script and its OpenSSH clients). */
function fanout(ssh: {key: string; knownHosts: string; port: number}, phases: Phase[], controlDir: string): Timed & {cpuMs: number} {
  const cpuBefore = childrenCpuMs()
  const errors = path.join(tmpdir(), `shoal-bench-fanout-${process.pid}.err`)
  rmSync(errors, {force: true})
  const input = phases.map((p) => `${p.addresses.join(',')}\t${p.command}\n`).join('')
  const start = performance.now()
  const result = spawnSync('/bin/sh', [FANOUT, ssh.key, ssh.knownHosts, String(ssh.port), controlDir], {input, stdio: ['pipe', 'ignore', 'ignore'], env: {...process.env, FANOUT_ERRORS: errors}, timeout: RUN_LIMIT_MS})
  const ms = performance.now() - start
  const why = existsSync(errors) ? readFileSync(errors, 'utf8').trim().split('\n').slice(-5).join(' | ') : ''
  rmSync(errors, {force: true})
  if (result.status !== 0) throw new Error(`the OpenSSH yardstick failed (exit ${result.status}${result.error ? `, ${result.error.message}` : ''}): ${why}`)
  return {ms, cpuMs: childrenCpuMs() - cpuBefore}
}

/** Close the master connections a yardstick or Ansible run left in `dir`, then remove it. */
function closeMasters(dir: string): void {
  for (const socket of existsSync(dir) ? readdirSync(dir) : []) {
    spawnSync('ssh', ['-o', `ControlPath=${path.join(dir, socket)}`, '-O', 'exit', 'bench'], {stdio: 'ignore', timeout: 10_000})
  }
  rmSync(dir, {recursive: true, force: true})
}

/** true, or why Ansible cannot run here. Installs Debian's `ansible` when it is missing. */
function ansibleReady(log: (line: string) => void): true | string {
  if (spawnSync('ansible-playbook', ['--version'], {stdio: 'ignore'}).status === 0) return true
  log('ansible-playbook not found: apt-get install -y ansible')
  const installed = spawnSync('apt-get', ['install', '-y', 'ansible'], {encoding: 'utf8', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}, timeout: 300_000})
  if (installed.status !== 0) return `ansible is not installed and \`apt-get install -y ansible\` failed: ${(installed.error?.message ?? installed.stderr).trim().split('\n').slice(-3).join(' | ')}`
  return spawnSync('ansible-playbook', ['--version'], {stdio: 'ignore'}).status === 0 ? true : 'ansible-playbook still does not run after installing ansible'
}

/** Two `command: sleep` tasks on the hosts: pipelining on, no fact gathering, the sandbox key and known_hosts. */
function runAnsible(work: string, sb: TestSandbox, addresses: string[], forks: number): Timed {
  const dir = mkdtempSync(path.join(work, `ansible-${forks}-`))
  const control = mkdtempSync(path.join(tmpdir(), 'sba-'))
  try {
    writeFileSync(path.join(dir, 'hosts.ini'), [
      '[bench]',
      ...addresses.map((a, i) => `sandbox-${i + 1} ansible_host=${a}`),
      '[bench:vars]',
      `ansible_port=${sb.port}`,
      'ansible_user=root',
      `ansible_ssh_private_key_file=${sb.state.key}`,
      `ansible_ssh_common_args='-o UserKnownHostsFile=${sb.state.knownHosts} -o StrictHostKeyChecking=yes'`,
      'ansible_python_interpreter=/usr/bin/python3',
      '',
    ].join('\n'))
    writeFileSync(path.join(dir, 'ansible.cfg'), [
      '[defaults]',
      'inventory = hosts.ini',
      `forks = ${forks}`,
      'gathering = explicit',
      'host_key_checking = True',
      'retry_files_enabled = False',
      `local_tmp = ${path.join(dir, 'tmp')}`,
      '[ssh_connection]',
      'pipelining = True',
      `control_path_dir = ${control}`,
      '',
    ].join('\n'))
    writeFileSync(path.join(dir, 'playbook.yaml'), `- hosts: bench
  gather_facts: false
  tasks:
    - command: sleep ${SLEEP}
    - command: sleep ${SLEEP}
`)
    const start = performance.now()
    const result = spawnSync('ansible-playbook', ['playbook.yaml'], {
      cwd: dir, encoding: 'utf8', timeout: RUN_LIMIT_MS * 2,
      env: {...process.env, ANSIBLE_CONFIG: path.join(dir, 'ansible.cfg'), ANSIBLE_HOME: path.join(dir, 'home'), ANSIBLE_NOCOLOR: '1'},
    })
    const ms = performance.now() - start
    const recap = /ok=2\s+changed=2\s+unreachable=0\s+failed=0/g
    const okHosts = (result.stdout ?? '').match(recap)?.length ?? 0
    if (result.status !== 0 || okHosts !== addresses.length) {
      throw new Error(`ansible-playbook (forks=${forks}) exited ${result.status} with ${okHosts}/${addresses.length} hosts ok: ${`${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-6).join(' | ')}`)
    }
    return {ms}
  } finally {
    closeMasters(control)
  }
}

interface NodeFiles {
  membersInode: number
  selfInode: number
  memberReloads: bigint[]
  selfReloads: bigint[]
}

/** Every node of the cluster found on the hosts' /srv: its files' inodes (an atomic replace changes them) and reload marks. */
function nodeFiles(srvOf: Map<string, string>, cluster: string): Map<string, NodeFiles> {
  const out = new Map<string, NodeFiles>()
  const marks = (file: string): bigint[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => BigInt(l)) : [])
  for (const srv of srvOf.values()) {
    const clusterDir = path.join(srv, 'shoal', cluster)
    if (!existsSync(clusterDir)) continue
    for (const node of readdirSync(clusterDir)) {
      const home = path.join(clusterDir, node)
      out.set(node, {
        membersInode: statSync(path.join(home, 'conf', 'members.conf')).ino,
        selfInode: statSync(path.join(home, 'conf', 'self.conf')).ino,
        memberReloads: marks(path.join(home, 'reloads-members')),
        selfReloads: marks(path.join(home, 'reloads-self')),
      })
    }
  }
  return out
}

/**
 * When the scale-out's register commit landed (epoch ms): the executor writes the timing of a commit step
 * (`operations/<cluster>/timings/<operation>/<step>`, kept with the operation's history) in the commit's own
 * transaction; the first commit step that began at or after `sinceMs` is the scale-out's.
 */
async function registerCommitTime(stateDir: string, cluster: string, sinceMs: number): Promise<number> {
  const store = await EmbeddedStore.open({dir: stateDir, readOnly: true})
  try {
    const prefix = `operations/${cluster}/timings/`
    const commits = (await store.range(prefix)).kvs
      .filter((kv) => /\/[0-9]+-commit$/.test(kv.key))
      .map((kv) => JSON.parse(kv.value) as {started: string; finished?: string})
      .filter((t) => t.finished !== undefined && Date.parse(t.started) >= sinceMs)
      .sort((a, b) => Date.parse(a.started) - Date.parse(b.started))
    if (!commits.length) throw new Error(`no commit step timing under ${prefix} since ${new Date(sinceMs).toISOString()}`)
    return Date.parse(commits[0]!.finished!)
  } finally {
    await store.close()
  }
}

/** Step headers (`==> [i/n] title`) and when they appeared: the time until the next one is the step's; with its costs. */
function stepTimes(run: ShoalRun): StepTime[] {
  const {lines, ms: totalMs} = run
  const headers = lines.filter((l) => l.line.startsWith('==> ')).map((l) => ({at: l.at, title: l.line.slice(4)}))
  if (headers.length === 0) return [{title: 'whole run (no step lines)', ms: totalMs}]
  const cost = (from: number, to: number): StepCost => costBetween(run.timeline, run.startedAt + from, run.startedAt + to)
  // The start, split where the CLI marked its phases (node and the command's modules loaded, inputs read and linted,
  // the lock, the plan, the operation recorded), up to the first step's line.
  const marks = [...run.phases.filter((p) => p.at <= headers[0]!.at), {phase: 'first step', at: headers[0]!.at}]
  const out: StepTime[] = [{title: 'start: CLI, lock, plan, record the operation', ms: headers[0]!.at}]
  marks.forEach((m, i) => out.push({title: `  ${i === 0 ? 'spawn' : marks[i - 1]!.phase} → ${m.phase}`, ms: m.at - (i === 0 ? 0 : marks[i - 1]!.at)}))
  headers.forEach((h, i) => {
    const end = headers[i + 1]?.at ?? lines.at(-1)!.at
    out.push({title: h.title, ms: end - h.at, cost: cost(h.at, end)})
  })
  out.push({title: 'finish: record, unlock, exit', ms: totalMs - lines.at(-1)!.at})
  return out
}

/** The phases a run's CLI marked (SHOAL_PHASES: one JSON object per line), ms since `startedAt`, in order. */
function readPhases(file: string, startedAt: number): Array<{phase: string; at: number}> {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as {phase: string; at: number})
    .map((p) => ({phase: p.phase, at: p.at - startedAt}))
    .sort((a, b) => a.at - b.at)
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

function medianCpu(runs: RunCpu[]): RunCpu {
  return {clientMs: median(runs.map((r) => r.clientMs)), sshdMs: median(runs.map((r) => r.sshdMs))}
}

function closestToMedian(values: number[]): number {
  const m = median(values)
  return values.findIndex((v) => v === m)
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await startLifecycleBench(50, (line) => console.error(line))
  try {
    console.log(await bench.create(Number(process.env.ROUNDS ?? 1), process.env.ANSIBLE === '0' ? [] : undefined))
    console.log(await bench.scaleOut())
  } finally {
    await bench.stop()
  }
}
