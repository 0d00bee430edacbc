// Runs `shoal metad` as a real process on a free port, and asks it questions from chosen loopback source addresses.
import {request} from 'node:http'
import {freePort} from './etcd.js'
import {track} from './resources.js'
import {spawnShoal, type CliProcess, type CliResult} from './shoal-cli.js'

const READY_TIMEOUT_MS = 60_000
/** No single request of a test may take longer (long-polls pass their own, shorter timeout= plus this margin). */
const REQUEST_LIMIT_MS = 30_000

export interface MetadProcess {
  url: string
  port: number
  process: CliProcess
  /** Everything it wrote to stderr so far. */
  stderr(): string
  /** SIGSTOP / SIGCONT: it stays up but answers nothing. */
  pause(): void
  resume(): void
  /** SIGTERM and wait for the exit. */
  stop(): Promise<CliResult>
}

const running = new Set<MetadProcess>()

/** Start metad over `registryFlags` on `host` (default 127.0.0.1); resolves once it listens (it reads the registry first). */
export async function startMetad(registryFlags: readonly string[], extra: readonly string[] = [], port?: number, host = '127.0.0.1'): Promise<MetadProcess> {
  const listenPort = port ?? (await freePort())
  const proc = spawnShoal(['metad', '--listen', `${host}:${listenPort}`, ...extra, ...registryFlags], {limitMs: 600_000})
  let stderr = ''
  proc.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const metad: MetadProcess = {
    url: `http://${host}:${listenPort}`,
    port: listenPort,
    process: proc,
    stderr: () => stderr,
    pause: () => void proc.child.kill('SIGSTOP'),
    resume: () => void proc.child.kill('SIGCONT'),
    async stop() {
      running.delete(metad)
      untrack()
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.child.kill('SIGCONT')
        proc.child.kill('SIGTERM')
      }
      return proc.exited
    },
  }
  running.add(metad)
  const untrack = track(`shoal metad on ${host}:${listenPort}`, async () => void (await metad.stop()))
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (stderr.includes('shoal metad listening on')) resolve(true)
      }
      proc.child.stderr!.on('data', check)
      check()
    }),
    proc.exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), READY_TIMEOUT_MS)),
  ])
  if (!ready) {
    const result = await metad.stop()
    throw new Error(`shoal metad did not report listening within ${READY_TIMEOUT_MS / 1000} s (exit ${String(result.code ?? result.signal)}):\n${stderr}`)
  }
  return metad
}

/** Stop every metad a test file started (afterAll), also those a failed setup left running. */
export async function stopAllMetad(): Promise<void> {
  await Promise.all([...running].map((m) => m.stop()))
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  revision: number | undefined
  json(): unknown
}

export interface AskOptions {
  /** Local (source) address of the connection, e.g. 127.0.1.5. */
  from?: string
  accept?: string
  headers?: Record<string, string>
  /** Abort after this long; default REQUEST_LIMIT_MS. */
  limitMs?: number
}

/** One GET on its own connection from `from`; rejects (saying what it asked) when no answer comes within the limit. */
export function ask(base: string, path: string, options: AskOptions = {}): Promise<Answer> {
  const url = new URL(path, base)
  const limit = options.limitMs ?? REQUEST_LIMIT_MS
  return new Promise((resolve, reject) => {
    const req = request(url, {
      agent: false,
      ...(options.from ? {localAddress: options.from} : {}),
      headers: {...(options.accept ? {accept: options.accept} : {}), ...options.headers},
      timeout: limit,
    }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => {
        const revision = res.headers['x-shoal-revision']
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          revision: typeof revision === 'string' ? Number(revision) : undefined,
          json: () => JSON.parse(body) as unknown,
        })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url.href} from ${options.from ?? 'any address'}: no answer within ${limit / 1000} s`)))
    req.on('error', reject)
    req.end()
  })
}

process.once('exit', () => {
  for (const m of running) m.process.child.kill('SIGKILL')
})
