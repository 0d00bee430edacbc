// The planner's data: registered cluster state, operations, and the plan (plain JSON-serialisable values throughout).
import type {HostView} from '../render/view.js'
import type {ClusterSpec, EnvValue, LifecycleService} from '../spec/types.js'
import type {EnvChange} from './env.js'
import type {Step} from './steps.js'

/** Lifecycle state of a registered node. */
export type NodeState = 'pending' | 'active' | 'leaving'

/** A node as the registry holds it: its host view plus its lifecycle state. */
export interface NodeRecord extends HostView {
  state: NodeState
}

/** Per-role allocation records: they only grow, so ids are never handed out twice. */
export interface RoleIds {
  /** Highest sid ever handed out in the role (0 when none). */
  sidHigh: number
  /** Highest node sequence number ever handed out (node ids are `<cluster>-<role>-<seq>`). */
  nodeSeq: number
  /** Sids of fully removed nodes, ascending: reusable only once `sidHigh` reached the upper bound. */
  released: number[]
}

/** What the registry holds for one cluster (decoded from its metadata tree by `stateFromTree`). */
export interface ClusterState {
  name: string
  description: string
  specHash: string
  revision: number
  /** The spec the cluster was last planned from (so it can be re-planned without the spec files). */
  spec?: ClusterSpec
  /** Template path -> source, for every template the spec references. */
  templates: Record<string, string>
  env: Record<string, EnvValue>
  /** Names of env parameters whose values are secret (sorted). */
  secretEnv: string[]
  /** Where each value came from (`default`, `--set`, `--set-file PATH`, `FILE:LINE:COL`); given values are kept. */
  envSources?: Record<string, string>
  /** Link name -> linked cluster name. */
  links: Record<string, string>
  /** Every registered node, sorted by role then sid. */
  nodes: NodeRecord[]
  /** Node ids registered under `adding-hosts/` (an operation is in flight while non-empty). */
  adding: string[]
  /** Node ids registered under `deleting-hosts/`. */
  deleting: string[]
  ids: Record<string, RoleIds>
  /** Node id -> file destination (as in the spec) -> rendered content. */
  files: Record<string, Record<string, string>>
}

export type Operation =
  | {kind: 'create'}
  /**
   * Converge to the spec: counts, files, env and links (a cluster not registered yet is created). `follows` is set when
   * shoal itself re-applies a cluster's registered spec because the cluster it links to (`follows`) changed.
   */
  | {kind: 'apply'; follows?: string}
  | {kind: 'scale'; role: string; count?: number; add?: number; remove?: string[]}
  | {kind: 'destroy'}
  /** A custom action or restart on registered nodes (`shoal run`): no registry change, built by lifecycle/action.ts. */
  | {kind: 'run'; action: string; role?: string; node?: string; args?: string[]}
  /**
   * Undo an unfinished operation as far as it can (`shoal rollback`): planned from the spec registered before it, nodes
   * that were joining leave, nodes that were leaving stay unless their `destroy` already ran. (A create rolls back as `destroy`.)
   * `joined`: the nodes the unfinished operation adds; they leave even where it already registered them active.
   */
  | {kind: 'rollback'; of: string; joined?: string[]}

/**
 * What lifecycle scripts already did on one node in earlier operations that did not finish (failed, superseded or
 * abandoned): a planning input, so fixing forward or rolling back keeps finished work and undoes only what was done.
 */
export interface NodeFacts {
  /** Services that finished on the node. */
  done: LifecycleService[]
  /** Services that began on the node (finished or not). */
  touched: LifecycleService[]
  /** The node's files on its host may differ from the registered ones (an install after a registry commit did not finish). */
  filesStale?: boolean
  /** Its health check did not pass after it was started: its `start` counts as not finished. */
  unhealthy?: boolean
}

export type PlanErrorCode =
  | 'cluster-mismatch'
  | 'not-registered'
  | 'unknown-role'
  | 'unknown-node'
  | 'scale-args'
  | 'scale-bounds'
  | 'sid-exhausted'
  | 'placement-failed'
  | 'link-missing'
  | 'template-missing'
  | 'template-parse'
  | 'template-render'
  | 'template-budget'
  | 'invalid-value'
  | 'agent-switch'

