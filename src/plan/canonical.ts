// Canonical JSON (sorted keys, no whitespace) and content hashes: the stable bytes behind spec_hash and file hashes.
import {createHash} from 'node:crypto'

/** JSON with object keys sorted at every level, so equal data always gives equal bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value))
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key]
    if (v !== undefined) out[key] = sortKeys(v)
  }
  return out
}

/** sha256 of a string, hex (deterministic, no I/O). */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
