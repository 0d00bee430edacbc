// How an operation reports progress: the executor calls a Reporter; commands choose how it is shown (see cli/progress.ts).
import type {Step} from '../plan/steps.js'

export interface Reporter {
  /** A step begins (`resumed` when part of it ran in an earlier, interrupted run). */
  step(step: Step, index: number, total: number, resumed: boolean): void
  /** A step finished in an earlier run and is skipped. */
  skipped(step: Step, index: number, total: number): void
  /** One line of a script's output on a node (secrets already redacted). */
  output(node: string, stream: 'stdout' | 'stderr', line: string): void
  /** A note for a person, e.g. a node that is skipped because it already ran a script. */
  note(message: string): void
}

export const silentReporter: Reporter = {step: () => undefined, skipped: () => undefined, output: () => undefined, note: () => undefined}

/** Replace every secret value in a line (one mechanism with plans and `get`). */
export {redactText as redact} from '../plan/show.js'
