// vitest setup file (runs in every test file's worker): stop what a file started and did not stop. Registered
// before the file's own hooks, so it runs after them (after-hooks run as a stack).
import {afterAll} from 'vitest'
import {stopOpenResources} from './resources.js'

afterAll(async () => {
  const failures = await stopOpenResources()
  if (failures.length) throw new Error(`could not stop what the tests started: ${failures.join('; ')}`)
}, 60_000)
