// What a person sees of an operation: plain lines when piped, a live status line on a terminal.
import {describe, expect, it} from 'vitest'
import {terminalReporter} from '../src/cli/progress.js'
import type {Step} from '../src/plan/steps.js'

function fakeStream(isTTY: boolean): NodeJS.WriteStream & {text: string} {
  const stream = {isTTY, columns: 80, text: '', write(chunk: string) {
    stream.text += chunk
    return true
  }}
  return stream as unknown as NodeJS.WriteStream & {text: string}
}

const step = {id: '02-run-start-zk', kind: 'run', title: 'zk: run start on 3 nodes', nodes: []} as unknown as Step

describe('terminal progress', () => {
  it('prints plain lines, no escape codes, when the output is not a terminal', () => {
    const stream = fakeStream(false)
    const reporter = terminalReporter(stream)
    reporter.step(step, 1, 4, false)
    reporter.output('zk-main-zk-1', 'stdout', 'started')
    expect(stream.text).toBe('==> [2/4] zk: run start on 3 nodes\nzk-main-zk-1 | started\n')
  })

  it('keeps a live status line with the running step under the output on a terminal', async () => {
    const stream = fakeStream(true)
    const reporter = terminalReporter(stream, {redrawMs: 10})
    reporter.step(step, 1, 4, false)
    reporter.output('zk-main-zk-1', 'stderr', 'warming up')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(stream.text).toContain('zk-main-zk-1')
    expect(stream.text).toContain(' ! warming up\n')
    // Every printed line first clears the status line, which is then drawn again below it.
    expect(stream.text.split('\r\u001B[2K').length).toBeGreaterThan(3)
    expect(stream.text).toMatch(/\[2\/4\] zk: run start on 3 nodes — \d+s/)
  })
})
