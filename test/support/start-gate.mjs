// Preloaded with `node --import` into CLI processes a test wants to release together: load the heavy modules, say so
// with a `ready.<pid>` file beside the gate, then hold until the gate file (SHOAL_TEST_GATE) exists.
import {existsSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

const gate = process.env.SHOAL_TEST_GATE
if (gate) {
  const modules = ['@oclif/core', 'yaml', 'liquidjs', ...(process.argv.includes('--etcd') ? ['etcd3'] : [])]
  await Promise.all(modules.map((name) => import(name)))
  writeFileSync(path.join(path.dirname(gate), `ready.${process.pid}`), '')
  const giveUp = Date.now() + 120_000
  while (!existsSync(gate)) {
    if (Date.now() > giveUp) {
      process.stderr.write(`start-gate: ${gate} never appeared\n`)
      process.exit(3)
    }
    await sleep(5)
  }
}
