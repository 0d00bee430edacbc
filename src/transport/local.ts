// The Transport on the machine itself (the node agent's): commands under /bin/sh in a process group of their own,
// killed whole at their deadline, so the same install and reload code serves a node over SSH and from its own agent.
import {spawn} from 'node:child_process'
import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {shellQuote} from '../util/shell.js'
import {LineSplitter} from './lines.js'
import {commandFailed, MAX_COLLECTED_BYTES, octalMode, type ExecOptions, type ExecResult, type PutFileOptions, type Transport, type TransportHost} from './transport.js'

/** The host a local transport stands for: only its name is used, in messages. */
export function localHost(name: string): TransportHost {
  return {name, address: '127.0.0.1', port: 0, user: '', knownHosts: ''}
}

/** After SIGKILL of the group, how long to wait for the pipes to close before giving up on the output. */
const KILL_GRACE_MS = 2000

export class LocalTransport implements Transport {
  private readonly running = new Set<() => void>()

  exec(_host: TransportHost, command: string, options: ExecOptions): Promise<ExecResult> {
    return new Promise((resolve) => {
      const env = {...process.env}
      for (const [name, value] of Object.entries(options.env ?? {})) env[name] = String(value)
      // Without input, stdin is /dev/null: one pipe fewer to make for every command (an agent's reloads are most of its work).
      const child = spawn('/bin/sh', ['-c', command], {cwd: options.cwd, env, detached: true, stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']})
      const collect = options.collect !== false
      const out = {stdout: '', stderr: ''}
      let timedOut = false
      let settled = false
      const killGroup = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      const finish = (exitCode: number | null, signal: string | null): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        clearTimeout(grace)
        this.running.delete(killGroup)
        resolve({exitCode: timedOut ? null : exitCode, signal, timedOut, ...(collect ? out : {})})
      }
      let grace: NodeJS.Timeout | undefined
      const timer = setTimeout(() => {
        timedOut = true
        killGroup()
        // A grandchild holding the pipes open must not hold the answer.
        grace = setTimeout(() => finish(null, 'SIGKILL'), KILL_GRACE_MS)
      }, options.timeoutMs)
      this.running.add(killGroup)
      for (const stream of ['stdout', 'stderr'] as const) {
        const onLine = stream === 'stdout' ? options.onStdoutLine : options.onStderrLine
        const lines = new LineSplitter((line) => onLine?.(line))
        child[stream]!.on('data', (chunk: Buffer) => {
          if (collect && out[stream].length < MAX_COLLECTED_BYTES) out[stream] += chunk.toString('utf8')
          if (onLine) lines.push(chunk)
        })
        child[stream]!.on('end', () => lines.end())
      }
      child.on('error', (error) => {
        out.stderr += `${error.message}\n`
        finish(127, null)
      })
      child.on('close', (code, signal) => finish(code, signal))
      if (child.stdin) {
        child.stdin.on('error', () => undefined) // a command that does not read its stdin
        child.stdin.end(options.stdin)
      }
    })
  }

  async putFile(host: TransportHost, file: string, content: Buffer | string, options: PutFileOptions = {}): Promise<void> {
    if (options.mkdirs !== false) await mkdir(path.dirname(file), {recursive: true})
    const mode = parseInt(octalMode(options.mode), 8)
    await writeFile(file, content, {mode})
    await chmod(file, mode)
    if (options.owner !== undefined) {
      // Names resolve as chown resolves them (user, user:group, numeric ids).
      const result = await this.exec(host, `chown ${shellQuote(options.owner)} -- ${shellQuote(file)}`, {timeoutMs: options.timeoutMs ?? 30_000})
      if (result.exitCode !== 0) throw commandFailed(host, `chown ${options.owner} ${file}`, result)
    }
  }

  async readFile(_host: TransportHost, file: string): Promise<Buffer | undefined> {
    try {
      return await readFile(file)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  /** Kill whatever still runs (the agent is stopping). */
  async close(): Promise<void> {
    for (const kill of [...this.running]) kill()
  }
}
