// Errors as values and the exit codes they carry: the ground floor every layer may import (the CLI only renders them).

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  /** Problems found / operation failed. */
  failure: 1,
  /** Usage error, or for `plan --detailed-exitcode`: changes present. */
  usage: 2,
  changes: 2,
} as const

/** An error a person can act on: a code and a message, printed without a stack trace. */
export class ShoalError extends Error {
  constructor(message: string, readonly code: string, readonly exitCode: number = EXIT.failure) {
    super(message)
    this.name = 'ShoalError'
  }
}
