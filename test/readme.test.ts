// The README's reference sections are generated; a stale README is a failing test, not a silent drift.
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {regenerate} from '../scripts/gen-readme.js'

describe('README', () => {
  it('has up-to-date generated reference sections (run `npm run docs`)', () => {
    const readme = readFileSync('README.md', 'utf8')
    expect(regenerate(readme)).toBe(readme)
  })
})
