// Starts a real sandbox (sshd per 127.0.1.x, private /srv) in a temp dir for one test file; stops it in afterAll.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {sandboxDown, sandboxUp, type SandboxState} from '../../src/sandbox/sandbox.js'
import {transportHost} from '../../src/transport/host.js'
import type {TransportHost} from '../../src/transport/transport.js'

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
  live.add(dir)
  const hosts = state.hosts.map((h) =>
    transportHost({name: h.name, address: h.address, ssh: {port: h.port, user: 'root', key: state.key, known_hosts: state.knownHosts}}, dir),
  )
  return {
    state,
    hosts,
    port,
    async stop() {
      live.delete(dir)
      await sandboxDown({dir})
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

/** A port free on 127.0.1.1..count, so test files running in parallel do not collide (each picks its own). */
export async function freeSandboxPort(count: number): Promise<number> {
  for (;;) {
    const port = await bindable('127.0.1.1', 0)
    let free = true
    for (let i = 2; i <= count && free; i++) free = (await bindable(`127.0.1.${i}`, port).catch(() => 0)) === port
    if (free && port !== 22) return port
  }
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

// A crashed test run must not leave sshd servers behind: stop them synchronously on exit.
const live = new Set<string>()
process.once('exit', () => {
  for (const dir of live) {
    try {
      const state = JSON.parse(readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as SandboxState
      for (const host of state.hosts) process.kill(host.pid, 'SIGKILL')
    } catch {
      // best effort
    }
  }
})
