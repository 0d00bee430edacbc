// What a lifecycle script is told about the operation: the before/after membership (a JSON file) and SHOAL_* env values.
import {HOST_FIELDS, type HostView} from '../render/view.js'
import type {Operation, Plan} from '../plan/types.js'
import {envVarName, type EnvValue} from '../spec/types.js'

export {envVarName}

/** Role -> nodes (sid order), as the membership file holds them. */
export type RoleMembers = Record<string, HostView[]>

export interface Membership {
  before: RoleMembers
  after: RoleMembers
  joining: RoleMembers
  leaving: RoleMembers
}

/** Relative to the node home. */
export const MEMBERSHIP_FILE = '.shoal/membership.json'

function hostView(node: HostView): HostView {
  const out: Record<string, unknown> = {}
  for (const field of HOST_FIELDS) out[field] = node[field]
  return out as unknown as HostView
}

function group(nodes: readonly HostView[]): RoleMembers {
  const out: RoleMembers = {}
  for (const node of [...nodes].sort((a, b) => a.sid - b.sid)) (out[node.role] ??= []).push(hostView(node))
  return out
}

export function membershipOf(plan: Plan): Membership {
  const nodes = plan.nodes
  return {
    before: group(nodes.filter((n) => n.change !== 'create')),
    after: group(nodes.filter((n) => n.change !== 'remove')),
    joining: group(nodes.filter((n) => n.change === 'create')),
    leaving: group(nodes.filter((n) => n.change === 'remove')),
  }
}

/**
 * What `SHOAL_OPERATION` says is running: create, apply, scale_out, scale_in, destroy, rollback, or the action's name
 * (`restart` included). A scale is `scale_out` when nodes join, else `scale_in`.
 */
export function operationName(plan: Pick<Plan, 'nodes'> & {operation?: Operation}): string {
  const op = plan.operation
  if (!op) return ''
  if (op.kind === 'run') return op.action
  if (op.kind === 'scale') return plan.nodes.some((n) => n.change === 'create') ? 'scale_out' : 'scale_in'
  return op.kind
}

/** The environment of a script on `node` (the transport shell-quotes every value). */
export function scriptEnv(plan: Pick<Plan, 'cluster' | 'nodes'> & {operation?: Operation}, env: Record<string, EnvValue>, node: HostView): Record<string, string> {
  const ids = (change: 'create' | 'remove'): string[] => plan.nodes.filter((n) => n.change === change).map((n) => n.node_id)
  const op = plan.operation
  return nodeEnv({cluster: plan.cluster, operation: operationName(plan), ...(op?.kind === 'run' ? {args: op.args ?? []} : {}), node, env, joining: ids('create'), leaving: ids('remove')})
}

/** The SHOAL_* values every command on a node gets, from the SSH path (an operation) or from its agent (a change). */
export function nodeEnv(what: {cluster: string; operation: string; args?: readonly string[]; node: HostView; env: Record<string, EnvValue>; joining: readonly string[]; leaving: readonly string[]}): Record<string, string> {
  const {node} = what
  const out: Record<string, string> = {
    SHOAL_CLUSTER: what.cluster,
    SHOAL_OPERATION: what.operation,
    ...(what.args ? {SHOAL_ARGS: what.args.join(' ')} : {}),
    SHOAL_NODE_ID: node.node_id,
    SHOAL_ROLE: node.role,
    SHOAL_SID: String(node.sid),
    SHOAL_IP: node.ip,
    SHOAL_BOOTSTRAP: node.bootstrap ? 'true' : 'false',
    SHOAL_HOME: node.home,
    SHOAL_MEMBERSHIP: `${node.home}/${MEMBERSHIP_FILE}`,
    SHOAL_JOINING: what.joining.join(' '),
    SHOAL_LEAVING: what.leaving.join(' '),
  }
  for (const [name, value] of Object.entries(what.env)) out[envVarName(name)] = String(value)
  return out
}

/** What `configure` is told besides the new values: which parameters changed, and what each one was before. */
export function configureEnv(changed: readonly string[], previous: Record<string, EnvValue>): Record<string, string> {
  const out: Record<string, string> = {SHOAL_ENV_CHANGED: [...changed].sort().join(' ')}
  for (const [name, value] of Object.entries(previous)) out[envVarName(name).replace(/^SHOAL_ENV_/, 'SHOAL_PREVIOUS_ENV_')] = String(value)
  return out
}
