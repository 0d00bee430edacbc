// Text that echoes input, made safe for a terminal: control characters quoted, long values cut.

/**
 * C0 controls except tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder what a reader
 * sees ("Trojan source"): a spec must not be able to move the cursor, clear the screen or print fake results.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be matched here
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/** Quote every unsafe character as a visible escape (`\x1b`, `\r`, `\u202e`); tab and newline stay as they are. */
export function quoteControl(text: string): string {
  UNSAFE.lastIndex = 0
  if (!UNSAFE.test(text)) return text
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0)
    if (c === '\r') return '\\r'
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
}

/** At most `max` characters: longer text keeps its start and says how much was left out. */
export function ellipsize(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`
}

/** A value quoted for a message (JSON string escapes, so control characters are visible), cut to `max` characters. */
export function quoted(value: unknown, max = 80): string {
  const text = JSON.stringify(typeof value === 'string' ? ellipsize(value, max) : value) ?? String(value)
  return text.length <= max + 40 ? text : ellipsize(text, max)
}
