// Sample node views for the example specs: N nodes per role on 127.0.1.x, plus the spec's files rendered for one node.
import {readFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {parse} from 'yaml'
import {parseTemplate, renderTemplate} from '../../src/render/engine.js'
import type {HostView, LinkView, NodeView} from '../../src/render/view.js'
import type {ClusterSpec, EnvValue, FileSpec} from '../../src/spec/types.js'
import {DEFAULTS} from '../../src/spec/types.js'
import {parseSize} from '../../src/util/units.js'

export interface SampleOptions {
  /** Nodes per role before any scale event; defaults to each role's `count`. */
  counts?: Record<string, number>
  /** Nodes per role joining in a scale out: they get the next sids and are listed in `hosts` and `adding_hosts`. */
  adding?: Record<string, number>
  /** Sids per role leaving in a scale in: they stay in `hosts` and are listed in `deleting_hosts`. */
  deleting?: Record<string, number[]>
  /** Last octet of the first node's 127.0.1.x address (default 1). Each role has a block of ROLE_STRIDE addresses,
   * in declared order, so a scale event never moves another node's address. */
  firstOctet?: number
  /** Directory holding one home per node (default DEFAULTS.nodeHomeRoot/<cluster>). */
  homeRoot?: string
  /** Values overriding the env defaults. */
  env?: Record<string, EnvValue>
  /** Views of the linked clusters, by link name. */
  links?: Record<string, LinkView>
}

export const ROLE_STRIDE = 50

export interface SampleCluster {
  spec: ClusterSpec
  env: Record<string, EnvValue>
  /** Every node of the cluster, leaving and joining ones included, role by role in sid order. */
  nodes: HostView[]
  /** The view each node renders its templates against, by node id. */
  views: Map<string, NodeView>
}

export function loadSpec(specFile: string): ClusterSpec {
  return parse(readFileSync(specFile, 'utf8')) as ClusterSpec
}

/** The env a node sees: each parameter's default, then the overrides. */
export function envValues(spec: ClusterSpec, overrides: Record<string, EnvValue> = {}): Record<string, EnvValue> {
  const env: Record<string, EnvValue> = {}
  for (const [name, param] of Object.entries(spec.env ?? {})) {
    if (param.default !== undefined) env[name] = param.default
  }
  return {...env, ...overrides}
}

/** Build the cluster's nodes and every node's view, as the planner would during create, scale out or scale in. */
export function sampleCluster(spec: ClusterSpec, options: SampleOptions = {}): SampleCluster {
  const env = envValues(spec, options.env)
  const homeRoot = options.homeRoot ?? `${DEFAULTS.nodeHomeRoot}/${spec.name}`
  const firstOctet = options.firstOctet ?? 1
  const hosts: Record<string, HostView[]> = {}
  const adding: Record<string, HostView[]> = {}
  const deleting: Record<string, HostView[]> = {}
  for (const [roleIndex, [role, roleSpec]] of Object.entries(spec.roles).entries()) {
    const before = options.counts?.[role] ?? roleSpec.count
    const joining = options.adding?.[role] ?? 0
    const start = roleSpec.server_id?.start ?? DEFAULTS.serverIdStart
    const members: HostView[] = []
    for (let i = 0; i < before + joining; i++) {
      const sid = start + i
      const nodeId = `${spec.name}-${role}-${sid}`
      members.push({
        node_id: nodeId, role, sid, ip: `127.0.1.${firstOctet + roleIndex * ROLE_STRIDE + i}`, host: `sandbox-${sid}`, image: roleSpec.image,
        cpu: roleSpec.cpu, memory: roleSpec.memory, memory_bytes: parseSize(roleSpec.memory) ?? 0,
        disk: roleSpec.disk, disk_bytes: parseSize(roleSpec.disk) ?? 0, bootstrap: false, home: `${homeRoot}/${nodeId}`,
      })
    }
    const leavingSids = options.deleting?.[role] ?? []
    for (const sid of leavingSids) {
      if (!members.some((m) => m.sid === sid)) throw new Error(`sample view: role ${role} has no node with sid ${sid} to delete`)
    }
    // As the planner does: the bootstrap node is the lowest sid among the nodes that stay.
    const staying = members.filter((m) => !leavingSids.includes(m.sid))
    if (staying[0]) staying[0].bootstrap = true
    hosts[role] = members
    adding[role] = members.slice(before)
    deleting[role] = members.filter((m) => leavingSids.includes(m.sid))
  }
  const nodes = Object.values(hosts).flat()
  const cluster = {name: spec.name, description: spec.description ?? '', spec_hash: 'sample', revision: 1}
  const views = new Map<string, NodeView>()
  for (const self of nodes) {
    views.set(self.node_id, {self, host: self, cluster, env, hosts, links: options.links ?? {}, adding_hosts: adding, deleting_hosts: deleting})
  }
  return {spec, env, nodes, views}
}

/** What a linked cluster looks like to the clusters that link to it. */
export function linkViewOf(sample: SampleCluster): LinkView {
  const first = sample.views.values().next().value
  if (!first) throw new Error(`sample view: cluster ${sample.spec.name} has no nodes`)
  return {cluster: sample.spec.name, env: sample.env, hosts: first.hosts, adding_hosts: first.adding_hosts, deleting_hosts: first.deleting_hosts}
}

/** Render every file of the node's role; keys are the files' destinations. */
export function renderNodeFiles(specFile: string, spec: ClusterSpec, view: NodeView): Map<string, string> {
  const files: FileSpec[] = spec.roles[view.self.role]?.files ?? []
  const out = new Map<string, string>()
  for (const file of files) {
    const source = readFileSync(resolve(dirname(specFile), file.template), 'utf8')
    try {
      out.set(file.dest, renderTemplate(parseTemplate(source), view))
    } catch (err) {
      throw new Error(`${file.template} for ${view.self.node_id}: ${(err as Error).message}`)
    }
  }
  return out
}
