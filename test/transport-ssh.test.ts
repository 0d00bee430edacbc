// The SSH transport against real sandbox hosts: exec results, lines, quoting, timeouts that kill, pooling, host keys, files.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {installFile, installFiles, restoreFile} from '../src/transport/install.js'
import {knownHostName} from '../src/transport/known-hosts.js'
import {SshTransport} from '../src/transport/ssh.js'
import type {Transport, TransportHost} from '../src/transport/transport.js'
import {shellQuote} from '../src/util/shell.js'
import {twoHostsOverSsh} from './support/sandbox.js'

const ssh = twoHostsOverSsh()
let host1: TransportHost
let host2: TransportHost
let transport: Transport
beforeAll(() => ({hosts: [host1, host2], transport} = ssh))

const run = (command: string, host = host1) => transport.exec(host, command, {timeoutMs: 20_000})

/** `gone` when no process `pid` exists or it is only a zombie (this machine's PID 1 may not reap orphans). */
const processState = async (pid: string): Promise<string> =>
  (await run(`s=$(ps -o stat= -p ${shellQuote(pid)} 2>/dev/null); case "$s" in ''|Z*) echo gone;; *) echo alive;; esac`)).stdout!.trim()

describe('exec', () => {
  it('reports the exit code, stdout and stderr', async () => {
    const result = await run('echo out; echo err >&2; exit 3')
    expect(result).toEqual({exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false})
  })

  it('reports a command killed by a signal', async () => {
    const result = await run('kill -KILL $$')
    expect(result.exitCode).toBeNull()
    expect(result.signal).toBe('SIGKILL')
  })

  it('delivers stdout and stderr line by line, \\r\\n and a last partial line included', async () => {
    const out: string[] = []
    const err: string[] = []
    const long = 'x'.repeat(100_000)
    const result = await transport.exec(host1, `printf 'a\\r\\nb\\n'; head -c 100000 /dev/zero | tr '\\0' x; printf '\\nlast'; printf 'e1\\ne2\\n' >&2`, {
      timeoutMs: 20_000,
      onStdoutLine: (line) => out.push(line),
      onStderrLine: (line) => err.push(line),
    })
    expect(result.exitCode).toBe(0)
    expect(out).toEqual(['a', 'b', long, 'last'])
    expect(err).toEqual(['e1', 'e2'])
  })

  it('passes stdin and runs in cwd', async () => {
    const result = await transport.exec(host1, 'pwd; cat', {timeoutMs: 20_000, cwd: '/tmp', stdin: 'from stdin\n'})
    expect(result.stdout).toBe('/tmp\nfrom stdin\n')
  })

  it('passes env values full of shell metacharacters intact, executing nothing', async () => {
    await run('rm -rf /srv/quoting && mkdir -p /srv/quoting && touch /srv/quoting/glob-a /srv/quoting/glob-b')
    const values = {
      SINGLE: `it's '; touch /srv/quoting/pwned1; echo '`,
      DOUBLE: `"; touch /srv/quoting/pwned2; echo "`,
      SUBST: '$(touch /srv/quoting/pwned3)',
      BACKTICK: '`touch /srv/quoting/pwned4`',
      SEMI: 'a; touch /srv/quoting/pwned5 && b',
      NEWLINES: 'line1\ntouch /srv/quoting/pwned6\nline3',
      GLOB: '/srv/quoting/glob-*',
      DOLLAR: '$HOME ${PATH} $((1+1))',
      BACKSLASH: 'a\\b\\\\c\\',
      EMPTY: '',
    }
    const names = Object.keys(values)
    const command = `cd /srv/quoting && ${names.map((n) => `printf '%s' "$${n}" | base64 -w0; echo`).join('; ')}`
    const result = await transport.exec(host1, command, {timeoutMs: 20_000, env: values})
    expect(result.exitCode).toBe(0)
    const decoded = result.stdout!.replace(/\n$/, '').split('\n').map((line) => Buffer.from(line, 'base64').toString('utf8'))
    expect(decoded).toEqual(Object.values(values))
    expect((await run('ls /srv/quoting')).stdout).toBe('glob-a\nglob-b\n')
  })

  it('kills a command past its timeout: reports timedOut, and its processes are gone', async () => {
    await run('mkdir -p /srv/timeout')
    // Control: the check does see a live process.
    const control = (await run('setsid sleep 60 >/dev/null 2>&1 </dev/null & echo $!')).stdout!.trim()
    expect(await processState(control)).toBe('alive')
    await run(`kill -KILL ${control}`)
    const result = await transport.exec(host1, 'sleep 300 & echo $! > /srv/timeout/child.pid; echo $$ > /srv/timeout/shell.pid; wait', {timeoutMs: 500})
    expect(result.timedOut).toBe(true)
    expect(result.exitCode).toBeNull()
    for (const file of ['child.pid', 'shell.pid']) {
      const pid = (await run(`cat /srv/timeout/${file}`)).stdout!.trim()
      expect(pid).toMatch(/^\d+$/)
      expect(await processState(pid)).toBe('gone')
    }
  })

  it('escalates to SIGKILL when the command ignores SIGTERM', async () => {
    await run('mkdir -p /srv/stubborn')
    const transportWithShortGrace = new SshTransport({killGraceMs: 300})
    try {
      const result = await transportWithShortGrace.exec(host1, `trap '' TERM; sleep 300 & echo $! > /srv/stubborn/child.pid; wait`, {timeoutMs: 300})
      expect(result.timedOut).toBe(true)
      expect(result.signal).toBe('SIGKILL')
    } finally {
      await transportWithShortGrace.close()
    }
    const pid = (await run('cat /srv/stubborn/child.pid')).stdout!.trim()
    expect(await processState(pid)).toBe('gone')
  })

  it('returns when the command exits even if a background child keeps its output open', async () => {
    const result = await transport.exec(host1, 'sleep 120 & echo started', {timeoutMs: 20_000})
    expect(result).toMatchObject({exitCode: 0, stdout: 'started\n', timedOut: false})
  })

  it('refuses a timeout that setTimeout cannot honour', async () => {
    await expect(transport.exec(host1, 'true', {timeoutMs: Infinity})).rejects.toThrow(/timeoutMs must be/)
  })

  it('serves 30 parallel commands on one host over one connection', async () => {
    const results = await Promise.all(Array.from({length: 30}, (_, i) => run(`sleep 0.2; echo ${i} "$SSH_CLIENT"`)))
    expect(results.map((r) => r.exitCode)).toEqual(Array(30).fill(0))
    expect(results.map((r) => Number(r.stdout!.split(' ')[0]))).toEqual(Array.from({length: 30}, (_, i) => i))
    // SSH_CLIENT is "client-ip client-port server-port": one client port = one TCP connection.
    const clientPorts = new Set(results.map((r) => r.stdout!.trim().split(' ')[2]))
    expect(clientPorts.size).toBe(1)
  })
})

