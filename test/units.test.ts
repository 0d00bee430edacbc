import {describe, expect, it} from 'vitest'
import {parseDuration, parseSize, resolveCountOrPercent} from '../src/util/units.js'
import {envPrefix, shellQuote} from '../src/util/shell.js'
import {execFileSync} from 'node:child_process'

describe('units', () => {
  it('parses binary and decimal sizes', () => {
    expect(parseSize('512Mi')).toBe(512 * 1024 * 1024)
    expect(parseSize('10Gi')).toBe(10 * 1024 ** 3)
    expect(parseSize('1.5G')).toBe(1.5e9)
    expect(parseSize('100')).toBe(100)
    expect(parseSize('10gb')).toBeUndefined()
    expect(parseSize('')).toBeUndefined()
  })

  it('parses compound durations', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('10')).toBeUndefined()
    expect(parseDuration('1d')).toBeUndefined()
  })

  it('resolves counts and percentages, rounding up to at least one', () => {
    expect(resolveCountOrPercent('25%', 10)).toBe(3)
    expect(resolveCountOrPercent('1%', 3)).toBe(1)
    expect(resolveCountOrPercent(5, 3)).toBe(5)
    expect(resolveCountOrPercent('0%', 10)).toBeUndefined()
    expect(resolveCountOrPercent('150%', 10)).toBeUndefined()
    expect(resolveCountOrPercent(0, 10)).toBeUndefined()
  })
})

describe('shell quoting', () => {
  const nasty = [`a'b`, '$(touch /tmp/pwned)', '`id`', 'x; rm -rf /', 'line\nbreak', '*', '', ' spaced ', '\\', '"q"', '${HOME}', '!']

  it.each(nasty)('passes %j through sh as one literal word', (value) => {
    const out = execFileSync('sh', ['-c', `printf %s ${shellQuote(value)}`], {encoding: 'utf8'})
    expect(out).toBe(value)
  })

  it('builds an env prefix that sh reads back literally', () => {
    const env = {SHOAL_A: `it's $(id)`, SHOAL_B: 'plain'}
    const out = execFileSync('sh', ['-c', `${envPrefix(env)}sh -c 'printf "%s|%s" "$SHOAL_A" "$SHOAL_B"'`], {encoding: 'utf8'})
    expect(out).toBe(`it's $(id)|plain`)
  })

  it('refuses variable names that are not identifiers', () => {
    expect(() => envPrefix({'A;B': 'x'})).toThrow(/invalid environment variable name/)
  })
})
