// Installing a file on a host the safe way: staged beside the destination → compare → check → atomic rename, one backup kept.
import {createHash} from 'node:crypto'
import {shellQuote} from '../util/shell.js'
import {TransportError, commandFailed, octalMode, type ExecResult, type Transport, type TransportHost} from './transport.js'

export interface InstallFileOptions {
  /** Absolute destination path. */
  path: string
  content: Buffer | string
  /** Default `0644`. */
  mode?: string | number
  /** `user` or `user:group`. */
  owner?: string
  /** Command validating the staged file, given its path; must quote it (shellQuote). Non-zero exit = refused. */
  check?: (stagedPath: string) => string
  timeoutMs?: number
}

export interface InstallResult {
  path: string
  /** False when the destination already had this content (mode and owner are still applied). */
  changed: boolean
  /** Where the previous content was kept, or undefined when the file did not exist before (or nothing changed). */
  backup?: string
}

export const STAGED_SUFFIX = '.shoal-new'
export const BACKUP_SUFFIX = '.shoal-bak'

export async function installFile(transport: Transport, host: TransportHost, options: InstallFileOptions): Promise<InstallResult> {
  const timeoutMs = options.timeoutMs ?? 60_000
  const mode = octalMode(options.mode)
  const dest = shellQuote(options.path)
  const staged = `${options.path}${STAGED_SUFFIX}`
  const backup = `${options.path}${BACKUP_SUFFIX}`
  const attributes = (file: string): string[] => [
    ...(options.owner !== undefined ? [`chown ${shellQuote(options.owner)} -- ${shellQuote(file)}`] : []),
    `chmod ${mode} -- ${shellQuote(file)}`,
  ]

  const hash = createHash('sha256').update(options.content).digest('hex')
  const current = await run(transport, host, `if test -f ${dest}; then sha256sum -- ${dest}; fi`, timeoutMs, `hashing ${options.path}`)
  if (current.stdout?.split(' ')[0] === hash) {
    await run(transport, host, ['set -e', ...attributes(options.path)].join('\n'), timeoutMs, `setting the mode of ${options.path}`)
    return {path: options.path, changed: false}
  }

  await transport.putFile(host, staged, options.content, {mode, ...(options.owner !== undefined ? {owner: options.owner} : {}), timeoutMs})
  if (options.check) {
    const checked = await transport.exec(host, options.check(staged), {timeoutMs})
    if (checked.exitCode !== 0) {
      await run(transport, host, `rm -f -- ${shellQuote(staged)}`, timeoutMs, `removing ${staged}`)
      throw new TransportError(`${host.name}: the check of ${options.path} refused the new content (${outcome(checked)})${tail(checked)}`, 'file-check-failed', host.name)
    }
  }
  // A hard link keeps the old content without a moment where the destination is missing; the rename is atomic.
  const existed = current.stdout !== undefined && current.stdout !== ''
  const swap = existed
    ? `ln -f -- ${dest} ${shellQuote(backup)} 2>/dev/null || cp -p -- ${dest} ${shellQuote(backup)}\nmv -f -- ${shellQuote(staged)} ${dest}`
    : `rm -f -- ${shellQuote(backup)}\nmv -f -- ${shellQuote(staged)} ${dest}`
  await run(transport, host, `set -e\n${swap}`, timeoutMs, `replacing ${options.path}`)
  return {path: options.path, changed: true, ...(existed ? {backup} : {})}
}

/** Undo an install (e.g. the reload failed): put the backup back, or remove a file that did not exist before. */
export async function restoreFile(transport: Transport, host: TransportHost, installed: InstallResult, timeoutMs = 60_000): Promise<void> {
  if (!installed.changed) return
  const dest = shellQuote(installed.path)
  const command = installed.backup !== undefined ? `mv -f -- ${shellQuote(installed.backup)} ${dest}` : `rm -f -- ${dest}`
  await run(transport, host, command, timeoutMs, `restoring ${installed.path}`)
}

async function run(transport: Transport, host: TransportHost, command: string, timeoutMs: number, what: string): Promise<ExecResult> {
  const result = await transport.exec(host, command, {timeoutMs})
  if (result.exitCode !== 0) throw commandFailed(host, what, result)
  return result
}

function outcome(result: ExecResult): string {
  return result.timedOut ? 'timed out' : result.signal ? `killed by ${result.signal}` : `exit ${String(result.exitCode)}`
}

function tail(result: ExecResult): string {
  const text = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').slice(-5).join(' | ')
  return text ? `: ${text}` : ''
}
