// metad's copy of the registry: one read, then one watch, keep every cluster's committed state and the address mapping.
//
// Consistency follows the registry's multi-transaction protocol (src/registry/commit.ts, read.ts): while a cluster's
// `cluster/pending` marker exists, readers see the cluster as it was just before the marker was created. Events are
// applied in revision order, so the mirror simply keeps serving the state it had when the marker appeared, and takes
// the new state when the marker goes (the last batch of the change, or the end of a rollback).
//
// When the registry is away the mirror keeps what it had and says it is stale; a probe notices the registry back, and
// a compacted watch (metad was away longer than etcd keeps history) is recovered the same way: a fresh read.
import {stateFromTree} from '../plan/index.js'
import {CLUSTERS_PREFIX, clusterRevisionKey, nodeTokenKeyKey, pendingKey} from '../registry/index.js'
import {StoreError, type Store, type Watch, type WatchEvent} from '../store/store.js'
import type {ClusterEntry} from './view.js'

export interface MirrorOptions {
  store: Store
  /** How often the registry is probed for being reachable (and, once it is back, read afresh). */
  probeIntervalMs: number
  /** Called after changes were applied, with the clusters whose served state changed. */
  onChange: (clusters: ReadonlySet<string>) => void
  log: (line: string) => void
}

export interface NodeRef {
  cluster: string
  nodeId: string
}

interface Stored {
  value: string
  mod: number
}

/** What a cluster owns in the registry, as far as its view goes (rendered files and template sources are not kept). */
interface ClusterKeys {
  keys: Map<string, Stored>
  /** `mapping/<ip>/<cluster>/<node-id>` keys of this cluster's nodes. */
  mapping: Map<string, string>
}

/** Why the mirror read everything afresh: the first read, a compacted watch, or the registry back after being away. */
export type ResyncReason = 'start' | 'compacted' | 'recovered'

/** A key nobody writes: reading it is the cheapest question the registry answers. */
const PROBE_KEY = 'metad/probe'

export class Mirror {
  /** The registry revision the mirror has applied. */
  revision = 0
  /** Set while the registry cannot be reached or the watch is broken: answers are the last state read. */
  stale: {since: Date; reason: string} | undefined
  readonly resyncs: Record<ResyncReason, number> = {start: 0, compacted: 0, recovered: 0}
  private entries = new Map<string, ClusterEntry>()
  private addresses = new Map<string, NodeRef[]>()
  private tokenKeys = new Map<string, string>()
  private live = new Map<string, ClusterKeys>()
  /** Clusters with a multi-transaction change in flight: their entries stay as they were before it. */
  private frozen = new Set<string>()
  private watch: Watch | undefined
  private generation = 0
  private probe: NodeJS.Timeout | undefined
  private resyncing: Promise<void> | undefined
  private closed = false

  constructor(private readonly options: MirrorOptions) {}

  /** Whether the registry has been read once (an empty registry is at revision 0 too). */
  ready = false

  cluster(name: string): ClusterEntry | undefined {
    return this.entries.get(name)
  }

  get clusterCount(): number {
    return this.entries.size
  }

  /** Nodes registered at an address (`mapping/<ip>/...`). */
  nodesAt(address: string): readonly NodeRef[] {
    return this.addresses.get(address) ?? []
  }

  tokenKey(cluster: string): string | undefined {
    return this.tokenKeys.get(cluster)
  }

