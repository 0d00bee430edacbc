// The sandbox: each host has its own /srv and network stack (connections come from the sender's address, a host can be
// cut off and healed); `shoal sandbox up/ls/down` as a real process (idempotent up, grow, shrink, down, nothing left).
import {execFile} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {sandboxDown, sandboxPartition, sandboxStatus} from '../src/sandbox/sandbox.js'
import {SshTransport} from '../src/transport/ssh.js'
import type {TransportHost} from '../src/transport/transport.js'
import {startSandbox, type TestSandbox} from './support/sandbox.js'

describe('sandbox hosts', () => {
  let sandbox: TestSandbox
  const transport = new SshTransport()

  beforeAll(async () => {
    sandbox = await startSandbox(3)
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
    const subnet = sandbox.state.network!.gateway.replace(/\.254$/, '')
    expect(subnet).toMatch(/^198\.1[89]\.\d+$/)
    expect(inventory.hosts.map((h) => [h.name, h.address, h.labels.sandbox])).toEqual([1, 2, 3].map((i) => [`sandbox-${i}`, `${subnet}.${i}`, 'true']))
    for (const host of sandbox.hosts) {
      const result = await transport.exec(host, 'echo "$SSH_CONNECTION"', {timeoutMs: 10_000})
      expect(result.stdout!.split(' ')[2]).toBe(host.address)
    }
  })
})

