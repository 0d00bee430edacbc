// Fuzzing `shoal lint` (issue 15): random YAML (specs built from random values, then mutated) and random bytes up to
// the size limit. Every input gets a fixed time budget, lint never throws (so the CLI never prints a stack trace),
// the text report never carries a raw control character, and memory stays under a bound.
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import fc from 'fast-check'
import {stringify} from 'yaml'
import {describe, expect, it} from 'vitest'
import {lintPaths} from '../src/lint/lint.js'
import {formatText} from '../src/lint/format/text.js'
import {LOAD_LIMITS} from '../src/spec/load.js'

/** Per input, generous for a shared 2-core machine; a quadratic path on a large input blows through it. */
const BUDGET_MS = 8_000
/** Peak resident memory of this test process (it holds several 1 MiB inputs and their results at a time). */
const MEMORY_BOUND_MB = 1_500

async function lintOnce(input: Uint8Array | string): Promise<string> {
  const started = performance.now()
  const result = await lintPaths(['-'], {readStdin: async () => input})
  const text = formatText(result, {color: false})
  const ms = performance.now() - started
  expect(ms, `lint took ${ms.toFixed(0)} ms on an input of ${input.length} bytes`).toBeLessThan(BUDGET_MS)
  expect(result.files).toHaveLength(1)
  for (const p of result.problems) {
    expect(p.rule).toMatch(/^[a-z0-9-]+$/)
    expect(p.line).toBeGreaterThanOrEqual(0)
  }
  const raw = [...text].filter((c) => c !== '\n' && c !== '\t' && (c < ' ' || c === '\u007f'))
  expect(raw).toEqual([])
  return text
}

/** Bytes from a seed (xorshift): large random inputs without fast-check generating each byte. */
function bytesFrom(seed: number, length: number, alphabet?: string): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed | 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = alphabet ? alphabet.charCodeAt((x >>> 0) % alphabet.length) : x & 0xff
  }
  return out
}

const YAML_CHARS = 'abcz019 :-\n\n  []{},"\'#&*!|>?%@`\t\r\\.~'

/** Spec-shaped values: the real keys with random values, plus random extra keys and nesting. */
const specLike = fc.record({
  apiVersion: fc.oneof(fc.constant('shoal/v1'), fc.string()),
  kind: fc.oneof(fc.constant('Cluster'), fc.constant('Hosts'), fc.string()),
  name: fc.oneof(fc.constant('demo'), fc.string()),
  env: fc.dictionary(fc.string({maxLength: 8}), fc.record({type: fc.constantFrom('string', 'integer', 'boolean', 'x'), default: fc.jsonValue({maxDepth: 2}), secret: fc.boolean()}, {requiredKeys: ['type']}), {maxKeys: 4}),
  roles: fc.dictionary(fc.string({maxLength: 8}), fc.record({image: fc.string(), cpu: fc.oneof(fc.double(), fc.integer()), memory: fc.constantFrom('1Gi', '99999999999999999999999Ti', 'x', ''), disk: fc.constant('1Gi'), count: fc.integer(), files: fc.array(fc.record({template: fc.string(), dest: fc.string()}), {maxLength: 2})}, {requiredKeys: []}), {maxKeys: 3}),
  extra: fc.jsonValue({maxDepth: 4}),
}, {requiredKeys: []})

describe('lint fuzzing', () => {
  it('random spec-shaped YAML, mutated: a result within the budget, never an exception', async () => {
    await fc.assert(
      fc.asyncProperty(specLike, fc.array(fc.tuple(fc.nat(), fc.string({unit: fc.constantFrom(...YAML_CHARS), maxLength: 4})), {maxLength: 6}), async (value, edits) => {
        let text = stringify(value)
        for (const [at, insert] of edits) {
          const i = text.length === 0 ? 0 : at % text.length
          text = text.slice(0, i) + insert + text.slice(i)
        }
        await lintOnce(text)
      }),
      {numRuns: 150, seed: 15},
    )
  }, 300_000)

  it('random bytes, random YAML punctuation and random text up to the size limit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), fc.integer({min: 0, max: LOAD_LIMITS.maxBytes + 64}), fc.constantFrom('bytes', 'yaml', 'ascii'), async (seed, length, kind) => {
        const alphabet = kind === 'yaml' ? YAML_CHARS : kind === 'ascii' ? 'abcdefghijklmnopqrstuvwxyz0123456789 :\n' : undefined
        await lintOnce(bytesFrom(seed, length, alphabet))
      }),
      {numRuns: 40, seed: 1515},
    )
    const peakMb = process.resourceUsage().maxRSS / 1024
    expect(peakMb).toBeLessThan(MEMORY_BOUND_MB)
    console.log(`lint fuzzing: peak resident memory of the test process ${peakMb.toFixed(0)} MB`)
  }, 600_000)

  it('the CLI on random input: exit 1 with problems, no stack trace', () => {
    for (const seed of [7, 77]) {
      const run = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'run.js'), 'lint', '-'], {
        input: Buffer.from(bytesFrom(seed, 50_000, YAML_CHARS)), encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}, timeout: 60_000,
      })
      expect(run.status, run.stderr).toBe(1)
      expect(run.stdout).toMatch(/<stdin>:\d+:\d+: error: /)
      expect(run.stderr).not.toMatch(/\n\s+at /)
    }
  }, 180_000)
})
