// What metad serves as a node's whole /self answer (src/metad/view.ts): the bytes it writes, joined from parts shared
// across nodes and clusters, must be exactly the node's view tree, and a waiting caller's fingerprint must move with it.
import {describe, expect, it} from 'vitest'
import {planCluster} from '../src/plan/index.js'
import type {ClusterState} from '../src/plan/types.js'
import {answerFor, fingerprint, selfChunks, selfTree, type ClusterEntry, type NodeAnswer} from '../src/metad/view.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

const zkEnv = {tick_time: {type: 'integer' as const, default: 2000}, password: {type: 'string' as const, default: 's3cr3t-zk', secret: true}}

function zkState(tickTime = 2000): ClusterState {
  const env = {...zkEnv, tick_time: {...zkEnv.tick_time, default: tickTime}}
  return applied(planCluster({spec: zkSpec({}, {env}), templates: zkTemplates(), inventory: hosts(3), operation: {kind: 'create'}}))
}

function appState(zk: ClusterState): ClusterState {
  const spec = zkSpec({count: 2}, {name: 'app', links: {coord: 'zk-main'}})
  const state = applied(planCluster({spec, templates: zkTemplates(), inventory: hosts(2), operation: {kind: 'create'}, linked: {'zk-main': zk}}))
  // A link to a cluster destroyed since: left out of the answer.
  return {...state, links: {...state.links, other: 'gone'}}
}

function entry(state: ClusterState, version: number): ClusterEntry {
  return {name: state.name, version, state, addresses: []}
}

function answers(cluster: ClusterEntry, registry: Map<string, ClusterEntry>): NodeAnswer[] {
  return cluster.state.nodes.map((node) => answerFor(cluster, node.node_id, (name) => registry.get(name))!)
}

const written = (answer: NodeAnswer): string => Buffer.concat(selfChunks(answer)).toString('utf8')

describe("a node's whole /self answer", () => {
  const zk = entry(zkState(), 10)
  const app = entry(appState(zk.state), 11)
  const registry = new Map([[zk.name, zk], [app.name, app]])

  it('is written as exactly its view tree, for every node of a cluster and of one linking to it', () => {
    for (const answer of [...answers(zk, registry), ...answers(app, registry)]) {
      expect(written(answer)).toBe(JSON.stringify(selfTree(answer)))
      const body = JSON.parse(written(answer)) as {host: {node_id: string}; links: Record<string, {env: Record<string, unknown>}>}
      expect(body.host.node_id).toBe(answer.nodeId)
    }
    const [first] = answers(app, registry)
    expect(Object.keys(JSON.parse(written(first!)).links as object)).toEqual(['coord'])
    expect(written(first!)).not.toContain('s3cr3t-zk')
  })

  it("follows a change of a linked cluster, in bytes and fingerprint, and keeps both when nothing it reads changed", () => {
    const before = answers(app, registry)
    const prints = before.map((a) => fingerprint(a, undefined))
    const hostPrints = before.map((a) => fingerprint(a, 'host'))
    expect(new Set(prints).size).toBe(before.length)

    // The same content committed again (a new entry, as a commit elsewhere in zk's tree gives): nothing moves.
    const again = new Map(registry).set(zk.name, entry(zkState(), 12))
    expect(answers(app, again).map((a) => fingerprint(a, undefined))).toEqual(prints)
    expect(answers(app, again).map(written)).toEqual(before.map(written))

    // zk's tick_time changes: every app node's answer and whole fingerprint change, its own host section does not.
    const changed = new Map(registry).set(zk.name, entry(zkState(3000), 13))
    const after = answers(app, changed)
    for (const [i, answer] of after.entries()) {
      expect(fingerprint(answer, undefined)).not.toBe(prints[i])
      expect(fingerprint(answer, 'host')).toBe(hostPrints[i])
      expect(written(answer)).toBe(JSON.stringify(selfTree(answer)))
      expect(JSON.parse(written(answer)).links.coord.env.tick_time).toBe(3000)
    }
    // And back again, from entries read earlier: the answers are those of then, not of the last change.
    expect(answers(app, registry).map(written)).toEqual(before.map(written))
  })
})
