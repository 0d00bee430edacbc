// The sandbox: each host has its own /srv; `shoal sandbox up/ls/down` as a real process (idempotent up, grow, shrink, down).
import {execFile} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {sandboxDown} from '../src/sandbox/sandbox.js'
import {SshTransport} from '../src/transport/ssh.js'
import type {TransportHost} from '../src/transport/transport.js'
import {freeSandboxPort, startSandbox, type TestSandbox} from './support/sandbox.js'

describe('sandbox hosts', () => {
  let sandbox: TestSandbox
  const transport = new SshTransport()

  beforeAll(async () => {
    sandbox = await startSandbox(2)
  })

  afterAll(async () => {
    await transport.close()
    await sandbox?.stop()
  })

  it('gives each host its own /srv', async () => {
    const [host1, host2] = sandbox.hosts as [TransportHost, TransportHost]
    const marker = `/srv/only-on-${process.pid}`
    expect((await transport.exec(host1, `echo one > ${marker}`, {timeoutMs: 10_000})).exitCode).toBe(0)
    expect((await transport.exec(host1, `test -e ${marker}`, {timeoutMs: 10_000})).exitCode).toBe(0)
    expect((await transport.exec(host2, `test -e ${marker}`, {timeoutMs: 10_000})).exitCode).toBe(1)
    expect(existsSync(marker)).toBe(false)
    expect(readFileSync(path.join(sandbox.state.hosts[0]!.dir, 'srv', path.basename(marker)), 'utf8')).toBe('one\n')
  })

  it('answers on its own address as the hosts.yaml inventory says', async () => {
    const inventory = parse(readFileSync(sandbox.state.inventory, 'utf8')) as {kind: string; hosts: Array<{name: string; address: string; labels: Record<string, string>}>}
    expect(inventory.kind).toBe('Hosts')
    expect(inventory.hosts.map((h) => [h.name, h.address, h.labels.sandbox])).toEqual([['sandbox-1', '127.0.1.1', 'true'], ['sandbox-2', '127.0.1.2', 'true']])
    for (const host of sandbox.hosts) {
      const result = await transport.exec(host, 'echo "$SSH_CONNECTION"', {timeoutMs: 10_000})
      expect(result.stdout!.split(' ')[2]).toBe(host.address)
    }
  })
})