describe('files', () => {
  it('puts and reads binary content with the given mode', async () => {
    const content = Buffer.from([0, 1, 2, 10, 13, 255, 0, 10])
    await transport.putFile(host1, '/srv/files/deep/bin.dat', content, {mode: '0640'})
    expect((await transport.readFile(host1, '/srv/files/deep/bin.dat'))!.equals(content)).toBe(true)
    expect((await run('stat -c %a /srv/files/deep/bin.dat')).stdout).toBe('640\n')
  })

  it('moves a file larger than the collected-output cap whole', async () => {
    const content = Buffer.alloc(6 * 2 ** 20, 'shoal\n')
    await transport.putFile(host1, '/srv/files/large.txt', content)
    expect((await transport.readFile(host1, '/srv/files/large.txt'))!.equals(content)).toBe(true)
  })

  it('reads a missing file as undefined', async () => {
    expect(await transport.readFile(host1, '/srv/files/missing')).toBeUndefined()
  })

  it('installs atomically, reports changes, keeps one backup and restores it', async () => {
    const dest = '/srv/install/app.conf'
    const first = await installFile(transport, host1, {path: dest, content: 'v1\n', mode: '0600'})
    expect(first).toEqual({path: dest, changed: true})
    expect(await installFile(transport, host1, {path: dest, content: 'v1\n', mode: '0600'})).toEqual({path: dest, changed: false})

    const second = await installFile(transport, host1, {path: dest, content: 'v2\n', mode: '0600'})
    expect(second).toEqual({path: dest, changed: true, backup: `${dest}.shoal-bak`})
    expect((await transport.readFile(host1, dest))!.toString()).toBe('v2\n')
    expect((await transport.readFile(host1, `${dest}.shoal-bak`))!.toString()).toBe('v1\n')
    expect((await run(`stat -c %a ${dest}`)).stdout).toBe('600\n')

    await restoreFile(transport, host1, second)
    expect((await transport.readFile(host1, dest))!.toString()).toBe('v1\n')
  })

  it('refuses content its check rejects, leaving the destination as it was', async () => {
    const dest = '/srv/install/checked.conf'
    await installFile(transport, host1, {path: dest, content: 'good\n'})
    const attempt = installFile(transport, host1, {path: dest, content: 'bad\n', check: (staged) => `grep -q good ${shellQuote(staged)} || { echo "no good in $0" >&2; exit 1; }`})
    await expect(attempt).rejects.toMatchObject({code: 'file-check-failed'})
    expect((await transport.readFile(host1, dest))!.toString()).toBe('good\n')
    expect(await transport.readFile(host1, `${dest}.shoal-new`)).toBeUndefined()
  })

  it('installs several files with one command, in order; a refused check stops there and leaves the later files alone', async () => {
    const dir = '/srv/install-many'
    const binary = Buffer.from([0, 255, 10, 13, 0, 1])
    const first = await installFiles(transport, host1, [
      {path: `${dir}/a.conf`, content: 'a1\n'},
      {path: `${dir}/empty`, content: ''},
      {path: `${dir}/bin`, content: binary, mode: '0600'},
    ])
    expect(first.map((r) => r.changed)).toEqual([true, true, true])
    expect(await transport.readFile(host1, `${dir}/bin`)).toEqual(binary)
    const second = installFiles(transport, host1, [
      {path: `${dir}/a.conf`, content: 'a2\n'},
      {path: `${dir}/empty`, content: 'refused\n', check: (staged) => `! grep -q refused ${shellQuote(staged)}`},
      {path: `${dir}/bin`, content: 'later\n'},
    ])
    await expect(second).rejects.toMatchObject({code: 'file-check-failed'})
    expect((await transport.readFile(host1, `${dir}/a.conf`))!.toString()).toBe('a2\n')
    expect((await transport.readFile(host1, `${dir}/empty`))!.toString()).toBe('')
    expect(await transport.readFile(host1, `${dir}/bin`)).toEqual(binary)
  })

  it('the shell driver installs files itself: the script sent along is not run', async () => {
    const content = Buffer.from('by the driver\n')
    const result = await transport.exec(host1, 'echo "the script ran" >&2; exit 99', {timeoutMs: 20_000, stdin: content, install: [{path: '/srv/driver/only.conf', bytes: content.length, mode: '0640'}]})
    expect(result).toMatchObject({exitCode: 0, stdout: '__shoal_install=0 created\n', stderr: ''})
    expect((await run('stat -c %a:%s /srv/driver/only.conf')).stdout).toBe(`640:${content.length}\n`)
  })

  it('installs exactly as the script does: outcomes, contents, modes, owners, backups, leftovers and errors', async () => {
    // The same sequence of installs through the driver (host 1) and through the script (host 2, a session per command).
    const scripted = new SshTransport({persistentShell: false})
    try {
      const binary = Buffer.from([0, 255, 10, 13, 0, 1])
      const rounds: Array<Array<{path: string; content: string | Buffer; mode?: string; owner?: string}>> = [
        [{path: 'new/deep/a.conf', content: 'a1\n'}, {path: 'new/empty', content: ''}, {path: 'bin', content: binary, mode: '0600'}, {path: 'x.sh', content: '#!/bin/sh\n', mode: '0755'}],
        // unchanged content with another mode and an owner; replaced content; a file whose backup and staged copy exist
        [{path: 'new/deep/a.conf', content: 'a1\n', mode: '0640', owner: 'root:root'}, {path: 'new/empty', content: 'now\n', owner: '0'}, {path: 'bin', content: binary, mode: '0600'}, {path: 'x.sh', content: '#!/bin/sh\necho 2\n', mode: '4750', owner: 'root:'}],
        [{path: 'leftover', content: 'l1\n'}],
        [{path: 'link', content: 'through a link\n'}, {path: 'leftover', content: 'l2\n'}, {path: 'new/deep/a.conf', content: 'a2\n', mode: '0644'}],
        // an error halfway: a directory where a file's parent should be; the file before it stays installed
        [{path: 'late.conf', content: 'late\n'}, {path: 'blocked/sub/f', content: 'never\n'}, {path: 'after', content: 'never\n'}],
        // unknown owner
        [{path: 'owned', content: 'o\n', owner: 'nobody-here-at-all'}],
      ]
      const outcome = async (t: Transport, host: TransportHost, dir: string, round: (typeof rounds)[number]): Promise<string> => {
        try {
          const results = await installFiles(t, host, round.map((f) => ({...f, path: `${dir}/${f.path}`})))
          return JSON.stringify(results.map((r) => ({...r, path: r.path.slice(dir.length), backup: r.backup?.slice(dir.length)})))
        } catch (error) {
          return `failed: ${(error as Error).message.replaceAll(dir, 'DIR').replace(/^sandbox-\d+/, 'HOST').split('\n')[0]}`
        }
      }
      const listing = async (t: Transport, host: TransportHost, dir: string): Promise<string> =>
        (await t.exec(host, `cd ${dir} && find . -printf '%p %y %m %u:%g %s\\n' | sort && find . -type f | sort | xargs -r md5sum`, {timeoutMs: 20_000})).stdout!
      const setup = (dir: string): string => `rm -rf ${dir} && mkdir -p ${dir}/blocked && touch ${dir}/blocked/sub && echo old > ${dir}/leftover.shoal-new && echo kept > ${dir}/leftover.shoal-bak && echo target > ${dir}/target && ln -s target ${dir}/link`
      const seen: Record<'driver' | 'script', string[]> = {driver: [], script: []}
      for (const [name, t, host] of [['driver', transport, host1], ['script', scripted, host2]] as const) {
        const dir = '/srv/same-install'
        expect((await t.exec(host, setup(dir), {timeoutMs: 20_000})).exitCode).toBe(0)
        for (const round of rounds) seen[name].push(await outcome(t, host, dir, round), await listing(t, host, dir))
      }
      expect(seen.driver).toEqual(seen.script)
      expect(seen.driver.filter((s) => s.startsWith('failed: '))).toHaveLength(2)
    } finally {
      await scripted.close()
    }
  })

  it('restoring a file that did not exist before removes it', async () => {
    const created = await installFile(transport, host1, {path: '/srv/install/new.conf', content: 'x'})
    await restoreFile(transport, host1, created)
    expect(await transport.readFile(host1, '/srv/install/new.conf')).toBeUndefined()
  })
})

