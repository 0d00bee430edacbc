// Placement: which host each new node goes to, honouring capacity (all clusters' nodes summed), labels and max_per_host.
//
// Rule (deterministic): existing nodes keep their host. New nodes are placed role by role in declared order, in sid
// order, each on the feasible host with the most free capacity, measured as the bottleneck: the smallest remaining
// fraction over cpu, memory and disk (an unlimited resource counts as fully free). Ties go to the host with fewer nodes
// of the role, then fewer nodes in all, then the lower name. A host that cannot take a node of a role can take none
// later in the same pass (its free capacity only shrinks), so each role is one pass over a heap: O((n + hosts) log hosts).
import {parseSize} from '../util/units.js'
import {Heap} from './heap.js'
import type {HostUsage, Inventory} from './inventory.js'
import type {PlanError} from './types.js'

/** Resources in integer units: milli-cpu (sums stay exact), bytes. */
export interface Demand {
  cpu: number
  memory: number
  disk: number
}

export interface HostSlot {
  name: string
  address: string
  labels: Record<string, string>
  /** Infinity where the inventory sets no capacity. */
  capacity: Demand
  used: Demand
  nodes: number
  perRole: Map<string, number>
}

export interface RoleRequest {
  role: string
  count: number
  demand: Demand
  labels: Record<string, string>
  maxPerHost: number
}

export function milliCpu(cpu: number): number {
  return Math.round(cpu * 1000)
}

/** Host slots from the inventory, charged with other clusters' usage; bad capacity strings are errors. */
export function hostSlots(inventory: Inventory, otherUsage: Record<string, HostUsage> = {}): {slots: HostSlot[]; errors: PlanError[]} {
  const errors: PlanError[] = []
  const slots: HostSlot[] = []
  for (const host of [...inventory.hosts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const size = (field: 'memory' | 'disk'): number => {
      const text = host.capacity?.[field]
      if (text === undefined) return Infinity
      const bytes = parseSize(text)
      if (bytes === undefined) {
        errors.push({code: 'invalid-value', message: `host ${host.name}: capacity.${field} ${JSON.stringify(text)} is not a size such as 16Gi`})
        return 0
      }
      return bytes
    }
    const other = otherUsage[host.name]
    slots.push({
      name: host.name,
      address: host.address,
      labels: host.labels ?? {},
      capacity: {cpu: host.capacity?.cpu === undefined ? Infinity : milliCpu(host.capacity.cpu), memory: size('memory'), disk: size('disk')},
      used: {cpu: other ? milliCpu(other.cpu) : 0, memory: other?.memory ?? 0, disk: other?.disk ?? 0},
      nodes: 0,
      perRole: new Map(),
    })
  }
  return {slots, errors}
}

export function occupy(slot: HostSlot, role: string, demand: Demand): void {
  slot.used.cpu += demand.cpu
  slot.used.memory += demand.memory
  slot.used.disk += demand.disk
  slot.nodes += 1
  slot.perRole.set(role, (slot.perRole.get(role) ?? 0) + 1)
}

function freeFraction(slot: HostSlot): number {
  let least = 1
  for (const dim of ['cpu', 'memory', 'disk'] as const) {
    const cap = slot.capacity[dim]
    if (cap === Infinity) continue
    least = Math.min(least, cap > 0 ? (cap - slot.used[dim]) / cap : -1)
  }
  return least
}

function matchesLabels(slot: HostSlot, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(labels)) if (slot.labels[k] !== v) return false
  return true
}

type Shortage = 'labels' | 'max_per_host' | 'cpu' | 'memory' | 'disk'

/** Why a host cannot take one more node of the request, or undefined when it can. */
function shortage(slot: HostSlot, req: RoleRequest): Shortage | undefined {
  if (!matchesLabels(slot, req.labels)) return 'labels'
  if ((slot.perRole.get(req.role) ?? 0) >= req.maxPerHost) return 'max_per_host'
  for (const dim of ['cpu', 'memory', 'disk'] as const) {
    if (slot.used[dim] + req.demand[dim] > slot.capacity[dim]) return dim
  }
  return undefined
}

interface Entry {
  slot: HostSlot
  free: number
  ofRole: number
}

function before(a: Entry, b: Entry): boolean {
  if (a.free !== b.free) return a.free > b.free
  if (a.ofRole !== b.ofRole) return a.ofRole < b.ofRole
  if (a.slot.nodes !== b.slot.nodes) return a.slot.nodes < b.slot.nodes
  return a.slot.name < b.slot.name
}

/** Place `req.count` new nodes of one role, charging the chosen slots; on failure nothing is charged. */
export function placeRole(slots: HostSlot[], req: RoleRequest): {hosts: HostSlot[]} | {error: PlanError} {
  if (req.count === 0) return {hosts: []}
  const heap = new Heap<Entry>(before)
  for (const slot of slots) {
    if (matchesLabels(slot, req.labels)) heap.push({slot, free: freeFraction(slot), ofRole: slot.perRole.get(req.role) ?? 0})
  }
  const chosen: HostSlot[] = []
  while (chosen.length < req.count && heap.size > 0) {
    const {slot} = heap.pop()!
    if (shortage(slot, req) !== undefined) continue
    occupy(slot, req.role, req.demand)
    chosen.push(slot)
    heap.push({slot, free: freeFraction(slot), ofRole: slot.perRole.get(req.role)!})
  }
  if (chosen.length === req.count) return {hosts: chosen}

  const short = req.count - chosen.length
  const counts: Partial<Record<Shortage, number>> = {}
  for (const slot of slots) {
    const why = shortage(slot, req)
    if (why) counts[why] = (counts[why] ?? 0) + 1
  }
  for (const slot of chosen) unoccupy(slot, req.role, req.demand)
  const hosts = (n: number) => `${n} host${n === 1 ? '' : 's'}`
  const labelText = Object.entries(req.labels).map(([k, v]) => `${k}=${v}`).join(',')
  const reasons = (Object.entries(counts) as [Shortage, number][]).map(([why, n]) =>
    why === 'labels' ? `${hosts(n)} lack labels ${labelText}`
    : why === 'max_per_host' ? `${hosts(n)} already hold max_per_host ${req.maxPerHost}`
    : `${hosts(n)} short of ${why}`,
  )
  const resources = Object.keys(counts).join('/')
  return {
    error: {
      code: 'placement-failed',
      role: req.role,
      message:
        `role ${req.role}: ${short} of ${req.count} new node${req.count === 1 ? '' : 's'} cannot be placed ` +
        (slots.length === 0 ? '(the inventory has no hosts)' : `(out of ${resources}: ${reasons.join('; ')})`) +
        '; add hosts or capacity, relax placement, or lower the count',
      details: {short, ...counts},
    },
  }
}

function unoccupy(slot: HostSlot, role: string, demand: Demand): void {
  slot.used.cpu -= demand.cpu
  slot.used.memory -= demand.memory
  slot.used.disk -= demand.disk
  slot.nodes -= 1
  slot.perRole.set(role, slot.perRole.get(role)! - 1)
}