describe('shoal sandbox (CLI)', () => {
  const exec = promisify(execFile)
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'shoal-sandbox-cli-')), 'sb')
  let port: number

  const shoal = async (...args: string[]): Promise<{code: number; stdout: string; stderr: string}> => {
    try {
      const {stdout, stderr} = await exec(process.execPath, ['bin/dev.js', ...args], {timeout: 60_000})
      return {code: 0, stdout, stderr}
    } catch (error) {
      const failed = error as {code: number; stdout: string; stderr: string}
      return {code: failed.code, stdout: failed.stdout, stderr: failed.stderr}
    }
  }
  /** Run shoal and expect success; a failure shows the command's stderr. */
  const ok = async (...args: string[]): Promise<string> => {
    const result = await shoal(...args)
    expect(result.code, result.stderr).toBe(0)
    return result.stdout
  }
  const ls = async (): Promise<Array<{name: string; pid: number; running: boolean}>> => {
    return (JSON.parse(await ok('sandbox', 'ls', '--dir', dir, '--json')) as {hosts: Array<{name: string; pid: number; running: boolean}>}).hosts
  }
  const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))

  beforeAll(async () => {
    port = await freeSandboxPort(3)
  })

  afterAll(async () => {
    await sandboxDown({dir}) // the library, not the CLI: a failed test must still leave no sshd behind
    rmSync(path.dirname(dir), {recursive: true, force: true})
  })

  it('starts hosts that outlive the command, lists them, keeps them on a second up', async () => {
    const up = await ok('sandbox', 'up', '--hosts', '2', '--port', String(port), '--dir', dir)
    expect(up).toContain(`sandbox-2  127.0.1.2:${port}`)
    const hosts = await ls()
    expect(hosts.map((h) => [h.name, h.running])).toEqual([['sandbox-1', true], ['sandbox-2', true]])

    await ok('sandbox', 'up', '--hosts', '2', '--port', String(port), '--dir', dir)
    expect((await ls()).map((h) => h.pid)).toEqual(hosts.map((h) => h.pid))
  })

  it('grows by adding hosts and shrinks by stopping the extra ones', async () => {
    const before = await ls()
    await ok('sandbox', 'up', '--hosts', '3', '--port', String(port), '--dir', dir)
    const grown = await ls()
    expect(grown.map((h) => h.name)).toEqual(['sandbox-1', 'sandbox-2', 'sandbox-3'])
    expect(grown.slice(0, 2).map((h) => h.pid)).toEqual(before.map((h) => h.pid))
    expect(grown.every((h) => h.running)).toBe(true)

    await ok('sandbox', 'up', '--hosts', '1', '--port', String(port), '--dir', dir)
    expect((await ls()).map((h) => h.name)).toEqual(['sandbox-1'])
    expect([alive(grown[1]!.pid), alive(grown[2]!.pid)]).toEqual([false, false])
  })

  it('reports a host whose sshd really exited, with its exit status and log, and leaves nothing running', async () => {
    const otherDir = path.join(path.dirname(dir), 'taken')
    const otherPort = await freeSandboxPort(1)
    const squatter = createServer()
    await new Promise<void>((resolve) => squatter.listen(otherPort, '127.0.1.1', resolve))
    try {
      const result = await shoal('sandbox', 'up', '--hosts', '1', '--port', String(otherPort), '--dir', otherDir, '--json')
      expect(result.code).toBe(1)
      const error = (JSON.parse(result.stdout) as {error: {code: string; message: string}}).error
      expect(error.code).toBe('sandbox-sshd-failed')
      expect(error.message).toMatch(/sshd exited during start \(exit code 255\): .*Address already in use/)
      const state = JSON.parse(readFileSync(path.join(otherDir, 'sandbox.json'), 'utf8')) as {hosts: Array<{pid: number}>}
      expect(alive(state.hosts[0]!.pid)).toBe(false)
    } finally {
      await new Promise((resolve) => squatter.close(resolve))
      await sandboxDown({dir: otherDir})
    }
  })

  it('tells a recorded host from a later process given its pid (start time, not the command line)', async () => {
    const otherDir = path.join(path.dirname(dir), 'reused')
    mkdirSync(otherDir, {recursive: true})
    // A host recorded with this test process's pid: alive, but started at another time than recorded.
    const host = {name: 'sandbox-1', address: '127.0.1.1', port: 1, pid: process.pid, startTime: 1, dir: path.join(otherDir, 'hosts', 'sandbox-1')}
    writeFileSync(path.join(otherDir, 'sandbox.json'), JSON.stringify({version: 2, dir: otherDir, port: 1, inventory: '', knownHosts: '', key: '', hosts: [host]}))
    const listed = JSON.parse(await ok('sandbox', 'ls', '--dir', otherDir, '--json')) as {hosts: Array<{running: boolean}>}
    expect(listed.hosts.map((h) => h.running)).toEqual([false])
    await ok('sandbox', 'down', '--dir', otherDir)
    expect(alive(process.pid)).toBe(true)
  })

  it('refuses a bad host count with a usage error', async () => {
    const result = await shoal('sandbox', 'up', '--hosts', '0', '--dir', dir)
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr).toContain('--hosts must be a whole number from 1 to 254')
  })

  it('refuses to start without root, saying so', async () => {
    const asNobody = await exec('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'bin/dev.js', 'sandbox', 'up', '--hosts', '1', '--dir', dir, '--json'], {
      timeout: 60_000,
      env: {...process.env, HOME: tmpdir()},
    }).catch((error: {code: number; stdout: string}) => error)
    expect('code' in asNobody ? asNobody.code : 0).toBe(1)
    expect(JSON.parse(asNobody.stdout)).toMatchObject({error: {code: 'sandbox-needs-root'}})
  })

  it('stops every host and removes the directory on down', async () => {
    const pids = (await ls()).map((h) => h.pid)
    const down = await shoal('sandbox', 'down', '--dir', dir)
    expect(down.code, down.stderr).toBe(0)
    expect(existsSync(dir)).toBe(false)
    expect(pids.some(alive)).toBe(false)
    expect((await shoal('sandbox', 'down', '--dir', dir)).stdout).toContain('no sandbox in')
  })
})
