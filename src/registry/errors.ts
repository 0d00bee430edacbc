// Registry errors: values with a stable code and a message that says what to do next.
export type RegistryErrorCode = 'STALE_PLAN' | 'LOCKED' | 'LOCK_ID_MISMATCH' | 'NOT_LOCKED' | 'COMMIT_IN_PROGRESS' | 'COMMIT_INTERRUPTED' | 'INVALID_CHANGE' | 'ROLLBACK_IMPOSSIBLE'

export class RegistryError extends Error {
  constructor(message: string, readonly code: RegistryErrorCode) {
    super(message)
    this.name = 'RegistryError'
  }
}

/** The cluster changed after the plan was made: re-plan against the current state. */
export class StaleError extends RegistryError {
  constructor(message: string, readonly expectedModRevision: number, readonly actualModRevision: number) {
    super(message, 'STALE_PLAN')
    this.name = 'StaleError'
  }
}