describe('sandbox hosts on the network', () => {
  let sandbox: TestSandbox
  const transport = new SshTransport()
  const on = async (host: TransportHost, command: string): Promise<string> => {
    const result = await transport.exec(host, command, {timeoutMs: 20_000})
    expect(result.exitCode, `${host.name}: ${command}\n${result.stderr}`).toBe(0)
    return result.stdout!.trim()
  }

  beforeAll(async () => {
    sandbox = await startSandbox(3)
  })

  afterAll(async () => {
    await transport.close()
    await sandbox?.stop()
  })

  it('shows a listener on host 1 each connection from the sending host\'s own address, and an allow list admits only host 2', async () => {
    const [host1, host2, host3] = sandbox.hosts as [TransportHost, TransportHost, TransportHost]
    // A server on host 1 that answers "welcome" to host 2's address only, like a database's access rule, and logs every peer.
    const server = [
      'import socket, sys',
      `s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("${host1.address}", 7400)); s.listen(); s.settimeout(30)`,
      'for _ in range(3):',
      '    c, peer = s.accept()',
      '    open("/srv/peers", "a").write(peer[0] + "\\n")',
      `    c.sendall(b"welcome\\n" if peer[0] == "${host2.address}" else b"denied\\n"); c.close()`,
    ].join('\n')
    await on(host1, `echo ${Buffer.from(server).toString('base64')} | base64 -d > /srv/allow.py && (nohup /usr/bin/python3 /srv/allow.py >/srv/allow.log 2>&1 &) && for i in $(seq 50); do ss -ltn | grep -q ':7400 ' && exit 0; sleep 0.1; done; exit 1`)
    const ask = `/usr/bin/python3 -c 'import socket; print(socket.create_connection(("${host1.address}", 7400), timeout=10).recv(100).decode().strip())'`
    expect(await on(host2, ask)).toBe('welcome')
    expect(await on(host3, ask)).toBe('denied')
    // The machine itself reaches every host too, from the bridge's address (the gateway the hosts see).
    const fromMachine = await new Promise<string>((resolve, reject) => {
      const socket = connect({host: host1.address, port: 7400})
      let data = ''
      socket.setTimeout(10_000, () => reject(new Error('no answer from host 1 within 10 s')))
      socket.on('data', (chunk: Buffer) => (data += chunk.toString()))
      socket.on('close', () => resolve(data.trim()))
      socket.on('error', reject)
    })
    expect(fromMachine).toBe('denied')
    expect(readFileSync(path.join(sandbox.state.hosts[0]!.dir, 'srv', 'peers'), 'utf8').trim().split('\n')).toEqual([host2.address, host3.address, sandbox.state.network!.gateway])
  })

  it('reaches nothing beyond its subnet: a host has no default route', async () => {
    const [host1] = sandbox.hosts as [TransportHost]
    expect(await on(host1, 'ip route')).toBe(`${sandbox.state.network!.gateway.replace(/\.254$/, '.0')}/24 dev eth0 proto kernel scope link src ${host1.address}`)
  })

  it('cuts a host off and heals it (sandbox partition / --heal)', async () => {
    const [host1, host2] = sandbox.hosts as [TransportHost, TransportHost]
    const probe = `/usr/bin/python3 -c 'import socket; socket.create_connection(("${host2.address}", 22), timeout=2); print("reached")' 2>/dev/null || echo unreachable`
    expect(await on(host1, probe)).toBe('reached')
    sandboxPartition({dir: sandbox.state.dir, host: 'sandbox-2', partitioned: true})
    try {
      expect(await on(host1, probe)).toBe('unreachable')
      expect(sandboxStatus({dir: sandbox.state.dir})!.hosts.map((h) => h.partitioned === true)).toEqual([false, true, false])
    } finally {
      sandboxPartition({dir: sandbox.state.dir, host: 'sandbox-2', partitioned: false})
    }
    expect(await on(host1, probe)).toBe('reached')
    expect(await on(host2, 'echo back')).toBe('back')
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

  beforeAll(() => {
    port = 2222
  })

  afterAll(async () => {
    await sandboxDown({dir}) // the library, not the CLI: a failed test must still leave no sshd behind
    rmSync(path.dirname(dir), {recursive: true, force: true})
  })

  it('starts hosts that outlive the command, lists them, keeps them on a second up', async () => {
    const up = await ok('sandbox', 'up', '--hosts', '2', '--port', String(port), '--dir', dir)
    expect(up).toMatch(new RegExp(`sandbox-2  198\\.1[89]\\.\\d+\\.2:${port}`))
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
    const otherDir = path.join(path.dirname(dir), 'broken')
    // A host key sshd cannot load: it logs why and exits 1 — a real failure, to be told from a slow start.
    mkdirSync(path.join(otherDir, 'hosts', 'sandbox-1'), {recursive: true})
    writeFileSync(path.join(otherDir, 'hosts', 'sandbox-1', 'ssh_host_ed25519_key'), 'not a key\n', {mode: 0o600})
    writeFileSync(path.join(otherDir, 'hosts', 'sandbox-1', 'ssh_host_ed25519_key.pub'), 'not a key\n')
    try {
      const result = await shoal('sandbox', 'up', '--hosts', '1', '--dir', otherDir, '--json')
      expect(result.code).toBe(1)
      const error = (JSON.parse(result.stdout) as {error: {code: string; message: string}}).error
      expect(error.code).toBe('sandbox-sshd-failed')
      expect(error.message).toMatch(/sshd exited during start \(exit code 1\): .*no hostkeys available/)
      const state = JSON.parse(readFileSync(path.join(otherDir, 'sandbox.json'), 'utf8')) as {hosts: Array<{pid: number}>}
      expect(alive(state.hosts[0]!.pid)).toBe(false)
    } finally {
      await sandboxDown({dir: otherDir})
    }
  })

  it('tells a recorded host from a later process given its pid (start time, not the command line)', async () => {
    const otherDir = path.join(path.dirname(dir), 'reused')
    mkdirSync(otherDir, {recursive: true})
    // A host recorded with this test process's pid: alive, but started at another time than recorded.
    const host = {name: 'sandbox-1', address: '198.18.255.1', port: 1, pid: process.pid, startTime: 1, dir: path.join(otherDir, 'hosts', 'sandbox-1')}
    writeFileSync(path.join(otherDir, 'sandbox.json'), JSON.stringify({version: 2, dir: otherDir, port: 1, inventory: '', knownHosts: '', key: '', hosts: [host]}))
    const listed = JSON.parse(await ok('sandbox', 'ls', '--dir', otherDir, '--json')) as {hosts: Array<{running: boolean}>}
    expect(listed.hosts.map((h) => h.running)).toEqual([false])
    await ok('sandbox', 'down', '--dir', otherDir)
    expect(alive(process.pid)).toBe(true)
  })

  it('refuses a bad host count with a usage error', async () => {
    const result = await shoal('sandbox', 'up', '--hosts', '0', '--dir', dir)
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr).toContain('--hosts must be a whole number from 1 to 253')
  })

  it('refuses to start without root, saying so', async () => {
    // Not root, yet able to read the checkout wherever it lies (a clone under a 0700 directory is unreadable to nobody).
    const readAnywhere = ['--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search']
    const asNobody = await exec('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...readAnywhere, process.execPath, 'bin/dev.js', 'sandbox', 'up', '--hosts', '1', '--dir', dir, '--json'], {
      timeout: 60_000,
      env: {...process.env, HOME: tmpdir()},
    }).catch((error: {code: number; stdout: string}) => error)
    expect('code' in asNobody ? asNobody.code : 0).toBe(1)
    expect(JSON.parse(asNobody.stdout)).toMatchObject({error: {code: 'sandbox-needs-root'}})
  })

  it('stops every host and removes the directory, namespaces, links and addresses on down', async () => {
    const pids = (await ls()).map((h) => h.pid)
    const {subnet} = (JSON.parse(readFileSync(path.join(dir, 'sandbox.json'), 'utf8')) as {network: {subnet: number}}).network
    expect(networkOf(subnet).links.length).toBeGreaterThan(0)
    const down = await shoal('sandbox', 'down', '--dir', dir)
    expect(down.code, down.stderr).toBe(0)
    expect(existsSync(dir)).toBe(false)
    expect(pids.some(alive)).toBe(false)
    expect(networkOf(subnet)).toEqual({links: [], namespaces: []})
    expect((await shoal('sandbox', 'down', '--dir', dir)).stdout).toContain('no sandbox in')
  })

  it('cleans up the network a crashed sandbox left behind on the next down (or up)', async () => {
    // What `up` leaves when it is killed after making its network: a bridge owned by a dead process, a host namespace.
    const subnet = 511
    const gone = path.join(path.dirname(dir), 'crashed')
    const ipRun = (...args: string[]): Promise<unknown> => exec('/usr/sbin/ip', args, {timeout: 10_000})
    await ipRun('link', 'add', 'name', `shoal-br${subnet}`, 'type', 'bridge')
    await ipRun('link', 'set', 'dev', `shoal-br${subnet}`, 'alias', `shoal-sandbox 999999999 ${gone}`)
    await ipRun('netns', 'add', `shoal-${subnet}-1`)
    await ipRun('link', 'add', `shoal${subnet}h1`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `shoal-${subnet}-1`)
    expect(networkOf(subnet).links.length).toBe(2)
    await ok('sandbox', 'down', '--dir', gone)
    expect(networkOf(subnet)).toEqual({links: [], namespaces: []})
  })
})

/** The links (bridge, veths) and network namespaces of sandbox subnet `subnet` that exist now. */
function networkOf(subnet: number): {links: string[]; namespaces: string[]} {
  return {
    links: readdirSync('/sys/class/net').filter((name) => name === `shoal-br${subnet}` || name.startsWith(`shoal${subnet}h`)).sort(),
    namespaces: (existsSync('/run/netns') ? readdirSync('/run/netns') : []).filter((name) => name.startsWith(`shoal-${subnet}-`)).sort(),
  }
}
