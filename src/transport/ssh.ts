// The SSH Transport (ssh2): one connection per host reused by every call, bounded channels and handshakes, remote kill on timeout.
import {appendFileSync, readFileSync} from 'node:fs'
import ssh2 from 'ssh2'
import type {Client, ClientChannel, ConnectConfig, ParsedKey, PublicKeyAuthMethod} from 'ssh2'
import {envPrefix, shellQuote} from '../util/shell.js'
import {appendKnownHost, knownHostName, readKnownHosts, verifyHostKey} from './known-hosts.js'
import {Limiter} from './limiter.js'
import {LineSplitter} from './lines.js'
import {RemoteShell, channelPipe, driverCommand} from './shell.js'
import {
  MAX_COLLECTED_BYTES,
  TransportError,
  commandFailed,
  octalMode,
  type ExecOptions,
  type ExecResult,
  type PutFileOptions,
  type Transport,
  type TransportHost,
} from './transport.js'

export interface SshTransportOptions {
  /** Concurrent channels per connection; more calls queue. Default 8 (OpenSSH's MaxSessions default is 10). */
  channelsPerHost?: number
  /** Concurrent SSH handshakes across all hosts. Default 8 (OpenSSH's MaxStartups starts dropping at 10). */
  maxHandshakes?: number
  /** Connection attempts per host before giving up. Default 4. */
  connectAttempts?: number
  /** First retry delay; doubles per attempt, with ±50 % jitter. Default 250 ms. */
  retryDelayMs?: number
  /** Deadline of one TCP connect + SSH handshake. Default 15 s. */
  handshakeTimeoutMs?: number
  /** Record keys of hosts missing from known_hosts instead of refusing them. Changed keys are refused regardless. */
  acceptNewHostKeys?: boolean
  /** After a timeout: wait this long after SIGTERM before SIGKILL, and again before abandoning the channel. Default 2 s. */
  killGraceMs?: number
  /**
   * Run every command of a connection in one long-lived shell on the host (see shell.ts) instead of a session and login
   * shell per command. Default true; hosts without Perl get a session per command either way.
   */
  persistentShell?: boolean
  /** SSH algorithm preferences passed to ssh2 (e.g. a cipher list), for measuring their cost. Default: ssh2's. */
  algorithms?: ConnectConfig['algorithms']
}

/** Printed to stderr before every command runs: the remote process group id, so a timed-out command can be killed whole. */
const PGID_MARKER = '__shoal_pgid='
/** readFile refuses files larger than this rather than return part of them. */
const MAX_READ_BYTES = 256 * 2 ** 20
/** The longest delay setTimeout honours (about 24 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1
/**
 * After a command exits, how long its output may stay silent before the channel is closed: a background child may hold
 * the streams open forever, while output sshd still buffers (exit-status can overtake it) keeps arriving.
 */
const DRAIN_AFTER_EXIT_MS = 2000

/**
 * The command line sent to sshd. sshd runs it with the user's login shell as a new session (setsid), so `$$` is the
 * process group of everything the command starts; it is reported first on stderr. The command itself runs under
 * /bin/sh with the env as a quoted prefix.
 */
export function wrapCommand(command: string, env: ExecOptions['env'] = {}, cwd?: string): string {
  const script = cwd === undefined ? command : `cd ${shellQuote(cwd)} || exit 1\n${command}`
  return `printf '${PGID_MARKER}%s\\n' "$$" >&2; ${envPrefix(env)}exec /bin/sh -c ${shellQuote(script)}`
}

interface Connection {
  client: Client
  channels: Limiter
  closed: boolean
  /** The long-lived shell, once asked for (undefined inside: the host has none). */
  shell?: Promise<RemoteShell | undefined>
  shells: RemoteShell[]
}

/** A command as the caller gave it, before it is wrapped for a session or the shell. */
interface Command {
  script: string
  env?: ExecOptions['env']
  cwd?: string
  install?: ExecOptions['install']
}

/** What the transport did, for the benchmark's breakdown (where the time of an operation goes). */
export interface TransportCounters {
  /** SSH connections set up (key exchange + authentication). */
  handshakes: number
  /** SSH sessions (channels) opened: one per command without a shell, one per connection with one. */
  sessions: number
  /** Commands run (exec, putFile, readFile, kills sent over a side channel). */
  commands: number
  /** Waits for the other side after the connection is up: a channel open, an exec request, a command's answer. */
  roundTrips: number
  /** Bytes on the TCP connections (SSH framing and encryption included), from closed and open ones. */
  bytesOut: number
  bytesIn: number
}

