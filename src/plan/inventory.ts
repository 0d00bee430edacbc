// The planner's view of the host inventory: the hosts.yaml shape plus what other clusters already use on each host.
import type {HostSpec} from '../inventory/types.js'

/** One inventory host; `capacity` fields left out mean "unlimited" for that resource. */
export type InventoryHost = HostSpec

/** The hosts the planner may place nodes on (a `HostsFile` satisfies this). */
export interface Inventory {
  hosts: InventoryHost[]
}

/** Resources a host already gives to nodes of other clusters (cpu in cores, memory and disk in bytes). */
export interface HostUsage {
  cpu: number
  memory: number
  disk: number
}