/** Why a plan could not be made: a code, a message a person can act on, and where it applies. */
export interface PlanError {
  code: PlanErrorCode
  message: string
  role?: string
  node?: string
  template?: string
  line?: number
  col?: number
  /** Machine-readable numbers, e.g. for placement-failed: `short` and a host count per exhausted resource. */
  details?: Record<string, number>
}

/** One file rendered for one node. */
export interface RenderedFile {
  /** Destination as written in the spec. */
  dest: string
  /** Absolute path on the host (relative destinations live under the node's home). */
  path: string
  template: string
  content: string
  mode: string
  owner?: string
  /** sha256 of the content, hex. */
  hash: string
  /** The template reads a secret: the content is shown to no one (plans, diffs, `render` without --show-secrets). */
  sensitive?: boolean
  check?: string
  reload?: string
}

export type FileAction = 'create' | 'update' | 'delete'

/** A file whose content differs from what is registered for the node. */
export interface FileChange {
  dest: string
  action: FileAction
  /** Registered content (for update and delete). */
  before?: string
  /** New content (for create and update). */
  after?: string
  /** The file is or was rendered from a template that reads a secret: before and after are never shown. */
  sensitive?: boolean
}

export type NodeChange = 'create' | 'keep' | 'remove'

export interface PlannedNode extends HostView {
  /** State once the operation completed (`leaving` for removed nodes, which are then gone). */
  state: NodeState
  change: NodeChange
  reason: string
  /** Files once the operation completed (empty for removed nodes). */
  files: RenderedFile[]
  /** Files placed while the operation is in flight, only when they differ from `files` (e.g. a template reads adding_hosts). */
  interim?: RenderedFile[]
  /** Files whose final content differs from what is registered. */
  fileChanges: FileChange[]
}

export interface TreeChanges {
  puts: [string, string][]
  deletes: string[]
}

export interface Plan {
  cluster: string
  operation: Operation
  /** Registry revision of the cluster this plan was made against (0 when not registered): applying against another is stale. */
  baseRevision: number
  /** Cluster revision once applied (equal to baseRevision when nothing changes). */
  revision: number
  specHash: string
  /** Every node the operation touches or keeps, in declared role order then sid order. */
  nodes: PlannedNode[]
  /** The cluster's state once the operation completed (null after destroy, or when planning failed). */
  desired: ClusterState | null
  /** The metadata tree once the operation completed, as sorted [key, value] pairs (`treeOf(desired)` as a record). */
  tree: [string, string][]
  /** Registry writes from the registered tree to `tree`. */
  changes: TreeChanges
  steps: Step[]
  /** Parameters whose value changes (values of secret ones left out); `configure` runs where they do. */
  envChanges?: EnvChange[]
  /**
   * Where the registered cluster differs from the spec being applied because of a command that changed it directly
   * (`shoal scale`, `--set`): what this plan does about each (filled in by `compile`, which reads the history).
   */
  imperative?: ImperativeChange[]
  /** With --refresh: files on the hosts that differ from the registered ones (applying the plan puts them back). */
  drift?: FileDrift[]
  /** With --refresh: nodes whose files could not be checked, and why. */
  driftUnchecked?: Array<{node: string; reason: string}>
  /** Non-empty when no plan could be made; everything else is then empty. */
  errors: PlanError[]
  /** Secret values (own and linked env) to redact from any output; `redactPlan` clears it. */
  secrets: string[]
}

/** A node's file on its host that is not as registered (`plan --refresh`). */
export interface FileDrift {
  node: string
  host: string
  /** As the spec names it, and the absolute path on the host. */
  dest: string
  path: string
  problem: 'missing' | 'content' | 'mode' | 'content and mode'
  registeredMode: string
  foundMode?: string
  /** Contents for a diff: never for a file whose template reads a secret (`sensitive`). */
  registered?: string
  found?: string
  sensitive?: boolean
}

/** A registered difference from the spec that a command made (see Plan.imperative). */
export type ImperativeChange =
  /** `by`: the operation that set the registered count, as the history names it (absent when it holds none). */
  | {kind: 'count'; role: string; spec: number; registered: number; by?: string; at?: string}
  | {kind: 'env'; name: string; source: string}

export type {LifecycleService}
