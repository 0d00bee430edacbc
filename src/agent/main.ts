// Entry point of the agent bundle (dist/agent/shoal-agent.mjs, one file): what shoal places and runs on each node.
import {parseArgs} from 'node:util'
import {ShoalError} from '../errors.js'
import {runAgent} from './run.js'

const USAGE = 'usage: shoal-agent --metad URL [--bind ADDR] [--node ID --token-file FILE] [--once [--at-least REV --wait 30s] | --ready-file FILE] [--command-timeout 60s] [--json]'

async function main(): Promise<number> {
  const {values} = parseArgs({
    options: {
      metad: {type: 'string'},
      bind: {type: 'string'},
      node: {type: 'string'},
      'token-file': {type: 'string'},
      once: {type: 'boolean', default: false},
      'at-least': {type: 'string'},
      wait: {type: 'string'},
      'command-timeout': {type: 'string', default: '60s'},
      'ready-file': {type: 'string'},
      json: {type: 'boolean', default: false},
    },
    strict: true,
  })
  if (values.metad === undefined) throw new ShoalError(`--metad is required\n${USAGE}`, 'usage', 2)
  const atLeast = values['at-least'] !== undefined ? Number(values['at-least']) : undefined
  if (atLeast !== undefined && !Number.isSafeInteger(atLeast)) throw new ShoalError(`--at-least ${values['at-least']}: expected a revision number`, 'usage', 2)
  const result = await runAgent({...values, metad: values.metad, 'at-least': atLeast})
  if (result && values.json) process.stdout.write(`${JSON.stringify(result)}\n`)
  return 0
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`shoal-agent: ${(error as Error).message}\n`)
    process.exit(error instanceof ShoalError ? error.exitCode : 1)
  },
)
