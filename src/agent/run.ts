// Starting an agent from command-line values: shared by `shoal agent` and the one-file bundle shoal places on nodes.
import {readFileSync} from 'node:fs'
import {EXIT, ShoalError} from '../errors.js'
import {parseDuration} from '../util/units.js'
import {Agent, type AgentEvent} from './agent.js'

/** The command-line values by their flag names, as `shoal agent` and the bundle both parse them. */
export interface AgentArgs {
  metad: string
  bind?: string | undefined
  node?: string | undefined
  'token-file'?: string | undefined
  once: boolean
  /** With --once: wait (up to `wait`) until metad serves at least this revision (shoal's own commit). */
  'at-least'?: number | undefined
  wait?: string | undefined
  'command-timeout': string
  /** Following metad: the file each pass's outcome is written to (see AgentOptions.readyFile). */
  'ready-file'?: string | undefined
  json: boolean
}

/** Run the agent: follow metad until SIGINT/SIGTERM, or one pass with `once` (throws when not in sync). */
export async function runAgent(args: AgentArgs): Promise<{revision: number; in_sync: true} | undefined> {
  const commandTimeoutMs = duration('--command-timeout', args['command-timeout'])
  try {
    new URL(args.metad)
  } catch {
    throw new ShoalError(`--metad ${args.metad}: expected a URL such as http://10.0.0.5:9611`, 'invalid-flag', EXIT.usage)
  }
  if ((args.node === undefined) !== (args['token-file'] === undefined)) throw new ShoalError('--node and --token-file go together: the token proves the node', 'invalid-flag', EXIT.usage)
  const token = args['token-file'] !== undefined ? readToken(args['token-file']) : undefined
  const log = (event: AgentEvent): void => {
    process.stderr.write(`${args.json ? JSON.stringify({at: new Date().toISOString(), ...event}) : describeEvent(event)}\n`)
  }
  const agent = new Agent({
    metad: args.metad, commandTimeoutMs, log,
    ...(args.bind !== undefined ? {bind: args.bind} : {}),
    ...(args.node !== undefined ? {node: args.node} : {}),
    ...(token !== undefined ? {token} : {}),
    ...(args['ready-file'] !== undefined ? {readyFile: args['ready-file']} : {}),
  })
  if (args.once) {
    const waitMs = args.wait !== undefined ? duration('--wait', args.wait) : 0
    const result = await agent.once({atLeast: args['at-least'] ?? 0, waitMs}).finally(() => agent.stop())
    if (result.errors.length) throw new ShoalError(`not in sync at revision ${result.revision}: ${result.errors.join('; ')}`, 'agent-not-in-sync', EXIT.failure)
    return {revision: result.revision, in_sync: true}
  }
  const stop = (): void => void agent.stop()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  await agent.run()
  return undefined
}

function duration(flag: string, value: string): number {
  const ms = parseDuration(value)
  if (ms === undefined) throw new ShoalError(`${flag} ${value}: expected a duration such as 30s`, 'invalid-flag', EXIT.usage)
  return ms
}

function readToken(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch (error) {
    throw new ShoalError(`--token-file ${file}: ${(error as Error).message}`, 'invalid-flag', EXIT.usage)
  }
}

export function describeEvent(event: AgentEvent): string {
  const at = new Date().toISOString()
  switch (event.event) {
    case 'applied': {
      const reloads = event.reloads.map((r) => `${r.command} ${r.ok ? 'ok' : 'FAILED'}`).join(', ')
      return `${at} revision ${event.revision}: ${event.changed.length ? `changed ${event.changed.join(', ')}` : 'nothing changed'}${reloads ? `; reloaded: ${reloads}` : ''}${event.errors.length ? `; errors: ${event.errors.join('; ')}` : ''} (${event.ms} ms)`
    }
    case 'unchanged': return `${at} revision ${event.revision}: files in sync (${event.ms} ms)`
    case 'refused':
    case 'held': return `${at} revision ${event.revision}: files left as they are: ${event.reason}`
    case 'unreachable': return `${at} ${event.reason}; retrying in ${event.retryInMs} ms`
    case 'reconnected': return `${at} metad answers again`
    case 'warning': return `${at} ${event.message}`
  }
}
