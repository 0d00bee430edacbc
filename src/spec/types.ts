// The cluster spec as TypeScript types: the shape `schemas/cluster.schema.json` accepts (the schema is the contract).

/** A size string such as `512Mi`, `10Gi`, `1.5G` (binary suffixes Ki/Mi/Gi/Ti, decimal K/M/G/T, or bytes). */
export type SizeString = string
/** A duration such as `500ms`, `30s`, `10m`, `1h30m`. */
export type DurationString = string
/** A whole number or a percentage string such as `25%`. */
export type CountOrPercent = number | string

export type EnvType = 'string' | 'integer' | 'number' | 'boolean'
export type EnvValue = string | number | boolean

export interface EnvParam {
  type: EnvType
  description?: string
  default?: EnvValue
  enum?: EnvValue[]
  minimum?: number
  maximum?: number
  pattern?: string
  secret?: boolean
}

/** The variable a script reads an env parameter from: `tick_time` -> `SHOAL_ENV_TICK_TIME` (lint refuses two names that meet). */
export function envVarName(param: string): string {
  return `SHOAL_ENV_${param.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`
}

export interface FileSpec {
  /** Template path, relative to the spec file's directory. */
  template: string
  /** Destination: relative = under the node's home, absolute = host path. */
  dest: string
  /** Octal mode as a string, e.g. "0644". */
  mode?: string
  /** `user` or `user:group`. */
  owner?: string
  /** Command validating the staged file; `{{src}}` is the staged path. */
  check?: string
  /** Command run when the file changed. */
  reload?: string
}

/** Which nodes of the role a script runs on. */
export type ServiceTarget = 'all' | 'bootstrap' | 'existing' | 'joining' | 'leaving'

export interface ServiceSpec {
  cmd: string
  description?: string
  timeout?: DurationString
  on?: ServiceTarget
  /** `parallel` (within the update policy) or `serial` (one node at a time, in sid order). */
  order?: 'parallel' | 'serial'
}

/** A custom action: a script, optionally read-only (then it runs without the lock, at any time). */
export interface ActionSpec extends ServiceSpec {
  read_only?: boolean
}

export const LIFECYCLE_SERVICES = ['init', 'start', 'stop', 'restart', 'scale_out', 'scale_in', 'destroy', 'upgrade', 'pre_scale_out', 'pre_scale_in', 'configure'] as const
export type LifecycleService = (typeof LIFECYCLE_SERVICES)[number]

export interface HealthCheckSpec {
  cmd: string
  interval?: DurationString
  timeout?: DurationString
  healthy_threshold?: number
  unhealthy_threshold?: number
  /** How long to wait for a node to become healthy after start before failing. */
  start_period?: DurationString
}

export interface PlacementSpec {
  /** Hosts must carry every one of these labels with these values. */
  labels?: Record<string, string>
  /** How many nodes of this role one host may hold (default 1). */
  max_per_host?: number
}

export interface ServerIdSpec {
  start?: number
  upper_bound?: number
}

export interface ScaleSpec {
  min?: number
  max?: number
}

export interface RoleSpec {
  description?: string
  image: string
  cpu: number
  memory: SizeString
  disk: SizeString
  count: number
  scale?: ScaleSpec
  server_id?: ServerIdSpec
  placement?: PlacementSpec
  files?: FileSpec[]
  services?: Partial<Record<LifecycleService, ServiceSpec>>
  /** Named custom actions, run with `shoal run CLUSTER ACTION`. */
  actions?: Record<string, ActionSpec>
  health_check?: HealthCheckSpec
}

export interface UpdatePolicy {
  canaries?: number
  max_in_flight?: CountOrPercent
}

export interface ClusterSpec {
  apiVersion: 'shoal/v1'
  kind: 'Cluster'
  name: string
  description?: string
  /** Link name -> name of another registered cluster this one depends on. */
  links?: Record<string, string>
  env?: Record<string, EnvParam>
  roles: Record<string, RoleSpec>
  update?: UpdatePolicy
  /** Nodes keep their own files current with `shoal agent` (installed and supervised by shoal), fed by metad. */
  agent?: boolean
}

export const DEFAULTS = {
  serverIdStart: 1,
  serverIdUpperBound: 255,
  serviceTimeout: '10m',
  serviceOn: 'all' as ServiceTarget,
  serviceOrder: 'parallel' as const,
  fileMode: '0644',
  healthInterval: '10s',
  healthTimeout: '3s',
  healthyThreshold: 1,
  unhealthyThreshold: 3,
  healthStartPeriod: '2m',
  canaries: 1,
  maxInFlight: '25%' as CountOrPercent,
  maxPerHost: 1,
  nodeHomeRoot: '/srv/shoal',
}
