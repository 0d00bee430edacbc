// Starts a real sandbox (per host: own network namespace and address, own sshd, private /srv) in a temp dir for one test file.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll} from 'vitest'
import {sandboxDown, sandboxUp, type SandboxState} from '../../src/sandbox/sandbox.js'
import {SshTransport} from '../../src/transport/ssh.js'
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
  // Each host has a network namespace of its own, so sshd's usual port can never collide with another sandbox's.
  const port = 22
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

/** A sandbox of two hosts and one SSH transport to them for a file's tests, closed and stopped after them. */
export function twoHostsOverSsh(): {readonly sandbox: TestSandbox; readonly hosts: [TransportHost, TransportHost]; readonly transport: SshTransport} {
  let sandbox: TestSandbox | undefined
  let transport: SshTransport | undefined
  beforeAll(async () => {
    sandbox = await startSandbox(2)
    transport = new SshTransport()
  })
  afterAll(async () => {
    await transport?.close()
    await sandbox?.stop()
  })
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the sandbox is started in beforeAll: use it inside tests')
    return value
  }
  return {
    get sandbox() {
      return started(sandbox)
    },
    get hosts() {
      return started(sandbox).hosts as [TransportHost, TransportHost]
    },
    get transport() {
      return started(transport)
    },
  }
}
