// `npm run stress`: `shoal sandbox up` and `down` of many hosts, round after round, while CPU burners keep every core
// busy; prints each failed round and why, and exits 1 when any failed. Needs root (the sandbox does).
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

const REPO = path.join(import.meta.dirname, '..')
const {values} = parseArgs({
  options: {
    rounds: {type: 'string', default: '30'},
    hosts: {type: 'string', default: '20'},
    burners: {type: 'string', default: String(availableParallelism())},
  },
})
const rounds = Number(values.rounds)
const hosts = Number(values.hosts)
const burnerCount = Number(values.burners)
/** One command of a round may take this long before the round counts as failed (a hang is a failure too). */
const COMMAND_TIMEOUT_MS = 120_000

function shoal(...args: string[]): Promise<{code: number; stdout: string; stderr: string; ms: number}> {
  const started = Date.now()
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, 'bin', 'run.js'), ...args], {timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 2 ** 20}, (error, stdout, stderr) => {
      const code = error ? (typeof (error as {code?: unknown}).code === 'number' ? (error as {code: number}).code : 124) : 0
      resolve({code, stdout, stderr, ms: Date.now() - started})
    })
  })
}

/** Processes still in any of `namespaces` (the hosts' private mount namespaces): after `down` there must be none. */
function processesIn(namespaces: Set<string>): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (namespaces.has(readlinkSync(`/proc/${entry}/ns/mnt`))) pids.push(Number(entry))
    } catch {
      // ended while we looked
    }
  }
  return pids
}

function burn(): ChildProcess {
  // Each burner ends by itself after 30 minutes, should this script be killed before it stops them.
  return spawn(process.execPath, ['-e', 'const end = Date.now() + 1_800_000; while (Date.now() < end) {}'], {stdio: 'ignore'})
}

async function round(n: number, dir: string, port: number): Promise<string | undefined> {
  const up = await shoal('sandbox', 'up', '--hosts', String(hosts), '--port', String(port), '--dir', dir, '--json')
  let namespaces = new Set<string>()
  try {
    const state = JSON.parse(readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as {hosts: Array<{mountNamespace?: string}>}
    namespaces = new Set(state.hosts.map((h) => h.mountNamespace).filter((ns): ns is string => ns !== undefined))
  } catch {
    // no state written: the up failed before recording hosts
  }
  const failures: string[] = []
  if (up.code !== 0) failures.push(`up exited ${up.code}: ${(up.stderr || up.stdout).trim().split('\n').slice(-3).join(' | ')}`)
  else {
    const ls = await shoal('sandbox', 'ls', '--dir', dir, '--json')
    const listed = ls.code === 0 ? (JSON.parse(ls.stdout) as {hosts: Array<{name: string; running: boolean}>}).hosts : []
    const down = listed.filter((h) => !h.running).map((h) => h.name)
    if (listed.length !== hosts || down.length > 0) failures.push(`ls after up: ${listed.length} hosts listed, not running: ${down.join(', ') || 'none'}`)
    if (namespaces.size !== hosts) failures.push(`only ${namespaces.size} of ${hosts} hosts recorded a mount namespace`)
  }
  const down = await shoal('sandbox', 'down', '--dir', dir)
  if (down.code !== 0) failures.push(`down exited ${down.code}: ${down.stderr.trim().split('\n').slice(-3).join(' | ')}`)
  const left = processesIn(namespaces)
  if (left.length > 0) failures.push(`${left.length} processes left in the hosts' namespaces after down: ${left.join(', ')}`)
  if (existsSync(dir)) failures.push(`${dir} still exists after down`)
  const line = `round ${String(n).padStart(2)}: up ${(up.ms / 1000).toFixed(1)} s, down ${(down.ms / 1000).toFixed(1)} s${failures.length ? ` FAILED: ${failures.join('; ')}` : ''}`
  console.log(line)
  return failures.length ? failures.join('; ') : undefined
}

async function main(): Promise<number> {
  if (!existsSync(path.join(REPO, 'dist', 'commands'))) throw new Error('the CLI is not built: run npm run build first (npm run stress does)')
  const burners = Array.from({length: burnerCount}, burn)
  const base = mkdtempSync(path.join(tmpdir(), 'shoal-stress-'))
  const failed: Array<{round: number; why: string}> = []
  try {
    console.log(`sandbox up/down of ${hosts} hosts, ${rounds} rounds, ${burnerCount} CPU burners on ${availableParallelism()} cores`)
    for (let n = 1; n <= rounds; n++) {
      const why = await round(n, path.join(base, `round-${n}`), 22)
      if (why) failed.push({round: n, why})
    }
  } finally {
    for (const burner of burners) burner.kill('SIGKILL')
    rmSync(base, {recursive: true, force: true})
  }
  console.log(`${rounds} rounds, ${failed.length} failed${failed.length ? `: ${failed.map((f) => `round ${f.round} (${f.why})`).join('; ')}` : ''}`)
  return failed.length ? 1 : 0
}

process.exitCode = await main()
