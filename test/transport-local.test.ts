// The agent's local transport (src/transport/local.ts) on this machine: commands go through one long-lived driver and
// see what a process of their own would give them — env, cwd, own process group and session, stdin then end of file,
// exit code vs signal — and a timeout, a daemon holding the pipes or a killed driver never holds another command.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {LocalTransport, localHost} from '../src/transport/local.js'
import {eventually} from './support/children.js'

const transport = new LocalTransport()
const host = localHost('this node')
const dir = mkdtempSync(path.join(tmpdir(), 'shoal-local-'))
afterAll(async () => {
  await transport.close()
  rmSync(dir, {recursive: true, force: true})
})

const run = (command: string, options: {stdin?: string; timeoutMs?: number; env?: Record<string, string>; cwd?: string} = {}) =>
  transport.exec(host, command, {timeoutMs: 20_000, ...options})

const alive = (pid: string): boolean => {
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', pid], {encoding: 'utf8'}).stdout.trim()
  return stat !== '' && !stat.startsWith('Z')
}

describe('what a command sees', () => {
  it('its env on top of the agent\'s, in its cwd', async () => {
    const result = await run('echo "x=$SHOAL_X y=[$SHOAL_Y] path=${PATH:+set} cwd=$(pwd)"', {env: {SHOAL_X: "a'b c", SHOAL_Y: ''}, cwd: dir})
    expect(result).toMatchObject({exitCode: 0, stdout: `x=a'b c y=[] path=set cwd=${dir}\n`})
  })

  it('a cwd that does not exist fails the command, not the transport', async () => {
    expect((await run('echo never', {cwd: path.join(dir, 'missing')})).exitCode).not.toBe(0)
    expect((await run('echo next')).stdout).toBe('next\n')
  })

  it('runs in a process group and session of its own', async () => {
    const [pid, pgid, sid] = (await run('echo "$$ $(ps -o pgid= -p $$) $(ps -o sid= -p $$)"')).stdout!.trim().split(/\s+/)
    expect(pgid).toBe(pid)
    expect(sid).toBe(pid)
  })

  it('tells an exit status of 137 from a death by SIGKILL', async () => {
    expect(await run('exit 137')).toMatchObject({exitCode: 137, signal: null, timedOut: false})
    expect(await run('kill -KILL $$')).toMatchObject({exitCode: null, signal: 'SIGKILL'})
  })

  it('gets exactly its own input, then end of file; without input, end of file at once', async () => {
    expect((await run('cat; echo end', {stdin: 'line 1\nline 2'})).stdout).toBe('line 1\nline 2end\n')
    expect((await run('cat; echo end')).stdout).toBe('end\n')
  })

  it('every command is a child of one driver, not of the agent', async () => {
    const parents = new Set<string>()
    for (let i = 0; i < 3; i++) parents.add((await run('echo $PPID')).stdout!.trim())
    expect(parents.size).toBe(1)
    expect([...parents][0]).not.toBe(String(process.pid))
  })
})

describe('between commands', () => {
  it('the driver sleeps: it does not wake up while no command runs', async () => {
    const driver = (await run('echo $PPID')).stdout!.trim()
    const switches = (): number => Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${driver}/status`, 'utf8'))![1])
    await new Promise((resolve) => setTimeout(resolve, 300))
    const before = switches()
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(switches() - before).toBe(0)
  })
})

describe('one command never holds another', () => {
  it('a timeout kills that command\'s whole process group; a command beside it finishes', async () => {
    const slow = run('sleep 300 & echo $! > child.pid; wait', {timeoutMs: 500, cwd: dir})
    const beside = run('sleep 0.3; echo beside')
    expect(await beside).toMatchObject({exitCode: 0, stdout: 'beside\n'})
    expect(await slow).toMatchObject({exitCode: null, timedOut: true})
    const child = (await run(`cat ${dir}/child.pid`)).stdout!.trim()
    await eventually(`the timed-out command's child ${child} gone`, async () => !alive(child), 10_000)
  })

  it('a daemon the command started with its output still open does not hold the result', async () => {
    const started = performance.now()
    const result = await run(`sleep 30 & echo $! > ${dir}/daemon.pid; echo started`)
    expect(result).toMatchObject({exitCode: 0, stdout: 'started\n'})
    expect(performance.now() - started).toBeLessThan(15_000)
    const daemon = (await run(`cat ${dir}/daemon.pid`)).stdout!.trim()
    expect(alive(daemon)).toBe(true)
    process.kill(Number(daemon), 'SIGKILL')
  })

  it('a driver killed under a running command ends that command; the next one gets a new driver', async () => {
    const driver = (await run('echo $PPID')).stdout!.trim()
    const running = run(`echo $$ > ${dir}/orphan.pid; sleep 30; echo never`)
    await eventually('the command running', async () => (await run(`cat ${dir}/orphan.pid 2>/dev/null`)).stdout !== '', 10_000, 50)
    process.kill(Number(driver), 'SIGKILL')
    expect((await running).exitCode).not.toBe(0)
    const next = await run('echo $PPID')
    expect(next.exitCode).toBe(0)
    expect(next.stdout!.trim()).not.toBe(driver)
    // As under sshd, a command outlives the driver that started it (its session is its own): end it here.
    process.kill(-Number((await run(`cat ${dir}/orphan.pid`)).stdout!.trim()), 'SIGKILL')
  })

  it('closing the transport kills what still runs and ends the driver', async () => {
    const local = new LocalTransport()
    const driver = (await local.exec(host, 'echo $PPID', {timeoutMs: 20_000})).stdout!.trim()
    const running = local.exec(host, `echo $$ > ${dir}/running.pid; sleep 300`, {timeoutMs: 600_000, cwd: dir})
    await eventually('the command running', async () => (await run(`cat ${dir}/running.pid 2>/dev/null`)).stdout !== '', 10_000, 50)
    const pid = (await run(`cat ${dir}/running.pid`)).stdout!.trim()
    await local.close()
    expect((await running).exitCode).not.toBe(0)
    await eventually(`command ${pid} and driver ${driver} gone`, async () => !alive(pid) && !alive(driver), 10_000)
  })

  it('keeps its process alive while the driver starts or a command runs, and not after: a --once agent exits when its pass is done', () => {
    const script = `import {LocalTransport, localHost} from ${JSON.stringify(path.resolve('src/transport/local.ts'))}
const t = new LocalTransport()
await t.prepare()
const r = await t.exec(localHost('n'), 'sleep 0.5; echo ran', {timeoutMs: 10000})
process.stdout.write(r.stdout)
await t.exec(localHost('n'), 'true', {timeoutMs: 10000})`
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {encoding: 'utf8', timeout: 30_000})
    expect({status: child.status, stdout: child.stdout}, child.stderr).toEqual({status: 0, stdout: 'ran\n'})
  })
})
