// The long-lived shell per connection (src/transport/shell.ts) against real sandbox hosts: commands see what a session
// of their own gives them, and one command's stdin, exit, output or timeout never reaches another.
import {spawnSync} from 'node:child_process'
import {beforeAll, describe, expect, it} from 'vitest'
import {driverSource} from '../src/transport/shell.js'
import {SshTransport} from '../src/transport/ssh.js'
import type {TransportHost} from '../src/transport/transport.js'
import {twoHostsOverSsh} from './support/sandbox.js'

const ssh = twoHostsOverSsh()
let host: TransportHost
let other: TransportHost
let transport: SshTransport
beforeAll(() => ({hosts: [host, other], transport} = ssh))

const run = (command: string, options: {stdin?: string; timeoutMs?: number} = {}) => transport.exec(host, command, {timeoutMs: 20_000, ...options})

/** `gone` when no process `pid` exists or it is only a zombie. */
const processState = async (pid: string): Promise<string> =>
  (await run(`s=$(ps -o stat= -p ${pid} 2>/dev/null); case "$s" in ''|Z*) echo gone;; *) echo alive;; esac`)).stdout!.trim()

describe('what a command sees', () => {
  it('the same environment, cwd and umask as on a session of its own (the client port aside)', async () => {
    const probe = 'env | sort; echo "cwd=$(pwd) umask=$(umask) args=$0"'
    const perSession = new SshTransport({persistentShell: false})
    try {
      const mask = (out: string): string => out.replace(/^(SSH_CLIENT=\S+) \d+/m, '$1 PORT').replace(/^(SSH_CONNECTION=\S+) \d+/m, '$1 PORT')
      const env = {SHOAL_X: "a'b c", SHOAL_Y: ''}
      const inShell = await transport.exec(host, probe, {timeoutMs: 20_000, env, cwd: '/tmp'})
      const onSession = await perSession.exec(host, probe, {timeoutMs: 20_000, env, cwd: '/tmp'})
      expect(inShell.exitCode).toBe(0)
      expect(inShell.stdout).toContain('SHOAL_X=a\'b c\n')
      expect(inShell.stdout).toContain('cwd=/tmp ')
      expect(mask(inShell.stdout!)).toBe(mask(onSession.stdout!))
      expect(perSession.stats().sessions).toBeGreaterThanOrEqual(1)
      // The driver sets the directory itself (no shell `cd`): a path written loosely, and one that is not there.
      for (const cwd of ['//tmp//', '///tmp/./', '/usr/../tmp/', '.', '/nonexistent-shoal-dir']) {
        const a = await transport.exec(host, probe, {timeoutMs: 20_000, env, cwd})
        const b = await perSession.exec(host, probe, {timeoutMs: 20_000, env, cwd})
        expect({exit: a.exitCode, stdout: mask(a.stdout!), stderr: a.stderr}).toEqual({exit: b.exitCode, stdout: mask(b.stdout!), stderr: b.stderr})
      }
    } finally {
      await perSession.close()
    }
  })

  it('runs in a process group and session of its own, as under sshd', async () => {
    const result = await run('echo "$$ $(ps -o pgid= -p $$) $(ps -o sid= -p $$)"')
    const [pid, pgid, sid] = result.stdout!.trim().split(/\s+/)
    expect(pgid).toBe(pid)
    expect(sid).toBe(pid)
  })

  it('tells an exit status of 137 from a death by SIGKILL', async () => {
    expect(await run('exit 137')).toMatchObject({exitCode: 137, signal: null})
    expect(await run('kill -KILL $$')).toMatchObject({exitCode: null, signal: 'SIGKILL'})
  })

  it('names the signal a command dies of as a session of its own names it', async () => {
    const perSession = new SshTransport({persistentShell: false})
    try {
      // The signals SSH has names for (RFC 4254): the same on both paths.
      for (const signal of ['HUP', 'INT', 'QUIT', 'ILL', 'ABRT', 'FPE', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM']) {
        const command = `kill -${signal} $$`
        const inShell = await run(command)
        const onSession = await perSession.exec(host, command, {timeoutMs: 20_000})
        expect({signal: inShell.signal, exitCode: inShell.exitCode}, signal).toEqual({signal: onSession.signal, exitCode: onSession.exitCode})
        expect(inShell.signal).toBe(`SIG${signal}`)
      }
      // Others OpenSSH reports as "SIG@openssh.com"; the shell still names them.
      for (const signal of ['BUS', 'XCPU', 'SYS']) expect((await run(`kill -${signal} $$`)).signal).toBe(`SIG${signal}`)
    } finally {
      await perSession.close()
    }
  })

  it('starts with the signal dispositions and mask a session of its own has', async () => {
    const probe = 'grep -E "^Sig(Ign|Blk|Cgt)" /proc/self/status'
    const perSession = new SshTransport({persistentShell: false})
    try {
      const inShell = await run(probe)
      expect(inShell.exitCode).toBe(0)
      expect(inShell.stdout).toBe((await perSession.exec(host, probe, {timeoutMs: 20_000})).stdout)
    } finally {
      await perSession.close()
    }
  })

  it('runs every command of a connection in one shell: one session for many commands', async () => {
    const counting = new SshTransport()
    try {
      for (let i = 0; i < 5; i++) expect((await counting.exec(other, `echo ${i}`, {timeoutMs: 20_000})).stdout).toBe(`${i}\n`)
      expect(counting.stats()).toMatchObject({handshakes: 1, sessions: 1, commands: 5})
    } finally {
      await counting.close()
    }
  })
})

describe('one command never reaches another', () => {
  it('a command reading stdin gets exactly its own input, then end of file; without input, end of file at once', async () => {
    expect((await run('cat; echo end', {stdin: 'mine\n'})).stdout).toBe('mine\nend\n')
    expect((await run('cat; echo end')).stdout).toBe('end\n')
    // A command that reads none of a large input leaves nothing behind for the next one.
    expect((await run('true', {stdin: 'x'.repeat(1_000_000)})).exitCode).toBe(0)
    expect((await run('cat | wc -c', {stdin: 'abc'})).stdout!.trim()).toBe('3')
  })

  it('a command that exits or execs leaves the shell serving the next one', async () => {
    expect((await run('exit 3')).exitCode).toBe(3)
    expect((await run('exec echo replaced')).stdout).toBe('replaced\n')
    expect((await run('echo still here')).stdout).toBe('still here\n')
  })

  it('output without a final newline stays with its own command, and reaches the line callback', async () => {
    const lines: string[] = []
    const first = await transport.exec(host, 'printf no-newline', {timeoutMs: 20_000, onStdoutLine: (line) => lines.push(line)})
    expect(first.stdout).toBe('no-newline')
    expect(lines).toEqual(['no-newline'])
    expect((await run('echo next')).stdout).toBe('next\n')
  })

  it('a shell killed on the host is replaced: the command it ran ends, the next one runs', async () => {
    const killed = await run('kill -KILL $PPID; sleep 1')
    expect(killed.exitCode).toBeNull()
    expect((await run('echo after')).stdout).toBe('after\n')
  })

  it('a timeout kills only that command\'s process group; a command beside it on the same host finishes', async () => {
    await run('mkdir -p /srv/shell-timeout')
    const [timed, beside] = await Promise.all([
      run('sleep 300 & echo $! > /srv/shell-timeout/child.pid; wait', {timeoutMs: 1000}),
      run('sleep 3; echo survived'),
    ])
    expect(timed.timedOut).toBe(true)
    expect(beside).toMatchObject({exitCode: 0, stdout: 'survived\n', timedOut: false})
    const pid = (await run('cat /srv/shell-timeout/child.pid')).stdout!.trim()
    expect(pid).toMatch(/^\d+$/)
    expect(await processState(pid)).toBe('gone')
  })

  it('output of concurrent commands on one host is never mixed: every line reaches its own command, in order', async () => {
    const count = 2000
    const commands = Array.from({length: 8}, (_, i) => {
      const out: string[] = []
      const err: string[] = []
      // Lines written in pieces (printf of a part, then the rest), on stdout and stderr, from 8 commands at once.
      const script = `i=0; while [ $i -lt ${count} ]; do printf 'c${i}:'; printf '%s\\n' $i; printf 'e${i}:%s\\n' $i >&2; i=$((i+1)); done`
      return {out, err, done: transport.exec(host, script, {timeoutMs: 60_000, onStdoutLine: (l) => out.push(l), onStderrLine: (l) => err.push(l)})}
    })
    const results = await Promise.all(commands.map((c) => c.done))
    for (const [i, c] of commands.entries()) {
      expect(results[i]!.exitCode).toBe(0)
      expect(c.out).toEqual(Array.from({length: count}, (_, n) => `c${i}:${n}`))
      expect(c.err).toEqual(Array.from({length: count}, (_, n) => `e${i}:${n}`))
    }
  })
})

describe('hosts without the shell', () => {
  it('a host where Perl cannot run gets a session per command, with the same results', async () => {
    // Only inside this sandbox host's private mount namespace: its perl becomes /bin/false.
    const setup = new SshTransport({persistentShell: false})
    try {
      expect((await setup.exec(other, 'mount --bind /bin/false /usr/bin/perl', {timeoutMs: 20_000})).exitCode).toBe(0)
      const fresh = new SshTransport()
      try {
        expect(await fresh.exec(other, 'echo out; echo err >&2; exit 4', {timeoutMs: 20_000})).toEqual({exitCode: 4, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false})
        expect((await fresh.exec(other, 'echo again', {timeoutMs: 20_000})).stdout).toBe('again\n')
        // The shell's session, then one session per command.
        expect(fresh.stats()).toMatchObject({sessions: 3, commands: 2})
      } finally {
        await fresh.close()
      }
    } finally {
      await setup.exec(other, 'umount /usr/bin/perl', {timeoutMs: 20_000})
      await setup.close()
    }
  })
})

describe('the driver itself', () => {
  it('is clean under strict and warnings (it runs without them: loading them costs each driver a few ms)', () => {
    const check = spawnSync('perl', ['-Mstrict', '-Mwarnings', '-MTime::HiRes', '-c', '-e', driverSource(2000)], {encoding: 'utf8'})
    expect(check.stderr.trim()).toBe('-e syntax OK')
    expect(check.status).toBe(0)
  })

  it('loads neither POSIX nor Config where setsid has a known number (they make every start and fork of the driver dearer)', () => {
    const probe = `${driverSource(2000).replace(/frame\(0, 'H', "\$\$"\);[\s\S]*$/, '')} print join(' ', sort keys %INC), ' ', (defined $SETSID ? 'setsid=yes' : 'setsid=no');`
    const loaded = spawnSync('perl', ['-MTime::HiRes', '-e', probe], {encoding: 'utf8'})
    expect(loaded.stderr).toBe('')
    expect(loaded.stdout).not.toMatch(/POSIX|Config\.pm/)
    if (['x64', 'arm64'].includes(process.arch)) expect(loaded.stdout).toContain('setsid=yes')
  })
})
