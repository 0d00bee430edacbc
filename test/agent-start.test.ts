// The commands shoal runs on a node of a cluster with agents, run here by a real /bin/sh (the local transport): a host
// without a usable Node.js is named as such, and stopping an agent stops its supervisor and the agent it started.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {agentFiles, startAgentCommand, stopAgentCommand} from '../src/lifecycle/agents.js'
import {LocalTransport, localHost} from '../src/transport/local.js'
import {installFiles} from '../src/transport/install.js'
import {eventually} from './support/children.js'

const transport = new LocalTransport()
const host = localHost('test')
const dirs: string[] = []
afterAll(async () => {
  await transport.close()
  for (const dir of dirs) rmSync(dir, {recursive: true, force: true})
})

function home(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-agent-start-'))
  dirs.push(dir)
  return dir
}

describe('starting and stopping an agent on a node', () => {
  it('a host with no node on PATH: exit 3, saying Node.js 20 or later is needed', async () => {
    const node = {node_id: 'c-r-1', ip: '127.0.0.1', home: home()}
    const result = await transport.exec(host, startAgentCommand('c', node, 'http://127.0.0.1:1', 1), {timeoutMs: 10_000, env: {PATH: '/nonexistent'}})
    expect(result.exitCode).toBe(3)
    expect(result.stderr).toMatch(/no Node\.js \(no node on PATH\); the shoal agent needs Node\.js 20 or later/)
  })

  it('a host with an older Node.js: exit 3, naming its version', async () => {
    const bin = home()
    writeFileSync(path.join(bin, 'node'), '#!/bin/sh\ncase "$1" in --version) echo v18.19.0;; *) exit 9;; esac\n', {mode: 0o755})
    const node = {node_id: 'c-r-1', ip: '127.0.0.1', home: home()}
    const result = await transport.exec(host, startAgentCommand('c', node, 'http://127.0.0.1:1', 1), {timeoutMs: 10_000, env: {PATH: `${bin}:/usr/bin:/bin`}})
    expect(result.exitCode).toBe(3)
    expect(result.stderr).toMatch(/this host has Node\.js v18\.19\.0; the shoal agent needs 20 or later/)
  })

  it('metad unreachable: the first pass fails with its reason, and no agent is left running', async () => {
    const node = {node_id: 'c-r-1', ip: '127.0.0.1', home: home()}
    await installFiles(transport, host, [...agentFiles('http://127.0.0.1:1', node), {path: `${node.home}/.shoal/token`, content: 'token\n', mode: '0600'}])
    const result = await transport.exec(host, startAgentCommand('c', node, 'http://127.0.0.1:1', 1).replace('first_pass_wait=30', 'first_pass_wait=5'), {timeoutMs: 30_000})
    expect(result.exitCode, result.stderr).toBe(1)
    expect(result.stderr).toMatch(/metad at http:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/)
    expect((await transport.exec(host, `pgrep -f ${node.home}/[.]shoal || true`, {timeoutMs: 10_000})).stdout?.trim()).toBe('')
  })

  it('stop: the supervisor and the agent it restarts both end; stopping again is a no-op', async () => {
    const node = {node_id: 'c-r-1', ip: '127.0.0.1', home: home()}
    // The supervisor as placed, its agent pointed at a metad that is not there: it retries, and stays up.
    await installFiles(transport, host, [...agentFiles('http://127.0.0.1:1', node), {path: `${node.home}/.shoal/token`, content: 'token\n', mode: '0600'}])
    const started = await transport.exec(host, `setsid sh ${node.home}/.shoal/agent.sh < /dev/null > /dev/null 2>&1 &`, {timeoutMs: 10_000})
    expect(started.exitCode).toBe(0)
    const running = async (): Promise<string> => (await transport.exec(host, `pgrep -f ${node.home}/[.]shoal || true`, {timeoutMs: 10_000})).stdout?.trim() ?? ''
    await eventually('the supervisor and its agent running', async () => (await running()).split('\n').length >= 2, 20_000, 100)
    const stopped = await transport.exec(host, stopAgentCommand('c', node), {timeoutMs: 30_000})
    expect(stopped.exitCode, stopped.stderr).toBe(0)
    expect(await running()).toBe('')
    expect((await transport.exec(host, stopAgentCommand('c', node), {timeoutMs: 30_000})).exitCode).toBe(0)
  })
})
