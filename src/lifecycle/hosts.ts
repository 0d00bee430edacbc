// Reaching a node's host: the inventory (given with --hosts, or the one recorded with the cluster) as TransportHosts.
import {homedir} from 'node:os'
import path from 'node:path'
import type {HostSpec} from '../inventory/types.js'
import type {HostView} from '../render/view.js'
import {transportHost} from '../transport/host.js'
import type {TransportHost} from '../transport/transport.js'
import {EXIT, ShoalError} from '../errors.js'

/**
 * Inventory hosts with their key and known_hosts paths made absolute, so the recorded copy works from any directory.
 * An unset known_hosts stays unset (it means the user's own `~/.ssh/known_hosts` wherever shoal runs).
 */
export function absoluteHosts(hosts: readonly HostSpec[], inventoryDir: string): HostSpec[] {
  const resolve = (file: string): string => path.resolve(inventoryDir, file.startsWith('~/') ? path.join(homedir(), file.slice(2)) : file)
  return hosts.map((h) => {
    if (!h.ssh) return h
    const ssh = {...h.ssh}
    if (ssh.key !== undefined) ssh.key = resolve(ssh.key)
    if (ssh.known_hosts !== undefined) ssh.known_hosts = resolve(ssh.known_hosts)
    return {...h, ssh}
  })
}

/** A lookup from a node to the TransportHost of its inventory host. */
export type HostLookup = (node: HostView) => TransportHost

export function hostLookup(hosts: readonly HostSpec[], cluster: string): HostLookup {
  const byName = new Map(hosts.map((h) => [h.name, transportHost(h, '/')]))
  return (node) => {
    const host = byName.get(node.host)
    if (!host) {
      throw new ShoalError(
        `node ${node.node_id} is placed on host ${node.host}, which the inventory ${hosts.length ? 'in use' : 'recorded with the cluster'} does not list; pass --hosts FILE with that host (cluster ${cluster})`,
        'host-unknown',
        EXIT.failure,
      )
    }
    return host
  }
}
