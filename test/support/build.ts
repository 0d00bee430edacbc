// vitest globalSetup: CLI tests run the built CLI (bin/run.js → dist/), so build once per run when dist/ is older
// than the sources (CI builds right before testing, so there this is a no-op).
import {execFileSync} from 'node:child_process'
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

const REPO = join(import.meta.dirname, '..', '..')

function newestMtime(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

export default function setup(): void {
  const stamp = join(REPO, 'dist', 'generated', 'validators.cjs')
  const sources = Math.max(newestMtime(join(REPO, 'src')), newestMtime(join(REPO, 'schemas')))
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= sources) return
  execFileSync('npm', ['run', 'build', '--silent'], {cwd: REPO, stdio: 'inherit'})
}
