// The Transport contract: run commands and place files on hosts. The executor talks to hosts only through this.
import {ShoalError} from '../errors.js'

/** How to reach one host. Build it from the inventory with `transportHost`. */
export interface TransportHost {
  /** Inventory name, used in messages. */
  name: string
  address: string
  port: number
  user: string
  /** Private key file; absent = the SSH agent at $SSH_AUTH_SOCK. */
  keyFile?: string
  /** The known_hosts file the host key is verified against. */
  knownHosts: string
}

export type EnvValues = Record<string, string | number | boolean>

export interface ExecOptions {
  /** The remote process group is killed once this has passed. Required: every command on a host has a deadline. */
  timeoutMs: number
  /** Passed as a shell-quoted prefix (sshd drops exec env). Names must be shell identifiers. */
  env?: EnvValues
  /** Directory to run in (must exist). */
  cwd?: string
  /** Sent to the command's stdin, then EOF. Without it, stdin is empty. */
  stdin?: Buffer | string
  onStdoutLine?: (line: string) => void
  onStderrLine?: (line: string) => void
  /** Keep stdout/stderr in the result (default true; each capped at `MAX_COLLECTED_BYTES`). */
  collect?: boolean
  /**
   * The command is an install script (install.ts) of these files, their contents one after the other on stdin. A host
   * whose shell driver can install them itself does so instead of running the script, with the same outcome lines on
   * stdout and the same result: no process is started for it (each costs a fork and exec there).
   */
  install?: DriverInstallFile[]
}

/** A file for the driver to install: the next `bytes` bytes of stdin, its octal mode and owner (`user[:group]`). */
export interface DriverInstallFile {
  path: string
  bytes: number
  mode: string
  owner?: string
}

export interface ExecResult {
  /** Exit status; null when the command ended by a signal or was abandoned after its timeout. */
  exitCode: number | null
  /** e.g. `SIGKILL` when the command was killed by a signal. */
  signal: string | null
  stdout?: string
  stderr?: string
  /** The command ran past `timeoutMs`; its process group was killed. */
  timedOut: boolean
}

export interface PutFileOptions {
  /** Octal mode such as `0644` or 0o644. Default `0644`. */
  mode?: string | number
  /** `user` or `user:group`. */
  owner?: string
  /** Create missing parent directories (default true). */
  mkdirs?: boolean
  timeoutMs?: number
}

export interface Transport {
  exec(host: TransportHost, command: string, options: ExecOptions): Promise<ExecResult>
  /** Write a file (binary-safe, not atomic: see `installFile` for the staged, atomic path). */
  putFile(host: TransportHost, path: string, content: Buffer | string, options?: PutFileOptions): Promise<void>
  /** A file's content, or undefined when it does not exist. */
  readFile(host: TransportHost, path: string, options?: {timeoutMs?: number}): Promise<Buffer | undefined>
  /**
   * Begin connecting to hosts about to be used (the connections take the longest to set up). The promise settles when
   * every host is connected or has failed, and never rejects: a host that cannot be reached fails the first call that
   * needs it, as without this.
   */
  warm?(hosts: readonly TransportHost[]): Promise<void>
  /** Close every connection. */
  close(): Promise<void>
}

/** Collected stdout/stderr are cut after this many bytes (line callbacks still see everything). */
export const MAX_COLLECTED_BYTES = 4 * 1024 * 1024

export type TransportErrorCode =
  | 'ssh-connect-failed'
  | 'ssh-auth-failed'
  | 'ssh-key-unreadable'
  | 'ssh-host-key-unknown'
  | 'ssh-host-key-changed'
  | 'ssh-host-key-revoked'
  | 'ssh-channel-failed'
  | 'ssh-command-failed'
  | 'file-check-failed'

/** A transport failure: which host, and a message a person can act on. */
export class TransportError extends ShoalError {
  constructor(message: string, override readonly code: TransportErrorCode, readonly host: string) {
    super(message, code)
    this.name = 'TransportError'
  }
}

/** Normalise a file mode to four octal digits, e.g. `0644`. */
export function octalMode(mode: string | number | undefined): string {
  if (mode === undefined) return '0644'
  const text = typeof mode === 'number' ? mode.toString(8) : mode.replace(/^0o/, '')
  if (!/^[0-7]{3,4}$/.test(text)) throw new Error(`file mode ${JSON.stringify(mode)} is not an octal mode such as 0644`)
  return text.padStart(4, '0')
}

/** A TransportError for a command that did not succeed, with the end of its stderr. */
export function commandFailed(host: TransportHost, what: string, result: {exitCode: number | null; signal: string | null; stderr?: string; timedOut: boolean}): TransportError {
  const how = result.timedOut ? 'timed out' : result.signal ? `was killed by ${result.signal}` : `exited ${String(result.exitCode)}`
  const detail = result.stderr?.trim().split('\n').slice(-5).join(' | ')
  return new TransportError(`${host.name}: ${what} ${how}${detail ? `: ${detail}` : ''}`, 'ssh-command-failed', host.name)
}
