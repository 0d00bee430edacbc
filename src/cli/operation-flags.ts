// Flags shared by commands that change a cluster: registry-only mode, the lock wait, SSH host keys; and their outcome.
import {Flags} from '@oclif/core'
import type {HostSpec} from '../inventory/types.js'
import {followError, followText} from '../lifecycle/dependents.js'
import type {OperationOptions, OperationOutcome} from '../lifecycle/operation.js'
import {parseDuration} from '../util/units.js'
import {EXIT, ShoalError} from '../errors.js'

export {followError, followText}

export const lockFlags = {
  'lock-wait': Flags.string({description: 'How long to wait for another operation on the cluster to finish, or for the lock of a crashed one to expire (a duration, e.g. 30s; 0 = fail at once)', default: '0s'}),
}

/** Reaching the hosts: their SSH host keys, and how long to wait for their agents (a cluster with `agent: true`). */
export const sshFlags = {
  'accept-new-host-keys': Flags.boolean({description: 'Record the SSH host keys of hosts missing from their known_hosts file instead of refusing them (changed keys are always refused)', default: false}),
  'agent-wait': Flags.string({description: 'For a cluster with agents: how long a step waits for the agents to report its files applied (a duration)', default: '2m'}),
}

export const metadFlags = {
  metad: Flags.string({description: 'For a cluster with agent: true: metad\'s URL as the nodes reach it (recorded with the cluster; later commands use it)'}),
}

/** The spec asks for agents exactly when a metad URL is given or recorded. */
export function checkMetadFlag(spec: {name: string; agent?: boolean}, metad: string | undefined, recorded: string | undefined): void {
  if (metad !== undefined) {
    if (spec.agent !== true) throw new ShoalError(`--metad is for clusters whose nodes run agents (agent: true); ${spec.name} has none`, 'usage', EXIT.usage)
    let url: URL
    try {
      url = new URL(metad)
    } catch {
      throw new ShoalError(`--metad ${metad}: expected a URL such as http://10.0.0.5:9611`, 'usage', EXIT.usage)
    }
    if (url.protocol !== 'http:') throw new ShoalError(`--metad ${metad}: metad speaks http://`, 'usage', EXIT.usage)
  } else if (spec.agent === true && recorded === undefined) {
    throw new ShoalError(`cluster ${spec.name} runs agents (agent: true): give --metad URL, metad's address as its nodes reach it (on the sandbox: shoal sandbox metad prints it)`, 'usage', EXIT.usage)
  }
}

export const operationFlags = {
  'registry-only': Flags.boolean({description: 'Only register the change in the registry; run no scripts and place no files on hosts', default: false}),
  ...lockFlags,
  ...sshFlags,
}

export function lockWaitMs(value: string): number {
  const ms = value === '0' ? 0 : parseDuration(value)
  if (ms === undefined) throw new ShoalError(`--lock-wait ${value} is not a duration such as 30s or 2m`, 'usage', EXIT.usage)
  return ms
}

/** Lock wait, host key policy and a progress reporter (on stderr under --json, so stdout stays one JSON document). */
export async function operationOptions(flags: {'lock-wait': string; 'accept-new-host-keys': boolean; 'agent-wait': string}, json: boolean): Promise<OperationOptions> {
  const {terminalReporter} = await import('./progress.js')
  const agentWaitMs = parseDuration(flags['agent-wait'])
  if (agentWaitMs === undefined) throw new ShoalError(`--agent-wait ${flags['agent-wait']} is not a duration such as 2m`, 'usage', EXIT.usage)
  return {lockWaitMs: lockWaitMs(flags['lock-wait']), acceptNewHostKeys: flags['accept-new-host-keys'], agentWaitMs, reporter: terminalReporter(json ? process.stderr : process.stdout)}
}

/** The inventory file's hosts with key and known_hosts paths made absolute (they are recorded with the cluster). */
export async function inventoryHosts(file: string | undefined): Promise<HostSpec[] | undefined> {
  if (file === undefined) return undefined
  const [{readInventory}, {absoluteHosts}, path] = await Promise.all([import('../workspace/inputs.js'), import('../lifecycle/hosts.js'), import('node:path')])
  return absoluteHosts(readInventory(file).hosts, path.dirname(path.resolve(file)))
}

export function outcomeJson(outcome: OperationOutcome): Record<string, unknown> {
  return {
    cluster: outcome.cluster,
    changed: outcome.changed,
    resumed: outcome.resumed,
    ...(outcome.operation ? {operation: {id: outcome.operation.id, kind: outcome.operation.kind, title: outcome.operation.title}} : {}),
    ...(outcome.plan ? {revision: outcome.plan.revision} : {}),
    steps: {ran: outcome.ran, skipped: outcome.skipped},
    ...(outcome.last ? {last: outcome.last} : {}),
    ...(outcome.dependents?.length ? {dependents: outcome.dependents} : {}),
  }
}

export function outcomeText(outcome: OperationOutcome): string {
  return [ownOutcomeText(outcome), ...followText(outcome.dependents ?? [])].join('\n')
}

function ownOutcomeText(outcome: OperationOutcome): string {
  if (!outcome.changed) return `${outcome.cluster}: nothing to do.`
  const title = outcome.operation?.title ?? 'operation'
  const earlier = outcome.skipped > 0 ? `, ${outcome.skipped} done earlier` : ''
  return `${title} of ${outcome.cluster} finished${outcome.resumed ? ' (resumed)' : ''}: ${outcome.ran} step${outcome.ran === 1 ? '' : 's'} run${earlier}.`
}

/**
 * A command's result: the outcome as JSON, or its text logged; throws (exit 1) when a cluster linking to this one could
 * not follow its change, after the text said what did happen.
 */
export function reportOutcome(outcome: OperationOutcome, json: boolean, log: (text: string) => void, text = outcomeText(outcome)): Record<string, unknown> | undefined {
  if (!json) log(text)
  const error = followError(outcome.cluster, outcome.dependents ?? [])
  if (error) throw error
  return json ? outcomeJson(outcome) : undefined
}