  /** First read and watch; a registry that is away now is retried by the probe (the server answers 503 meanwhile). */
  async start(): Promise<void> {
    this.probe = setInterval(() => void this.check(), this.options.probeIntervalMs)
    await this.resync('start')
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.probe)
    await this.resyncing
    this.generation++
    const watch = this.watch
    this.watch = undefined
    let timer: NodeJS.Timeout | undefined
    await Promise.race([watch?.close().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 2000)))])
    clearTimeout(timer)
  }

  private async check(): Promise<void> {
    if (this.resyncing || this.closed) return
    if (!this.ready || this.stale) {
      await this.resync(this.ready ? 'recovered' : 'start')
      return
    }
    try {
      await this.options.store.get(PROBE_KEY)
    } catch (error) {
      this.markStale(`registry unreachable: ${(error as Error).message}`)
    }
  }

  private markStale(reason: string): void {
    if (!this.stale) this.options.log(`registry stale: ${reason}`)
    this.stale = {since: this.stale?.since ?? new Date(), reason}
  }

  /** Read everything afresh and watch from there; the served state is swapped in whole. */
  resync(reason: ResyncReason): Promise<void> {
    this.resyncing ??= this.readAndWatch(reason).finally(() => (this.resyncing = undefined))
    return this.resyncing
  }

  private async readAndWatch(reason: ResyncReason): Promise<void> {
    const generation = ++this.generation
    // Not awaited: closing an etcd watch that is reconnecting waits for the connection; its events are ignored anyway.
    void this.watch?.close().catch(() => undefined)
    this.watch = undefined
    try {
      const {store} = this.options
      const {kvs, revision} = await store.range('')
      const live = new Map<string, ClusterKeys>()
      const tokenKeys = new Map<string, string>()
      const pending = new Map<string, number>()
      for (const kv of kvs) {
        const owner = ownerOf(kv.key)
        if (!owner) continue
        if (owner.kind === 'token') tokenKeys.set(owner.cluster, kv.value)
        else if (owner.kind === 'pending') pending.set(owner.cluster, kv.createRevision)
        else store1(live, owner, kv.key, kv.value, kv.modRevision)
      }
      const entries = new Map<string, ClusterEntry>()
      for (const name of live.keys()) {
        if (pending.has(name)) continue
        const entry = this.build(name, live.get(name)!)
        if (entry) entries.set(name, entry)
      }
      for (const [name, created] of pending) {
        // The protocol's rule: the store just before the marker was created holds the cluster's whole old state.
        const base = created - 1
        try {
          const before = new Map<string, ClusterKeys>()
          for (const prefix of [`${CLUSTERS_PREFIX}${name}/`, 'mapping/']) {
            for (const kv of (await store.range(prefix, {revision: base})).kvs) {
              const owner = ownerOf(kv.key)
              if (owner?.cluster === name && owner.kind !== 'token' && owner.kind !== 'pending') store1(before, owner, kv.key, kv.value, kv.modRevision)
            }
          }
          const entry = before.has(name) ? this.build(name, before.get(name)!) : undefined
          if (entry) entries.set(name, entry)
        } catch (error) {
          if (!(error instanceof StoreError && error.code === 'COMPACTED')) throw error
          this.options.log(`cluster ${name}: a multi-transaction change is in flight and its base revision ${base} is compacted: not served until it ends`)
        }
      }
      if (generation !== this.generation || this.closed) return
      const previous = this.entries
      this.live = live
      this.tokenKeys = tokenKeys
      this.frozen = new Set(pending.keys())
      this.entries = entries
      this.revision = revision
      this.ready = true
      this.indexAddresses()
      this.watch = await store.watch('', revision, (events) => this.apply(generation, events), (error) => this.watchFailed(generation, error))
      if (generation !== this.generation) return
      this.resyncs[reason]++
      if (this.stale) this.options.log(`registry back (${reason}): read at revision ${revision}`)
      this.stale = undefined
      const changed = new Set<string>()
      for (const name of new Set([...previous.keys(), ...entries.keys()])) {
        if (previous.get(name)?.version !== entries.get(name)?.version) changed.add(name)
      }
      if (changed.size > 0) this.options.onChange(changed)
    } catch (error) {
      if (generation !== this.generation) return
      this.markStale(`${reason === 'start' && !this.ready ? 'first read' : 'reading afresh'} failed: ${(error as Error).message}`)
    }
  }

  private watchFailed(generation: number, error: Error): void {
    if (generation !== this.generation || this.closed) return
    this.generation++
    this.watch = undefined
    if (error instanceof StoreError && error.code === 'COMPACTED') {
      this.options.log(`watch compacted (${error.message}): reading afresh`)
      void this.resync('compacted')
      return
    }
    this.markStale(`watch failed: ${error.message}`)
  }

  private apply(generation: number, events: WatchEvent[]): void {
    if (generation !== this.generation) return
    const dirty = new Set<string>()
    const changed = new Set<string>()
    const rebuild = (name: string): void => {
      dirty.delete(name)
      const keys = this.live.get(name)
      const entry = keys ? this.build(name, keys) : undefined
      if (entry) this.entries.set(name, entry)
      else this.entries.delete(name)
      changed.add(name)
    }
    for (const event of events) {
      if (event.modRevision <= this.revision) continue // already in the read this watch started from
      const owner = ownerOf(event.key)
      if (!owner) continue
      if (owner.kind === 'token') {
        if (event.type === 'put') this.tokenKeys.set(owner.cluster, event.value)
        else this.tokenKeys.delete(owner.cluster)
      } else if (owner.kind === 'pending') {
        if (event.type === 'put' && !this.frozen.has(owner.cluster)) {
          // Everything before this event is the complete old state: settle it, then hold it until the change ends.
          if (dirty.has(owner.cluster)) rebuild(owner.cluster)
          this.frozen.add(owner.cluster)
        } else if (event.type === 'delete') {
          this.frozen.delete(owner.cluster)
          dirty.add(owner.cluster)
        }
      } else {
        if (event.type === 'put') store1(this.live, owner, event.key, event.value, event.modRevision)
        else drop(this.live, owner, event.key)
        if (!this.frozen.has(owner.cluster)) dirty.add(owner.cluster)
      }
    }
    this.revision = Math.max(this.revision, events[events.length - 1]?.modRevision ?? 0)
    for (const name of [...dirty]) rebuild(name)
    if (changed.size > 0) {
      this.indexAddresses()
      this.options.onChange(changed)
    }
  }

  private build(name: string, keys: ClusterKeys): ClusterEntry | undefined {
    const revisionKey = keys.keys.get(clusterRevisionKey(name))
    // A cluster exists once its revision key does (a create writes it last), as listClusters has it.
    if (!revisionKey) return undefined
    const flat: Record<string, string> = {}
    for (const [key, stored] of keys.keys) flat[key] = stored.value
    try {
      const state = stateFromTree(name, flat)
      const registered = new Map(state.nodes.map((n) => [n.node_id, n.ip]))
      const addresses: Array<[string, string]> = []
      for (const [key, value] of keys.mapping) {
        const [, ip, cluster, nodeId] = key.split('/')
        // Only what the tree agrees with: a mapping key is written in the same change as its node's hosts entry.
        if (ip && cluster === name && nodeId && value === `${name}/${nodeId}` && registered.get(nodeId) === ip) addresses.push([ip, nodeId])
      }
      return {name, version: revisionKey.mod, state, addresses}
    } catch (error) {
      this.options.log(`cluster ${name}: cannot decode its tree (${(error as Error).message}); serving its previous state`)
      return this.entries.get(name)
    }
  }

  private indexAddresses(): void {
    const addresses = new Map<string, NodeRef[]>()
    // Each entry carries the mapping it was built with, so a frozen cluster's addresses are those of its served state.
    for (const entry of this.entries.values()) {
      for (const [ip, nodeId] of entry.addresses) addresses.set(ip, [...(addresses.get(ip) ?? []), {cluster: entry.name, nodeId}])
    }
    this.addresses = addresses
  }
}