export class SshTransport implements Transport {
  private readonly pool = new Map<string, Promise<Connection>>()
  private readonly handshakes: Limiter
  private readonly options: Required<Omit<SshTransportOptions, 'algorithms'>> & Pick<SshTransportOptions, 'algorithms'>
  private closing = false
  private readonly counters: TransportCounters = {handshakes: 0, sessions: 0, commands: 0, roundTrips: 0, bytesOut: 0, bytesIn: 0}
  private readonly sockets = new Set<{bytesWritten: number; bytesRead: number}>()
  /** Private keys by file, parsed once: ssh2 parses a key given as bytes on every connection (50 hosts, 50 parses). */
  private readonly keys = new Map<string, ParsedKey>()
  /**
   * SHOAL_TRANSPORT_STATS=FILE (used by `npm run bench`): the counters and the process's CPU time are sampled as each
   * command starts and ends, and the samples appended to FILE as one JSON line when the transport closes.
   */
  private timeline: Array<TransportCounters & {at: number; cpuMs: number}> | undefined = process.env.SHOAL_TRANSPORT_STATS ? [] : undefined

  constructor(options: SshTransportOptions = {}) {
    this.options = {
      channelsPerHost: 8,
      maxHandshakes: 8,
      connectAttempts: 4,
      retryDelayMs: 250,
      handshakeTimeoutMs: 15_000,
      acceptNewHostKeys: false,
      killGraceMs: 2000,
      persistentShell: true,
      ...options,
    }
    this.handshakes = new Limiter(this.options.maxHandshakes)
  }

