// Installing a file on a host the safe way: staged beside the destination → compare → check → atomic rename, one backup kept.
import {posix} from 'node:path'
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

/** A spec's `check` command (`{{src}}` = the staged file) as `InstallFileOptions.check` takes it. */
export function checkCommand(check: string): (stagedPath: string) => string {
  return (staged) => check.replace(/\{\{\s*src\s*\}\}/g, shellQuote(staged))
}

export const STAGED_SUFFIX = '.shoal-new'
export const BACKUP_SUFFIX = '.shoal-bak'

/** A stdout line of the install script per file: `<index> unchanged|created|replaced|check-failed <exit>`. */
const OUTCOME_MARKER = '__shoal_install='

export async function installFile(transport: Transport, host: TransportHost, options: InstallFileOptions): Promise<InstallResult> {
  const [result] = await installFiles(transport, host, [options], options.timeoutMs)
  return result!
}

/**
 * Install files in order with one command on the host: each one staged, compared, checked and swapped as `installFile`
 * describes. One command, because each command is a round trip (and, on a host without the transport's shell, a new
 * session and login shell). The contents go along whether or not they are needed (config files are small), one after
 * the other on stdin, each read by `head -c` (GNU coreutils reads exactly that many bytes). The script forks as little
 * as it can — every process started there costs a fork and exec, which is most of what installing costs on the host:
 * a directory is made only when missing, a file whose mode has no execute bits is created with it (umask) instead of
 * chmod'ed, a new file needs no comparison. A file its check refuses stops the run with a file-check-failed error; the
 * files before it stay installed (restore them with `restoreFile`).
 */
export async function installFiles(transport: Transport, host: TransportHost, files: readonly InstallFileOptions[], timeoutMs = 60_000): Promise<InstallResult[]> {
  if (files.length === 0) return []
  const contents = files.map((f) => (typeof f.content === 'string' ? Buffer.from(f.content) : f.content))
  const dirs = [...new Set(files.map((f) => posix.dirname(f.path)))]
  const script = [
    'set -e',
    // The umask the command started with: directories are made under it, as `mkdir -p` always made them.
    'u=$(umask)',
    ...dirs.map((dir) => `test -d ${shellQuote(dir)} || mkdir -p -- ${shellQuote(dir)}`),
    ...files.flatMap((file, index) => installScript(file, index, contents[index]!.length)),
  ].join('\n')
  // A check runs a command of the spec's between staging and swapping: that takes the script (so does a relative path,
  // which the script resolves in its own directory). Otherwise a host's shell driver installs the files itself.
  const direct = files.some((f) => f.check || !f.path.startsWith('/')) ? undefined : files.map((f, i) => ({path: f.path, bytes: contents[i]!.length, mode: octalMode(f.mode), ...(f.owner !== undefined ? {owner: f.owner} : {})}))
  const result = await transport.exec(host, script, {timeoutMs, stdin: Buffer.concat(contents), ...(direct ? {install: direct} : {})})
  const outcomes = new Map<number, string>()
  for (const line of (result.stdout ?? '').split('\n')) {
    const match = line.startsWith(OUTCOME_MARKER) ? /^(\d+) (.+)$/.exec(line.slice(OUTCOME_MARKER.length)) : null
    if (match) outcomes.set(Number(match[1]), match[2]!)
  }
  const installed: InstallResult[] = []
  for (const [index, file] of files.entries()) {
    const what = outcomes.get(index)
    if (what === 'unchanged') installed.push({path: file.path, changed: false})
    else if (what === 'created') installed.push({path: file.path, changed: true})
    else if (what === 'replaced') installed.push({path: file.path, changed: true, backup: `${file.path}${BACKUP_SUFFIX}`})
    else if (what?.startsWith('check-failed ')) {
      throw new TransportError(`${host.name}: the check of ${file.path} refused the new content (exit ${what.slice('check-failed '.length)})${tail({...result, stdout: ''})}`, 'file-check-failed', host.name)
    } else throw commandFailed(host, `installing ${file.path}`, result)
  }
  return installed
}