type Owner = {cluster: string; kind: 'tree' | 'mapping' | 'token' | 'pending'}

/** Which cluster a key serves, or undefined for keys neither the view nor the agents need (files, locks, operations). */
function ownerOf(key: string): Owner | undefined {
  const parts = key.split('/')
  if (parts[0] === 'clusters' && parts.length >= 3) {
    const cluster = parts[1]!
    if (parts[2] === 'files') return undefined
    if (key === pendingKey(`${CLUSTERS_PREFIX}${cluster}/`)) return {cluster, kind: 'pending'}
    return {cluster, kind: 'tree'}
  }
  if (parts[0] === 'mapping' && parts.length === 4) return {cluster: parts[2]!, kind: 'mapping'}
  if (parts[0] === 'operations' && parts.length === 3 && key === nodeTokenKeyKey(parts[1]!)) return {cluster: parts[1]!, kind: 'token'}
  return undefined
}

function store1(live: Map<string, ClusterKeys>, owner: Owner, key: string, value: string, mod: number): void {
  let keys = live.get(owner.cluster)
  if (!keys) live.set(owner.cluster, (keys = {keys: new Map(), mapping: new Map()}))
  if (owner.kind === 'mapping') keys.mapping.set(key, value)
  else keys.keys.set(key, {value, mod})
}

function drop(live: Map<string, ClusterKeys>, owner: Owner, key: string): void {
  const keys = live.get(owner.cluster)
  if (!keys) return
  if (owner.kind === 'mapping') keys.mapping.delete(key)
  else keys.keys.delete(key)
  if (keys.keys.size === 0 && keys.mapping.size === 0) live.delete(owner.cluster)
}
