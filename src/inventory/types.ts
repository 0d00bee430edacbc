// The host inventory as TypeScript types: the shape `schemas/hosts.schema.json` accepts (the schema is the contract).
import type {SizeString} from '../spec/types.js'

export interface HostSsh {
  /** Default 22. */
  port?: number
  /** Default `root`. */
  user?: string
  /** Path to the private key (relative to the inventory file); default: the SSH agent. */
  key?: string
  /** Path to the known_hosts file; default `~/.ssh/known_hosts`. */
  known_hosts?: string
}

export interface HostCapacity {
  cpu?: number
  memory?: SizeString
  disk?: SizeString
}

export interface HostSpec {
  /** A DNS label, unique in the inventory. */
  name: string
  /** IPv4, IPv6 or DNS name, unique in the inventory. */
  address: string
  ssh?: HostSsh
  /** Resources offered to nodes; absent = unlimited. */
  capacity?: HostCapacity
  labels?: Record<string, string>
}

export interface HostsFile {
  apiVersion: 'shoal/v1'
  kind: 'Hosts'
  hosts: HostSpec[]
}

export const HOST_DEFAULTS = {sshPort: 22, sshUser: 'root'} as const