  async exec(host: TransportHost, command: string, options: ExecOptions): Promise<ExecResult> {
    // setTimeout fires at once for a non-finite or over-large delay: a typo must not turn into "no deadline" or "instant kill".
    if (!(options.timeoutMs > 0 && options.timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new Error(`timeoutMs must be from 1 to ${MAX_TIMEOUT_MS} ms, got ${options.timeoutMs}`)
    }
    this.sample()
    const raw = await this.run(host, {script: command, ...(options.env ? {env: options.env} : {}), ...(options.cwd !== undefined ? {cwd: options.cwd} : {}), ...(options.install ? {install: options.install} : {})}, options)
    this.sample()
    const collect = options.collect ?? true
    return {
      exitCode: raw.exitCode,
      signal: raw.signal,
      ...(collect ? {stdout: raw.stdout.toString('utf8'), stderr: raw.stderr} : {}),
      timedOut: raw.timedOut,
    }
  }

  async putFile(host: TransportHost, file: string, content: Buffer | string, options: PutFileOptions = {}): Promise<void> {
    const mode = octalMode(options.mode)
    const q = shellQuote(file)
    const lines = [
      'set -e',
      ...(options.mkdirs === false ? [] : [`mkdir -p -- "$(dirname -- ${q})"`]),
      // Written under umask 077 so a secret is never readable by others, even before the chmod.
      `(umask 077 && cat > ${q})`,
      ...(options.owner !== undefined ? [`chown ${shellQuote(options.owner)} -- ${q}`] : []),
      `chmod ${mode} -- ${q}`,
    ]
    const result = await this.exec(host, lines.join('\n'), {timeoutMs: options.timeoutMs ?? 60_000, stdin: content})
    if (result.exitCode !== 0) throw commandFailed(host, `writing ${file}`, result)
  }

  async readFile(host: TransportHost, file: string, options: {timeoutMs?: number} = {}): Promise<Buffer | undefined> {
    const q = shellQuote(file)
    const raw = await this.run(host, {script: `test -e ${q} || exit 100\nexec cat -- ${q}`}, {timeoutMs: options.timeoutMs ?? 60_000}, MAX_READ_BYTES)
    if (raw.exitCode === 100) return undefined
    if (raw.truncated) throw new TransportError(`${host.name}: ${file} is larger than ${MAX_READ_BYTES / 2 ** 20} MiB; not read`, 'ssh-command-failed', host.name)
    if (raw.exitCode !== 0) throw commandFailed(host, `reading ${file}`, raw)
    return raw.stdout
  }

  async warm(hosts: readonly TransportHost[]): Promise<void> {
    await Promise.all(hosts.map((host) => this.connection(host).then((connection) => (this.options.persistentShell ? this.shell(connection) : undefined)).then(() => undefined, () => undefined)))
  }

  /** Counters since the transport was made (bytes include connections still open). */
  stats(): TransportCounters {
    let bytesOut = this.counters.bytesOut
    let bytesIn = this.counters.bytesIn
    for (const socket of this.sockets) {
      bytesOut += socket.bytesWritten
      bytesIn += socket.bytesRead
    }
    return {...this.counters, bytesOut, bytesIn}
  }

  /** One sample of the counters and this process's CPU time, when SHOAL_TRANSPORT_STATS asks for a timeline. */
  private sample(): void {
    if (!this.timeline) return
    const cpu = process.cpuUsage()
    this.timeline.push({at: Date.now(), cpuMs: Math.round((cpu.user + cpu.system) / 1000), ...this.stats()})
  }

  async close(): Promise<void> {
    this.sample()
    if (this.timeline && process.env.SHOAL_TRANSPORT_STATS) {
      appendFileSync(process.env.SHOAL_TRANSPORT_STATS, `${JSON.stringify(this.timeline)}\n`)
      this.timeline = undefined
    }
    this.closing = true
    const connections = await Promise.allSettled([...this.pool.values()])
    this.pool.clear()
    await Promise.all(
      connections.map(async (settled) => {
        if (settled.status !== 'fulfilled' || settled.value.closed) return
        const {client, shells} = settled.value
        for (const shell of shells) shell.close()
        await new Promise<void>((resolve) => {
          client.once('close', () => resolve())
          client.end()
        })
      }),
    )
  }

  /**
   * Run a command on a pooled connection: in the connection's long-lived shell when the host has one (a fork there, one
   * request and one answer), otherwise on a session of its own. A connection found dead before the command started is
   * replaced once.
   */
  private async run(host: TransportHost, command: Command, options: ExecOptions, maxBytes = MAX_COLLECTED_BYTES): Promise<RawResult> {
    for (let attempt = 0; ; attempt++) {
      const connection = await this.connection(host)
      try {
        return await connection.channels.run(async () => {
          const shell = this.options.persistentShell ? await this.shell(connection) : undefined
          if (shell) return this.runInShell(shell, command, options, maxBytes)
          return this.runOnChannel(connection, wrapCommand(command.script, command.env, command.cwd), options, maxBytes)
        })
      } catch (error) {
        if (error instanceof ChannelNotOpened && connection.closed && attempt === 0) continue
        if (error instanceof ChannelNotOpened) throw new TransportError(`${host.name}: cannot open an SSH channel: ${error.message}`, 'ssh-channel-failed', host.name)
        throw error
      }
    }
  }

  /** The connection's shell, started on first use; undefined when the host cannot run one (no Perl). */
  private shell(connection: Connection): Promise<RemoteShell | undefined> {
    const current = connection.shell
    if (current) {
      return current.then((shell) => {
        if (!shell || !shell.closed_) return shell
        // The driver ended (killed on the host?): start another; commands already sent were answered as ended.
        if (connection.shell === current) connection.shell = undefined
        return this.shell(connection)
      })
    }
    const starting = new Promise<RemoteShell | undefined>((resolve, reject) => {
      if (connection.closed) return reject(new ChannelNotOpened('the connection was closed'))
      this.counters.sessions++
      this.counters.roundTrips += 2
      connection.client.exec(driverCommand(DRAIN_AFTER_EXIT_MS), (error, channel) => {
        if (error) return reject(new ChannelNotOpened(error.message))
        const shell = new RemoteShell(channelPipe(channel))
        connection.shells.push(shell)
        void shell.ready.then((pid) => resolve(pid === undefined ? undefined : shell))
      })
    })
    connection.shell = starting
    // Without a shell (no Perl) every command takes a session of its own, as before; that is decided once per connection.
    return starting
  }

  private async runInShell(shell: RemoteShell, command: Command, options: ExecOptions, maxBytes: number): Promise<RawResult> {
    const output = new Output(options, options.collect ?? true, maxBytes)
    const stdin = options.stdin === undefined ? undefined : typeof options.stdin === 'string' ? Buffer.from(options.stdin) : options.stdin
    this.counters.commands++
    this.counters.roundTrips++
    const exit = await shell.command(command, stdin, {onStdout: (chunk) => output.stdout(chunk), onStderr: (chunk) => output.stderr(chunk)}, {timeoutMs: options.timeoutMs, killGraceMs: this.options.killGraceMs})
    if (exit.error !== undefined) output.stderr(Buffer.from(`the command could not start on the host: ${exit.error}\n`))
    return output.result(exit.code, exit.signal, exit.timedOut)
  }

  private connection(host: TransportHost): Promise<Connection> {
    if (this.closing) return Promise.reject(new Error('the transport is closed'))
    const key = `${host.user}@${host.address}:${host.port}`
    const pooled = this.pool.get(key)
    if (pooled) {
      return pooled.then((connection) => {
        if (!connection.closed) return connection
        if (this.pool.get(key) === pooled) this.pool.delete(key)
        return this.connection(host)
      })
    }
    const connecting = this.connectWithRetries(host).then((client) => {
      const connection: Connection = {client, channels: new Limiter(this.options.channelsPerHost), closed: false, shells: []}
      const drop = (): void => {
        connection.closed = true
        if (this.pool.get(key) === connecting) this.pool.delete(key)
      }
      client.on('close', drop)
      client.on('end', drop)
      // Errors after the handshake surface on the channels in use; without a listener they would crash the process.
      client.on('error', drop)
      return connection
    })
    this.pool.set(key, connecting)
    connecting.catch(() => {
      if (this.pool.get(key) === connecting) this.pool.delete(key)
    })
    return connecting
  }

  private async connectWithRetries(host: TransportHost): Promise<Client> {
    const attempts = Math.max(1, this.options.connectAttempts)
    let last: Error = new Error('no attempt made')
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await this.handshakes.run(() => this.connectOnce(host))
      } catch (error) {
        if (error instanceof TransportError) throw error // host key and authentication problems do not heal by retrying
        last = error as Error
      }
      if (attempt < attempts) {
        const delay = this.options.retryDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random())
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
    throw new TransportError(
      `cannot connect to ${host.name} (${host.user}@${host.address} port ${host.port}) after ${attempts} attempts: ${last.message}. Is sshd running there?`,
      'ssh-connect-failed',
      host.name,
    )
  }

