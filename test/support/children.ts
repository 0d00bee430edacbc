// Runs test/support/store-worker.ts in child processes (node --import tsx) against a store given as data.
import {spawn, type ChildProcess} from 'node:child_process'
import path from 'node:path'

export interface StoreSpec {etcd?: string; state?: string; prefix?: string}

const WORKER = path.join(import.meta.dirname, 'store-worker.ts')

export interface Worker {
  child: ChildProcess
  /** Resolves with the first stdout line. */
  firstLine: Promise<string>
  /** Resolves with the exit code (or signal name) and all output. */
  exited: Promise<{code: number | null; signal: string | null; stdout: string; stderr: string}>
}

export function startWorker(spec: StoreSpec, args: string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
    env: {...process.env, SHOAL_TEST_STORE: JSON.stringify(spec)},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let resolveLine: (line: string) => void = () => undefined
  const firstLine = new Promise<string>(resolve => (resolveLine = resolve))
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    const newline = stdout.indexOf('\n')
    if (newline >= 0) resolveLine(stdout.slice(0, newline))
  })
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<{code: number | null; signal: string | null; stdout: string; stderr: string}>(resolve =>
    child.on('exit', (code, signal) => {
      resolveLine('')
      resolve({code, signal, stdout, stderr})
    }),
  )
  return {child, firstLine, exited}
}

/**
 * Poll `check` until it returns true; after `timeoutMs` give up with an error saying what was awaited (`what`, or
 * what it returns then: the last thing seen).
 */
export async function eventually(what: string | (() => string), check: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  if (await check()) return
  throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${typeof what === 'string' ? what : what()}`)
}
