// Parsing of the spec's unit strings: sizes (`512Mi`), durations (`1h30m`), counts or percentages (`25%`).

const SIZE_FACTORS: Record<string, number> = {
  '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4,
}
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$'
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$'
export const PERCENT_PATTERN = '^[0-9]+(\\.[0-9]+)?%$'

/** The largest size accepted: 2^53 - 1 bytes (8 PiB), far past any machine, and still exact as a JavaScript number. */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER

/** Bytes for a size string, or undefined when it does not parse or is larger than MAX_SIZE_BYTES. */
export function parseSize(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(text)
  if (!m) return undefined
  const bytes = Math.round(Number(m[1]) * SIZE_FACTORS[m[2] ?? '']!)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}

const DURATION_FACTORS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}

/** Milliseconds for a duration string, or undefined when it does not parse. */
export function parseDuration(text: string): number | undefined {
  if (!new RegExp(DURATION_PATTERN).test(text)) return undefined
  let total = 0
  for (const m of text.matchAll(/([0-9]+)(ms|s|m|h)/g)) total += Number(m[1]) * DURATION_FACTORS[m[2]!]!
  return Number.isSafeInteger(total) ? total : undefined
}

/** Resolve a count-or-percent against a total: `25%` of 10 is 3 (rounded up, at least 1). */
export function resolveCountOrPercent(value: number | string, total: number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 ? value : undefined
  const m = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(value)
  if (!m) return undefined
  const pct = Number(m[1])
  if (pct <= 0 || pct > 100) return undefined
  return Math.max(1, Math.ceil((total * pct) / 100))
}
