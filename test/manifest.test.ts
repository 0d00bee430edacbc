// The committed oclif.manifest.json must list exactly the commands in src/commands (a stale manifest hides commands).
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'
import {describe, expect, it} from 'vitest'

function commandIds(dir: string, root = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return commandIds(path, root)
    if (!name.endsWith('.ts') || name.endsWith('.d.ts')) return []
    return [relative(root, path).replace(/\.ts$/, '').split('/').join(':').replace(/:index$/, '')]
  })
}

describe('oclif manifest', () => {
  it('lists exactly the commands under src/commands', () => {
    const manifest = JSON.parse(readFileSync('oclif.manifest.json', 'utf8')) as {commands: Record<string, unknown>}
    expect(Object.keys(manifest.commands).sort()).toEqual(commandIds('src/commands').sort())
  })

  it('points at the compiled commands, so the CLI works outside the repository too', () => {
    const manifest = JSON.parse(readFileSync('oclif.manifest.json', 'utf8')) as {commands: Record<string, {relativePath: string[]}>}
    for (const command of Object.values(manifest.commands)) expect(command.relativePath[0]).toBe('dist')
  })

  it('records the package version', () => {
    const manifest = JSON.parse(readFileSync('oclif.manifest.json', 'utf8')) as {version: string}
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {version: string}
    expect(manifest.version).toBe(pkg.version)
  })
})

describe('shoal --version', () => {
  it('prints the same line as oclif would, from the fast path', async () => {
    const {execFileSync} = await import('node:child_process')
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {version: string}
    const out = execFileSync(process.execPath, ['bin/run.js', '--version'], {encoding: 'utf8'})
    expect(out).toBe(`shoal/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
  })
})