  private privateKey(host: TransportHost, file: string): ParsedKey {
    const known = this.keys.get(file)
    if (known) return known
    let parsed: ParsedKey | Error
    try {
      parsed = ssh2.utils.parseKey(readFileSync(file))
    } catch (error) {
      throw new TransportError(`${host.name}: cannot read the SSH key ${file}: ${(error as Error).message}`, 'ssh-key-unreadable', host.name)
    }
    if (parsed instanceof Error || !parsed.isPrivateKey()) {
      const why = parsed instanceof Error ? parsed.message : 'a public key'
      // shoal asks for no passphrase: such a key is used through the agent, which is asked only when no key file is named.
      const hint = /passphrase|encrypted/i.test(why) ? '; load it into the SSH agent (ssh-add) and leave ssh.key out of the inventory' : ''
      throw new TransportError(`${host.name}: the SSH key ${file} is not a private key shoal can use (${why})${hint}`, 'ssh-key-unreadable', host.name)
    }
    this.keys.set(file, parsed)
    return parsed
  }

  private connectOnce(host: TransportHost): Promise<Client> {
    const client = new ssh2.Client()
    let refusal: TransportError | undefined
    const config: ConnectConfig = {
      host: host.address,
      port: host.port,
      username: host.user,
      readyTimeout: this.options.handshakeTimeoutMs,
      ...(this.options.algorithms ? {algorithms: this.options.algorithms} : {}),
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier: (key: Buffer): boolean => {
        refusal = this.checkHostKey(host, key)
        return refusal === undefined
      },
    }
    if (host.keyFile !== undefined) {
      const publicKey: PublicKeyAuthMethod = {type: 'publickey', username: host.user, key: this.privateKey(host, host.keyFile)}
      config.authHandler = [publicKey]
    } else if (process.env.SSH_AUTH_SOCK) {
      config.agent = process.env.SSH_AUTH_SOCK
    } else {
      throw new TransportError(`${host.name}: no SSH key configured (ssh.key in the inventory) and no SSH agent ($SSH_AUTH_SOCK)`, 'ssh-key-unreadable', host.name)
    }
    return new Promise<Client>((resolve, reject) => {
      client.once('ready', () => {
        client.removeAllListeners('error')
        this.counters.handshakes++
        // ssh2's own socket: its byte counts are the connection's traffic (read when the stats are asked for).
        const socket = (client as unknown as {_sock?: {bytesWritten: number; bytesRead: number; once(e: 'close', f: () => void): void}})._sock
        if (socket) {
          this.sockets.add(socket)
          socket.once('close', () => {
            this.sockets.delete(socket)
            this.counters.bytesOut += socket.bytesWritten
            this.counters.bytesIn += socket.bytesRead
          })
        }
        resolve(client)
      })
      client.once('error', (error: Error & {level?: string}) => {
        client.end()
        if (refusal) reject(refusal)
        else if (error.level === 'client-authentication') {
          reject(new TransportError(`${host.name}: ${host.user}@${host.address} refused our key (${host.keyFile ?? 'SSH agent'}): check its authorized_keys`, 'ssh-auth-failed', host.name))
        } else reject(error)
      })
      client.connect(config)
    })
  }

