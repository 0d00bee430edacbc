// Problems are values: a stable rule id, a severity, a message a person can act on, and a position.
export type Severity = 'error' | 'warning' | 'info'

export interface Problem {
  file: string
  /** 1-based; 0 when the problem has no position (e.g. an unreadable file). */
  line: number
  col: number
  endLine?: number
  endCol?: number
  rule: string
  severity: Severity
  message: string
}