describe('host keys and connection failures', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'shoal-known-hosts-'))

  it('refuses a host missing from known_hosts and says how to opt in', async () => {
    const knownHosts = path.join(scratch, 'empty')
    writeFileSync(knownHosts, '')
    const fresh = new SshTransport()
    try {
      await expect(fresh.exec({...host1, knownHosts}, 'true', {timeoutMs: 10_000})).rejects.toMatchObject({
        code: 'ssh-host-key-unknown',
        message: expect.stringContaining('--accept-new-host-keys'),
      })
    } finally {
      await fresh.close()
    }
  })

  it('records a new host key with acceptNewHostKeys, and trusts it afterwards', async () => {
    const knownHosts = path.join(scratch, 'accept-new')
    const accepting = new SshTransport({acceptNewHostKeys: true})
    try {
      expect((await accepting.exec({...host1, knownHosts}, 'echo hi', {timeoutMs: 10_000})).stdout).toBe('hi\n')
    } finally {
      await accepting.close()
    }
    const recorded = readFileSync(ssh.sandbox.state.knownHosts, 'utf8').split('\n').find((line) => line.startsWith(`${knownHostName(host1.address, host1.port)} `))
    expect(readFileSync(knownHosts, 'utf8')).toBe(`${recorded}\n`)
    expect(statSync(knownHosts).mode & 0o777).toBe(0o600)
    const strict = new SshTransport()
    try {
      expect((await strict.exec({...host1, knownHosts}, 'echo again', {timeoutMs: 10_000})).stdout).toBe('again\n')
    } finally {
      await strict.close()
    }
  })

  it('refuses a changed host key even with acceptNewHostKeys, naming the file and line', async () => {
    const knownHosts = path.join(scratch, 'changed')
    const host2Key = readFileSync(ssh.sandbox.state.knownHosts, 'utf8').split('\n').find((line) => line.startsWith(`${knownHostName(host2.address, host2.port)} `))!.split(' ').slice(1).join(' ')
    writeFileSync(knownHosts, `# host 1 recorded with host 2's key\n${knownHostName(host1.address, host1.port)} ${host2Key}\n`)
    const accepting = new SshTransport({acceptNewHostKeys: true})
    try {
      const attempt = accepting.exec({...host1, knownHosts}, 'true', {timeoutMs: 10_000})
      await expect(attempt).rejects.toMatchObject({code: 'ssh-host-key-changed', message: expect.stringContaining(`${knownHosts} line 2`)})
    } finally {
      await accepting.close()
    }
    expect(readFileSync(knownHosts, 'utf8').split('\n').filter(Boolean)).toHaveLength(2)
  })

  it('warm connects (and starts the shell) ahead of the first command, which then sets up nothing; an unreachable host fails its first command as before', async () => {
    const fresh = new SshTransport({connectAttempts: 2, retryDelayMs: 20})
    try {
      const nobody: TransportHost = {...host1, name: 'sandbox-gone', address: '127.0.1.250'}
      // No command yet: the connections and shells come up by themselves, and the warm-up settles (never rejects)
      // once the unreachable host has failed too.
      await fresh.warm([host1, host2, nobody])
      expect(fresh.stats()).toMatchObject({handshakes: 2, sessions: 2, commands: 0})
      expect((await fresh.exec(host2, 'echo warm', {timeoutMs: 20_000})).stdout).toBe('warm\n')
      expect(fresh.stats()).toMatchObject({handshakes: 2, sessions: 2, commands: 1})
      await expect(fresh.exec(nobody, 'true', {timeoutMs: 10_000})).rejects.toMatchObject({code: 'ssh-connect-failed'})
    } finally {
      await fresh.close()
    }
  })

  it('says which key a host refused, and which key file is no key; a good key works for every host after', async () => {
    const stranger = path.join(scratch, 'stranger')
    const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger])
    expect(made.status).toBe(0)
    const notAKey = path.join(scratch, 'not-a-key')
    writeFileSync(notAKey, 'hello\n')
    const fresh = new SshTransport({connectAttempts: 1})
    try {
      await expect(fresh.exec({...host1, keyFile: stranger}, 'true', {timeoutMs: 10_000})).rejects.toMatchObject({
        code: 'ssh-auth-failed',
        message: expect.stringContaining(`refused our key (${stranger})`),
      })
      await expect(fresh.exec({...host2, keyFile: notAKey}, 'true', {timeoutMs: 10_000})).rejects.toMatchObject({
        code: 'ssh-key-unreadable',
        message: expect.stringContaining(`the SSH key ${notAKey} is not a private key`),
      })
      await expect(fresh.exec({...host2, keyFile: path.join(scratch, 'missing')}, 'true', {timeoutMs: 10_000})).rejects.toMatchObject({code: 'ssh-key-unreadable'})
      const locked = path.join(scratch, 'locked')
      expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', locked]).status).toBe(0)
      await expect(fresh.exec({...host2, keyFile: locked}, 'true', {timeoutMs: 10_000})).rejects.toMatchObject({
        code: 'ssh-key-unreadable',
        message: expect.stringContaining('load it into the SSH agent (ssh-add) and leave ssh.key out of the inventory'),
      })
      const both = await Promise.all([host1, host2].map((h) => fresh.exec(h, 'echo ok', {timeoutMs: 20_000})))
      expect(both.map((r) => r.stdout)).toEqual(['ok\n', 'ok\n'])
    } finally {
      await fresh.close()
    }
  })

  it('gives a clear error after bounded retries when no sshd answers', async () => {
    const fresh = new SshTransport({connectAttempts: 3, retryDelayMs: 20})
    try {
      const nobody: TransportHost = {...host1, name: 'sandbox-gone', address: '127.0.1.250'}
      await expect(fresh.exec(nobody, 'true', {timeoutMs: 10_000})).rejects.toMatchObject({
        code: 'ssh-connect-failed',
        message: expect.stringMatching(/sandbox-gone .*after 3 attempts.*ECONNREFUSED/),
      })
    } finally {
      await fresh.close()
    }
  })
})
