// Operation progress for a person: step headers and script output prefixed by node id. On a TTY (colour unless
// NO_COLOR) a live status line at the bottom shows the running step and how long it has run; elsewhere plain lines.
import type {Step} from '../plan/steps.js'
import type {Reporter} from '../lifecycle/progress.js'
import {quoteControl} from '../util/text.js'

const COLOURS = [36, 33, 35, 32, 34, 96, 93, 95]
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
const CLEAR_LINE = '\r\u001B[2K'

export function terminalReporter(stream: NodeJS.WriteStream = process.stdout, options: {redrawMs?: number} = {}): Reporter {
  const tty = stream.isTTY === true
  const colour = tty && !process.env.NO_COLOR
  const paint = (code: number, text: string): string => (colour ? `\u001B[${code}m${text}\u001B[0m` : text)
  const nodeColour = (node: string): number => COLOURS[[...node].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % COLOURS.length]!
  const counter = (index: number, total: number): string => `[${String(index + 1).padStart(String(total).length)}/${total}]`

  // The live line: redrawn in place under the scrolling output, cleared before every printed line and at exit.
  let status: {text: string; since: number} | undefined
  let frame = 0
  const statusLine = (): string => {
    if (!status) return ''
    const seconds = Math.floor((Date.now() - status.since) / 1000)
    const line = `${SPINNER[frame++ % SPINNER.length]} ${status.text} — ${seconds}s`
    return paint(2, line.slice(0, Math.max(20, (stream.columns ?? 80) - 1)))
  }
  let timer: NodeJS.Timeout | undefined
  const startLive = (): void => {
    if (!tty || timer) return
    timer = setInterval(() => void stream.write(CLEAR_LINE + statusLine()), options.redrawMs ?? 250)
    timer.unref()
    process.once('exit', () => {
      clearInterval(timer)
      stream.write(CLEAR_LINE)
    })
  }
  const write = (line: string): void => void stream.write(tty ? `${CLEAR_LINE}${line}\n${statusLine()}` : `${line}\n`)

  return {
    step: (step: Step, index, total, resumed) => {
      const title = quoteControl(`${counter(index, total)} ${step.title}`)
      status = {text: title, since: Date.now()}
      write(paint(1, `==> ${title}${resumed ? ' (resuming)' : ''}`))
      startLive()
    },
    skipped: (step: Step, index, total) => write(paint(2, `    ${counter(index, total)} ${step.title}: done earlier`)),
    // A script's output is the host's to choose: its escape sequences must not drive this terminal.
    output: (node, streamName, line) => write(`${paint(nodeColour(node), node)}${streamName === 'stderr' ? ' !' : ' |'} ${quoteControl(line)}`),
    note: (message) => write(paint(2, `    ${quoteControl(message)}`)),
  }
}
