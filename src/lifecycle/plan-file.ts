// Saved plans (`shoal plan --out`): the plan plus the registry revision it was made against, so applying it against
// a changed cluster is refused. The file holds secret values (the registry needs them), so it is written 0600.
import {readFileSync, writeFileSync} from 'node:fs'
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

export function writePlanFile(path: string, saved: SavedPlan): void {
  writeFileSync(path, JSON.stringify(saved) + '\n', {mode: 0o600})
}

export function readPlanFile(path: string): SavedPlan {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ShoalError(`cannot read plan file ${path}: ${(err as Error).message}`, 'plan-unreadable', EXIT.usage)
  }
  const saved = parsed as Partial<SavedPlan>
  if (saved?.format !== PLAN_FORMAT || typeof saved.expectedModRevision !== 'number' || typeof saved.plan !== 'object' || saved.plan === null) {
    throw new ShoalError(`${path} is not a shoal plan file (expected format ${PLAN_FORMAT}); make one with \`shoal plan SPEC --out FILE\``, 'plan-unreadable', EXIT.usage)
  }
  return saved as SavedPlan
}