  /** undefined = trusted; otherwise why the key is refused. */
  private checkHostKey(host: TransportHost, key: Buffer): TransportError | undefined {
    const file = readKnownHosts(host.knownHosts)
    const verdict = verifyHostKey(file, host.address, host.port, key)
    const name = knownHostName(host.address, host.port)
    switch (verdict.status) {
      case 'trusted':
        return undefined
      case 'unknown':
        if (this.options.acceptNewHostKeys) {
          appendKnownHost(host.knownHosts, host.address, host.port, key)
          return undefined
        }
        return new TransportError(
          `${host.name}: the host key of ${name} is not in ${host.knownHosts}. Verify the host, then run again with --accept-new-host-keys to record it (or add it with ssh-keyscan).`,
          'ssh-host-key-unknown',
          host.name,
        )
      case 'revoked':
        return new TransportError(`${host.name}: the host key of ${name} is marked @revoked in ${host.knownHosts} line ${verdict.entry.line}; refusing to connect.`, 'ssh-host-key-revoked', host.name)
      case 'changed':
        return new TransportError(
          `${host.name}: WARNING: THE HOST KEY OF ${name} HAS CHANGED. It no longer matches ${host.knownHosts} line ${verdict.entry.line} (${verdict.entry.keyType}). ` +
            'Someone could be intercepting the connection, or the host was reinstalled. Refusing to connect; if the change is expected, remove that line and record the new key.',
          'ssh-host-key-changed',
          host.name,
        )
      case 'other-type':
        return new TransportError(
          `${host.name}: ${name} offered a key type not recorded in ${host.knownHosts} (known there as ${verdict.entries.map((e) => `${e.keyType} at line ${e.line}`).join(', ')}). ` +
            'Refusing to connect; record the new key only after verifying it.',
          'ssh-host-key-changed',
          host.name,
        )
    }
  }

  private runOnChannel(connection: Connection, command: string, options: ExecOptions, maxBytes: number): Promise<RawResult> {
    const collect = options.collect ?? true
    return new Promise<RawResult>((resolve, reject) => {
      if (connection.closed) {
        reject(new ChannelNotOpened('the connection was closed'))
        return
      }
      this.counters.sessions++
      this.counters.commands++
      this.counters.roundTrips += 3
      connection.client.exec(command, (error, channel) => {
        if (error) {
          reject(new ChannelNotOpened(error.message))
          return
        }
        const stdoutChunks: Buffer[] = []
        let stdoutBytes = 0
        let stderr = ''
        let pgid: number | undefined
        let markerSeen = false
        let exitCode: number | null = null
        let signal: string | null = null
        let timedOut = false
        let truncated = false
        const timers: NodeJS.Timeout[] = []
        const stdoutLines = new LineSplitter((line) => options.onStdoutLine?.(line))
        const stderrLines = new LineSplitter((line) => {
          // Lines before the marker come from the login shell's startup files (bash sources ~/.bashrc for commands run
          // by sshd): they are passed on, and the marker is still looked for after them.
          if (!markerSeen) {
            const match = line.startsWith(PGID_MARKER) ? /^\d+$/.exec(line.slice(PGID_MARKER.length)) : null
            if (match) {
              markerSeen = true
              pgid = Number(match[0])
              return
            }
          }
          if (collect && stderr.length < maxBytes) stderr += `${line}\n`
          options.onStderrLine?.(line)
        })

        let exited = false
        let drainTimer: NodeJS.Timeout | undefined
        const drainLater = (): void => {
          if (!exited) return
          clearTimeout(drainTimer)
          drainTimer = setTimeout(() => channel.close(), DRAIN_AFTER_EXIT_MS)
        }
        channel.on('data', (chunk: Buffer) => {
          drainLater()
          if (collect && stdoutBytes + chunk.length <= maxBytes) {
            stdoutChunks.push(chunk)
            stdoutBytes += chunk.length
          } else if (collect) truncated = true
          if (options.onStdoutLine) stdoutLines.push(chunk)
        })
        channel.stderr.on('data', (chunk: Buffer) => {
          drainLater()
          stderrLines.push(chunk)
        })
        channel.on('exit', (code: number | null, signalName?: string) => {
          exitCode = code
          signal = signalName ? (signalName.startsWith('SIG') ? signalName : `SIG${signalName}`) : null
          exited = true
          drainLater()
        })
        channel.once('close', () => {
          for (const timer of timers) clearTimeout(timer)
          clearTimeout(drainTimer)
          stdoutLines.end()
          stderrLines.end()
          resolve({exitCode, signal, stdout: Buffer.concat(stdoutChunks), stderr, timedOut, truncated})
        })

        timers.push(
          setTimeout(() => {
            timedOut = true
            void this.killTimedOut(connection, channel, () => pgid, timers)
          }, options.timeoutMs),
        )
        if (options.stdin !== undefined) channel.end(options.stdin)
        else channel.end()
      })
    })
  }