/** The shell lines installing one file whose content is the next `bytes` bytes of stdin. */
function installScript(file: InstallFileOptions, index: number, bytes: number): string[] {
  const mode = octalMode(file.mode)
  const dest = shellQuote(file.path)
  const staged = shellQuote(`${file.path}${STAGED_SUFFIX}`)
  const backup = shellQuote(`${file.path}${BACKUP_SUFFIX}`)
  // A mode head can create the file with (no execute or special bits): umask = its complement, so no chmod is needed
  // on a fresh staged file and it is never more readable than it ends up. Otherwise it is written under umask 077 and
  // chmod'ed, so a secret is never readable by others, even before the chmod.
  const bits = parseInt(mode, 8)
  const direct = (bits & 0o7111) === 0
  const createMask = direct ? `0${(0o777 & ~bits).toString(8).padStart(3, '0')}` : '077'
  // A refused owner leaves no staged copy behind (as the shell driver's install does).
  const owner = file.owner !== undefined ? [`chown ${shellQuote(file.owner)} -- ${staged} || { rm -f -- ${staged}; exit 1; }`] : []
  const done = (what: string): string => `echo "${OUTCOME_MARKER}${index} ${what}"`
  return [
    // A staged file left by an interrupted run would keep its mode through `>`: start from none.
    `if test -e ${staged} || test -L ${staged}; then rm -f -- ${staged}; fi`,
    `umask ${createMask}; head -c ${bytes} > ${staged}; umask "$u"`,
    `if test -f ${dest} && cmp -s -- ${staged} ${dest}; then`,
    `  rm -f -- ${staged}`,
    ...(file.owner !== undefined ? [`  chown ${shellQuote(file.owner)} -- ${dest}`] : []),
    `  chmod ${mode} -- ${dest}`,
    `  ${done('unchanged')}`,
    'else',
    ...owner.map((line) => `  ${line}`),
    ...(direct ? [] : [`  chmod ${mode} -- ${staged}`]),
    // The check runs in a shell of its own (no `set -e`, no stdin: that holds the next files); its output goes to stderr.
    ...(file.check
      ? [
          `  if /bin/sh -c ${shellQuote(file.check(`${file.path}${STAGED_SUFFIX}`))} >&2 < /dev/null; then :; else`,
          `    checked=$?; rm -f -- ${staged}; ${done('check-failed $checked')}; exit 0`,
          '  fi',
        ]
      : []),
    // A hard link keeps the old content without a moment where the destination is missing; the rename is atomic.
    `  if test -f ${dest}; then`,
    `    ln -f -- ${dest} ${backup} 2>/dev/null || cp -p -- ${dest} ${backup}`,
    `    mv -f -- ${staged} ${dest}`,
    `    ${done('replaced')}`,
    '  else',
    `    if test -e ${backup}; then rm -f -- ${backup}; fi`,
    `    mv -f -- ${staged} ${dest}`,
    `    ${done('created')}`,
    '  fi',
    'fi',
  ]
}

/** Undo an install (e.g. the reload failed): put the backup back, or remove a file that did not exist before. */
/**
 * Install a file on this machine with no command: the same steps as `installFiles` (staged beside the destination,
 * the previous content kept as the backup by a hard link, atomic rename, exact mode) done with fs calls. For files
 * with no check and no owner, where a shell would add only its start: from a Node process, spawning one costs more
 * CPU than the install (the agent's passes spent most of their time in spawn).
 */
export async function installLocalFile(file: Pick<InstallFileOptions, 'path' | 'content' | 'mode'>): Promise<InstallResult> {
  const {mkdir, link, copyFile, rm, writeFile, chmod, rename, readFile} = await import('node:fs/promises')
  const mode = parseInt(octalMode(file.mode ?? '0644'), 8)
  await mkdir(posix.dirname(file.path), {recursive: true})
  const backup = `${file.path}${BACKUP_SUFFIX}`
  const before = await readFile(file.path).catch(() => undefined)
  const existed = before !== undefined
  // Same content, another mode: only the mode changes, as installFiles does it (nothing to reload).
  if (before?.equals(typeof file.content === 'string' ? Buffer.from(file.content) : file.content)) {
    await chmod(file.path, mode)
    return {path: file.path, changed: false}
  }
  if (existed) {
    await rm(backup, {force: true})
    await link(file.path, backup).catch(() => copyFile(file.path, backup))
  }
  const staged = `${file.path}${STAGED_SUFFIX}`
  await writeFile(staged, file.content, {mode})
  await chmod(staged, mode)
  await rename(staged, file.path)
  return {path: file.path, changed: true, ...(existed ? {backup} : {})}
}

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
