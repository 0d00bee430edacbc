// The Transport on the machine itself (the node agent's): commands under /bin/sh in a process group of their own,
// killed whole at their deadline, so the same install and reload code serves a node over SSH and from its own agent.
// Commands go through the same long-lived Perl driver as over SSH (shell.ts): a reload then costs a fork of that small
// process, not of the agent's whole Node.js process (the largest cost of an agent's pass when every command was spawned).
import {spawn} from 'node:child_process'
import type {Socket} from 'node:net'
import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {shellQuote} from '../util/shell.js'
import {LineSplitter} from './lines.js'
import {driverCommand, RemoteShell, type ShellPipe} from './shell.js'
import {commandFailed, MAX_COLLECTED_BYTES, octalMode, type ExecOptions, type ExecResult, type PutFileOptions, type Transport, type TransportHost} from './transport.js'

/** The host a local transport stands for: only its name is used, in messages. */
export function localHost(name: string): TransportHost {
  return {name, address: '127.0.0.1', port: 0, user: '', knownHosts: ''}
}

/** After SIGKILL of the group, how long to wait for the pipes to close before giving up on the output. */
const KILL_GRACE_MS = 2000
/** After a command exits, how long its pipes may stay silent before the driver closes them (a daemon it started may hold them). */
const DRAIN_AFTER_EXIT_MS = 2000

export class LocalTransport implements Transport {
  private readonly running = new Set<() => void>()
  /** The driver, started on first use; undefined inside when this machine has no Perl (a process per command then). */
  private driver: Promise<RemoteShell | undefined> | undefined
  private driverOut: Socket | undefined
  /** Commands waiting on the transport now. */
  private busy = 0

  exec(host: TransportHost, command: string, options: ExecOptions): Promise<ExecResult> {
    return this.holding(async () => {
      const shell = await this.shell()
      return shell ? this.inShell(shell, host, command, options) : this.spawnOne(command, options)
    })
  }

  /** Start the driver now, so the first command does not wait for it (an agent starts it before its first change). */
  async prepare(): Promise<void> {
    await this.holding(() => this.shell())
  }

  /** The driver keeps this process alive only while something waits on it: an idle one must not hold a --once agent. */
  private async holding<T>(work: () => Promise<T>): Promise<T> {
    this.busy++
    this.driverOut?.ref()
    try {
      return await work()
    } finally {
      if (--this.busy === 0) this.driverOut?.unref()
    }
  }

  private async inShell(shell: RemoteShell, host: TransportHost, command: string, options: ExecOptions): Promise<ExecResult> {
    const collect = options.collect !== false
    const out = {stdout: '', stderr: ''}
    const lines = {
      stdout: new LineSplitter((line) => options.onStdoutLine?.(line)),
      stderr: new LineSplitter((line) => options.onStderrLine?.(line)),
    }
    const take = (stream: 'stdout' | 'stderr') => (chunk: Buffer): void => {
      if (collect && out[stream].length < MAX_COLLECTED_BYTES) out[stream] += chunk.toString('utf8')
      lines[stream].push(chunk)
    }
    const stdin = options.stdin === undefined ? undefined : typeof options.stdin === 'string' ? Buffer.from(options.stdin) : options.stdin
    const exit = await shell.command({script: command, env: options.env, cwd: options.cwd, install: options.install}, stdin, {onStdout: take('stdout'), onStderr: take('stderr')}, {timeoutMs: options.timeoutMs, killGraceMs: KILL_GRACE_MS})
    lines.stdout.end()
    lines.stderr.end()
    if (exit.error !== undefined) out.stderr += `the command could not start on ${host.name}: ${exit.error}\n`
    return {exitCode: exit.timedOut ? null : exit.code ?? (exit.error !== undefined ? 127 : null), signal: exit.signal, timedOut: exit.timedOut, ...(collect ? out : {})}
  }

  /** The driver, started once; a driver that ended (killed?) is started again. */
  private shell(): Promise<RemoteShell | undefined> {
    const current = this.driver
    if (current) return current.then((shell) => (shell && shell.closed_ ? ((this.driver = undefined), this.shell()) : shell))
    const child = spawn('/bin/sh', ['-c', driverCommand(DRAIN_AFTER_EXIT_MS)], {stdio: ['pipe', 'pipe', 'pipe']})
    // A child's stdio pipes are sockets; the type says Readable.
    this.driverOut = child.stdout as Socket
    // Only its stdout, and only while a command waits (see exec), keeps this process alive.
    child.unref()
    for (const stream of [child.stdin!, child.stderr!] as Array<{unref?: () => void}>) stream.unref?.()
    if (this.busy === 0) this.driverOut.unref()
    child.stdin!.on('error', () => undefined) // the driver ended: its commands are answered as ended
    const pipe: ShellPipe = {
      write: (bytes) => void child.stdin!.write(bytes),
      end: () => void child.stdin!.end(),
      destroy: () => void child.kill('SIGKILL'),
      onData: (listener) => void child.stdout!.on('data', listener),
      onStderr: (listener) => void child.stderr!.on('data', listener),
      onClose: (listener) => void child.once('close', listener),
    }
    const shell = new RemoteShell(pipe)
    child.once('error', () => pipe.destroy())
    this.driver = shell.ready.then((pid) => (pid === undefined ? undefined : shell))
    return this.driver
  }

  /** One process per command: where this machine has no Perl for the driver. */
  private spawnOne(command: string, options: ExecOptions): Promise<ExecResult> {
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

  /** Kill whatever still runs (the agent is stopping), and end the driver. */
  async close(): Promise<void> {
    for (const kill of [...this.running]) kill()
    const shell = await this.driver
    shell?.killAll('KILL')
    shell?.close()
    this.driver = undefined
  }
}