  /**
   * A command ran past its deadline: TERM its process group, then KILL, then give up on the channel. The signal goes
   * two ways: an SSH signal request (OpenSSH delivers it with killpg to the session) and, as the channel request can be
   * refused, a `kill` of the recorded process group over a second channel.
   */
  private async killTimedOut(connection: Connection, channel: ClientChannel, pgid: () => number | undefined, timers: NodeJS.Timeout[]): Promise<void> {
    let closed = false
    channel.once('close', () => (closed = true))
    const grace = (): Promise<void> =>
      new Promise((resolve) => {
        if (closed) return resolve()
        const timer = setTimeout(resolve, this.options.killGraceMs)
        timers.push(timer)
        channel.once('close', () => {
          clearTimeout(timer)
          resolve()
        })
      })
    for (const signal of ['TERM', 'KILL']) {
      if (closed) return
      try {
        channel.signal(signal)
      } catch {
        // the channel may already be closing
      }
      const group = pgid()
      if (group !== undefined) await this.sideExec(connection, `kill -${signal} -- -${group} 2>/dev/null`)
      await grace()
    }
    if (!closed) channel.close()
  }

  /** A short command on its own channel outside the per-host queue (the queue may be full of the commands being killed). */
  private sideExec(connection: Connection, command: string): Promise<void> {
    return new Promise((resolve) => {
      if (connection.closed) return resolve()
      const timer = setTimeout(resolve, this.options.killGraceMs)
      this.counters.sessions++
      this.counters.commands++
      this.counters.roundTrips += 3
      connection.client.exec(command, (error, channel) => {
        if (error) {
          clearTimeout(timer)
          return resolve()
        }
        channel.on('data', () => undefined)
        channel.stderr.on('data', () => undefined)
        channel.once('close', () => {
          clearTimeout(timer)
          resolve()
        })
        channel.end()
      })
    })
  }
}

interface RawResult {
  exitCode: number | null
  signal: string | null
  stdout: Buffer
  stderr: string
  timedOut: boolean
  /** stdout went past the byte limit; what was kept is its beginning. */
  truncated: boolean
}

/** The SSH channel could not be opened: the command never started, so it is safe to try again. */
class ChannelNotOpened extends Error {}

/** A command's output as it arrives: collected up to a byte limit, and split into lines for the callbacks. */
class Output {
  private readonly chunks: Buffer[] = []
  private bytes = 0
  private stderrText = ''
  private truncated = false
  private readonly outLines: LineSplitter
  private readonly errLines: LineSplitter

  constructor(private readonly options: ExecOptions, private readonly collect: boolean, private readonly maxBytes: number) {
    this.outLines = new LineSplitter((line) => options.onStdoutLine?.(line))
    this.errLines = new LineSplitter((line) => {
      if (collect && this.stderrText.length < maxBytes) this.stderrText += `${line}\n`
      options.onStderrLine?.(line)
    })
  }

  stdout(chunk: Buffer): void {
    if (this.collect && this.bytes + chunk.length <= this.maxBytes) {
      this.chunks.push(chunk)
      this.bytes += chunk.length
    } else if (this.collect) this.truncated = true
    if (this.options.onStdoutLine) this.outLines.push(chunk)
  }

  stderr(chunk: Buffer): void {
    this.errLines.push(chunk)
  }

  result(exitCode: number | null, signal: string | null, timedOut: boolean): RawResult {
    this.outLines.end()
    this.errLines.end()
    return {exitCode, signal, stdout: Buffer.concat(this.chunks), stderr: this.stderrText, timedOut, truncated: this.truncated}
  }
}
