// From an inventory host to a TransportHost: defaults applied, paths resolved against the inventory file's folder.
import {homedir} from 'node:os'
import path from 'node:path'
import {HOST_DEFAULTS, type HostSpec} from '../inventory/types.js'
import type {TransportHost} from './transport.js'

export function transportHost(host: HostSpec, inventoryDir: string): TransportHost {
  const resolve = (file: string): string => path.resolve(inventoryDir, file.startsWith('~/') ? path.join(homedir(), file.slice(2)) : file)
  return {
    name: host.name,
    address: host.address,
    port: host.ssh?.port ?? HOST_DEFAULTS.sshPort,
    user: host.ssh?.user ?? HOST_DEFAULTS.sshUser,
    ...(host.ssh?.key !== undefined ? {keyFile: resolve(host.ssh.key)} : {}),
    knownHosts: resolve(host.ssh?.known_hosts ?? '~/.ssh/known_hosts'),
  }
}
