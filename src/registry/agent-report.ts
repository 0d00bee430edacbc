// What a node's agent reports (through metad, to its own node's key): the revision its files reflect and how that went.
import type {Store} from '../store/store.js'
import {agentsPrefix} from './keys.js'

export interface AgentReport {
  /** The registry revision the node's files were rendered from (metad's X-Shoal-Revision of that answer). */
  revision: number
  /** File destination (as in the spec) → sha256 of the content on disk. */
  files: Record<string, string>
  /** Why the files are not as rendered (a refused check, a failed reload, a template that fails); empty when in sync. */
  errors: string[]
  /** When metad last wrote this report (it is rewritten only when it changes; the lease shows liveness). */
  at: string
}

const MAX_ERRORS = 20
const MAX_ERROR_LENGTH = 2000
const MAX_FILES = 1000

/** A report as an agent sent it, checked and bounded; throws a message for the agent when it is not one. */
export function parseAgentReport(body: unknown): Omit<AgentReport, 'at'> {
  const r = body as Partial<AgentReport> | null
  if (!r || typeof r !== 'object') throw new Error('a report is a JSON object {revision, files, errors}')
  if (!Number.isInteger(r.revision) || r.revision! < 0) throw new Error('revision must be a non-negative integer')
  if (!r.files || typeof r.files !== 'object' || Array.isArray(r.files)) throw new Error('files must map each destination to its sha256')
  const files = Object.entries(r.files)
  if (files.length > MAX_FILES) throw new Error(`at most ${MAX_FILES} files`)
  if (!files.every(([dest, hash]) => dest.length <= 4096 && typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash))) throw new Error('files must map each destination to its sha256 (64 hex digits)')
  if (!Array.isArray(r.errors) || !r.errors.every((e) => typeof e === 'string')) throw new Error('errors must be a list of strings')
  return {revision: r.revision!, files: Object.fromEntries(files), errors: r.errors.slice(0, MAX_ERRORS).map((e) => e.slice(0, MAX_ERROR_LENGTH))}
}

/** Node id → its agent's last report, for the nodes whose agent is alive (a dead agent's key has gone with its lease). */
export async function readAgentReports(store: Store, cluster: string): Promise<Map<string, AgentReport>> {
  const prefix = agentsPrefix(cluster)
  const out = new Map<string, AgentReport>()
  for (const kv of (await store.range(prefix)).kvs) {
    try {
      out.set(kv.key.slice(prefix.length), {...parseAgentReport(JSON.parse(kv.value)), at: (JSON.parse(kv.value) as AgentReport).at})
    } catch {
      // A report that does not parse says nothing: the node shows as having no agent.
    }
  }
  return out
}
