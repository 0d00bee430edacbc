// The built CLI as a process with bounds a test asserts: wall time, peak memory (getrusage of the process itself),
// and a kill after a limit so a hang fails the test instead of stalling the run. Input may be a shell pipeline.
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

const REPO = join(import.meta.dirname, '..', '..')
const BIN = join(REPO, 'bin', 'run.js')
const PEAK = join(import.meta.dirname, 'peak-memory.mjs')

export interface BoundedRun {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
  ms: number
  /** Peak resident set size of the shoal process, in MB. */
  peakMb: number
}

/** Shell-quote one word. */
export function sq(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * Run `shoal ARGS` (optionally fed by the shell pipeline `stdinFrom`, e.g. `yes`), killed after `limitMs`.
 * The process group is killed, so the feeding command goes too.
 */
export async function runBounded(args: readonly string[], options: {cwd?: string; stdinFrom?: string; limitMs?: number} = {}): Promise<BoundedRun> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bounded-'))
  const peakFile = join(dir, 'peak')
  const command = `${options.stdinFrom ? `${options.stdinFrom} | ` : ''}exec ${sq(process.execPath)} --import ${sq(PEAK)} ${sq(BIN)} ${args.map(sq).join(' ')}${options.stdinFrom ? '' : ' </dev/null'}`
  const started = performance.now()
  const child = spawn('sh', ['-c', command], {cwd: options.cwd ?? REPO, env: {...process.env, NO_COLOR: '1', SHOAL_TEST_PEAK_FILE: peakFile}, stdio: ['ignore', 'pipe', 'pipe'], detached: true})
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  }, options.limitMs ?? 60_000)
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  // The feeding command of a pipeline may outlive shoal for a moment: end the group.
  try {
    process.kill(-child.pid!, 'SIGKILL')
  } catch {
    // already gone
  }
  let peakMb = NaN
  try {
    peakMb = Number(readFileSync(peakFile, 'utf8')) / 1024
  } catch {
    // killed before exit: no figure
  }
  rmSync(dir, {recursive: true, force: true})
  return {code, signal, stdout, stderr, ms: performance.now() - started, peakMb}
}
