// Starts a real sandbox (sshd per 127.0.1.x, private /srv) in a temp dir for one test file; stops it in afterAll.
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {sandboxDown, sandboxUp, type SandboxState} from '../../src/sandbox/sandbox.js'
import {transportHost} from '../../src/transport/host.js'
import type {TransportHost} from '../../src/transport/transport.js'
import {track} from './resources.js'

export interface TestSandbox {
  state: SandboxState
  /** Transport targets of the hosts, from the written hosts.yaml entries. */
  hosts: TransportHost[]
  port: number
  stop(): Promise<void>
}

export async function startSandbox(count: number): Promise<TestSandbox> {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-sandbox-'))
  const port = await freeSandboxPort(count)
  let state: SandboxState
  try {
    state = await sandboxUp({dir, hosts: count, port})
  } catch (error) {
    await sandboxDown({dir})
    rmSync(dir, {recursive: true, force: true})
    throw error
  }
  const untrack = track(`sandbox of ${count} hosts in ${dir}`, () => sandbox.stop())
  const hosts = state.hosts.map((h) =>
    transportHost({name: h.name, address: h.address, ssh: {port: h.port, user: 'root', key: state.key, known_hosts: state.knownHosts}}, dir),
  )
  const sandbox: TestSandbox = {
    state,
    hosts,
    port,
    async stop() {
      untrack()
      await sandboxDown({dir})
      rmSync(dir, {recursive: true, force: true})
    },
  }
  return sandbox
}

/**
 * A port free on 127.0.1.1..count, so test files running in parallel do not collide (each picks its own). Chosen from
 * 10000-19999, outside the kernel's ephemeral range: an outgoing connection can never take it between choosing and binding.
 */
export async function freeSandboxPort(count: number): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    const port = 10000 + Math.floor(Math.random() * 10000)
    let free = true
    for (let i = 1; i <= count && free; i++) free = (await bindable(`127.0.1.${i}`, port).catch(() => 0)) === port
    if (free) return port
  }
  throw new Error(`no port in 10000-19999 free on all of 127.0.1.1-${count} after 500 tries`)
}

function bindable(address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(port, address, () => {
      const bound = server.address()
      server.close(() => resolve(typeof bound === 'object' && bound ? bound.port : 0))
    })
  })
}
