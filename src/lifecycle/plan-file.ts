// Saved plans (`shoal plan --out`): the plan plus the registry revision it was made against, so applying it against
// a changed cluster is refused. The file holds secret values (the registry needs them), so it is written 0600.
import {randomBytes} from 'node:crypto'
import {closeSync, constants, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {readBounded} from '../spec/load.js'
import type {Plan} from '../plan/types.js'
import {EXIT, ShoalError} from '../errors.js'

export const PLAN_FORMAT = 'shoal-plan/v1'

export interface SavedPlan {
  format: typeof PLAN_FORMAT
  /** Which registry the plan was made against, e.g. `embedded .shoal` or `etcd http://...`. */
  registry: string
  /** Mod revision of the cluster revision key when planned (0: the cluster was not registered). */
  expectedModRevision: number
  plan: Plan
}

/** Saved plans of 10,000-node clusters are tens of MiB; a bound still keeps `apply /dev/zero` from filling memory. */
export const MAX_PLAN_FILE_BYTES = 512 * 1024 * 1024

/**
 * Write the plan to a new file beside `path` (created exclusively, mode 0600 whatever the umask), fsync it and rename
 * it over `path`. Whatever was at `path` — a 0644 file, a symbolic link — is replaced, never written through: an
 * existing file keeps no secrets at its old mode, and a link cannot redirect the write elsewhere.
 */
export function writePlanFile(path: string, saved: SavedPlan | SavedPlanSet): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  let fd: number
  try {
    fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  } catch (err) {
    throw new ShoalError(`cannot write plan file ${path}: ${(err as Error).message}`, 'plan-unwritable', EXIT.usage)
  }
  try {
    fchmodSync(fd, 0o600)
    const bytes = Buffer.from(JSON.stringify(saved) + '\n')
    for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written)
    fsyncSync(fd)
    closeSync(fd)
    renameSync(temp, path)
  } catch (err) {
    try {
      closeSync(fd)
    } catch {
      // already closed
    }
    try {
      unlinkSync(temp)
    } catch {
      // never created or already renamed
    }
    throw new ShoalError(`cannot write plan file ${path}: ${(err as Error).message}`, 'plan-unwritable', EXIT.usage)
  }
}

export const PLAN_SET_FORMAT = 'shoal-plan-set/v1'

/** A saved plan of a set of specs (`shoal plan DIR --out FILE`): each cluster's plan, in the order they are applied. */
export interface SavedPlanSet {
  format: typeof PLAN_SET_FORMAT
  registry: string
  plans: Array<Omit<SavedPlan, 'format' | 'registry'>>
}

/** A saved plan of one spec, or of a set. */
export function readAnyPlanFile(path: string): SavedPlan | SavedPlanSet {
  const parsed = readJson(path)
  const set = parsed as Partial<SavedPlanSet>
  if (set?.format === PLAN_SET_FORMAT) {
    if (!Array.isArray(set.plans) || set.plans.some((p) => typeof p?.expectedModRevision !== 'number' || typeof p.plan !== 'object' || p.plan === null)) {
      throw new ShoalError(`${path} is not a readable shoal plan set`, 'plan-unreadable', EXIT.usage)
    }
    return set as SavedPlanSet
  }
  return checkedPlan(path, parsed)
}

function readJson(path: string): unknown {
  const read = readBounded(path, MAX_PLAN_FILE_BYTES, 'plan file')
  if (!('bytes' in read)) throw new ShoalError(`${read.message}: ${path}`, 'plan-unreadable', EXIT.usage)
  try {
    return JSON.parse(read.bytes.toString('utf8'))
  } catch (err) {
    throw new ShoalError(`cannot read plan file ${path}: ${(err as Error).message}`, 'plan-unreadable', EXIT.usage)
  }
}

function checkedPlan(path: string, parsed: unknown): SavedPlan {
  const saved = parsed as Partial<SavedPlan>
  if (saved?.format !== PLAN_FORMAT || typeof saved.expectedModRevision !== 'number' || typeof saved.plan !== 'object' || saved.plan === null) {
    throw new ShoalError(`${path} is not a shoal plan file (expected format ${PLAN_FORMAT}); make one with \`shoal plan SPEC --out FILE\``, 'plan-unreadable', EXIT.usage)
  }
  return saved as SavedPlan
}
