// Operation progress for a person: step headers and script output prefixed by node id; colour only on a TTY without NO_COLOR.
import type {Step} from '../plan/steps.js'
import type {Reporter} from '../lifecycle/progress.js'

const COLOURS = [36, 33, 35, 32, 34, 96, 93, 95]

export function terminalReporter(stream: NodeJS.WriteStream = process.stdout): Reporter {
  const colour = stream.isTTY === true && !process.env.NO_COLOR
  const paint = (code: number, text: string): string => (colour ? `\u001B[${code}m${text}\u001B[0m` : text)
  const nodeColour = (node: string): number => COLOURS[[...node].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % COLOURS.length]!
  const counter = (index: number, total: number): string => `[${String(index + 1).padStart(String(total).length)}/${total}]`
  const write = (line: string): void => void stream.write(`${line}\n`)
  return {
    step: (step: Step, index, total, resumed) => write(paint(1, `==> ${counter(index, total)} ${step.title}${resumed ? ' (resuming)' : ''}`)),
    skipped: (step: Step, index, total) => write(paint(2, `    ${counter(index, total)} ${step.title}: done earlier`)),
    output: (node, streamName, line) => write(`${paint(nodeColour(node), node)}${streamName === 'stderr' ? ' !' : ' |'} ${line}`),
    note: (message) => write(paint(2, `    ${message}`)),
  }
}
