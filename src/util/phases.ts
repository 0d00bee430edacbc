// When a command reaches each phase of an operation, for the benchmark's breakdown (SHOAL_PHASES=FILE); nothing when unset.
import {appendFileSync} from 'node:fs'

/** Appends `{"at": epoch ms, "phase": name}` to $SHOAL_PHASES. */
export function markPhase(phase: string): void {
  const file = process.env.SHOAL_PHASES
  if (!file) return
  try {
    appendFileSync(file, `${JSON.stringify({at: Date.now(), phase})}\n`)
  } catch {
    // A measurement aid: a file that cannot be written must not stop an operation.
  }
}
