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

/** Last stdout line of the install script: what it did (`unchanged`, `created`, `replaced`, or `check-failed <exit>`). */
const OUTCOME_MARKER = '__shoal_install='

/**
 * Compare, stage, check and swap in one command on the host. The content is sent even when the host already has it:
 * config files are small, and a separate compare would cost a round trip — a new session and login shell on the
 * host — per file, which is what an operation on many nodes spends most of its time on.
 */
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
  const script = [
    'set -e',
    `if test -f ${dest} && test "$(sha256sum < ${dest})" = ${shellQuote(`${hash}  -`)}; then`,
    '  cat > /dev/null',
    ...attributes(options.path).map((line) => `  ${line}`),
    `  echo ${OUTCOME_MARKER}unchanged`,
    '  exit 0',
    'fi',
    `mkdir -p -- "$(dirname -- ${dest})"`,
    // Written under umask 077 so a secret is never readable by others, even before the chmod.
    `(umask 077 && cat > ${shellQuote(staged)})`,
    ...attributes(staged),
    // The check runs in a shell of its own (no `set -e`, as a command of its own would); its output goes to stderr.
    ...(options.check
      ? [
          `if /bin/sh -c ${shellQuote(options.check(staged))} >&2; then :; else`,
          `  checked=$?; rm -f -- ${shellQuote(staged)}; echo "${OUTCOME_MARKER}check-failed $checked"; exit 0`,
          'fi',
        ]
      : []),
    // A hard link keeps the old content without a moment where the destination is missing; the rename is atomic.
    `if test -f ${dest}; then`,
    `  ln -f -- ${dest} ${shellQuote(backup)} 2>/dev/null || cp -p -- ${dest} ${shellQuote(backup)}`,
    `  mv -f -- ${shellQuote(staged)} ${dest}`,
    `  echo ${OUTCOME_MARKER}replaced`,
    'else',
    `  rm -f -- ${shellQuote(backup)}`,
    `  mv -f -- ${shellQuote(staged)} ${dest}`,
    `  echo ${OUTCOME_MARKER}created`,
    'fi',
  ].join('\n')
  const result = await transport.exec(host, script, {timeoutMs, stdin: options.content})
  const outcome = result.exitCode === 0 ? (result.stdout ?? '').trim().split('\n').at(-1) ?? '' : ''
  if (!outcome.startsWith(OUTCOME_MARKER)) throw commandFailed(host, `installing ${options.path}`, result)
  const what = outcome.slice(OUTCOME_MARKER.length)
  if (what === 'unchanged') return {path: options.path, changed: false}
  if (what === 'created') return {path: options.path, changed: true}
  if (what === 'replaced') return {path: options.path, changed: true, backup}
  throw new TransportError(`${host.name}: the check of ${options.path} refused the new content (exit ${what.split(' ')[1] ?? '?'})${tail({...result, stdout: ''})}`, 'file-check-failed', host.name)
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

function tail(result: ExecResult): string {
  const text = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').slice(-5).join(' | ')
  return text ? `: ${text}` : ''
}
