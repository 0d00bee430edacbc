// Semantic checks of a schema-valid host inventory: unique names and addresses, IP-looking addresses that are not IPs.
import {isIP} from 'node:net'
import type {HostsFile} from '../inventory/types.js'
import {positionAt, type LoadedYaml} from '../spec/load.js'
import {parseSize} from '../util/units.js'
import {quoted} from '../util/text.js'
import type {Problem} from './problem.js'
import {ruleSeverity, type RuleId} from './rules.js'

export function checkHosts(inventory: HostsFile, loaded: LoadedYaml): Problem[] {
  const problems: Problem[] = []
  const report = (rule: RuleId, path: Array<string | number>, message: string): void => {
    problems.push({file: loaded.file, ...positionAt(loaded, path), rule, severity: ruleSeverity(rule), message})
  }
  const names = new Map<string, number>()
  const addresses = new Map<string, number>()
  for (const [index, host] of inventory.hosts.entries()) {
    const firstName = names.get(host.name)
    if (firstName === undefined) names.set(host.name, index)
    else report('host-duplicate-name', ['hosts', index, 'name'], `host name "${host.name}" is already used by host #${firstName + 1}`)

    for (const field of ['memory', 'disk'] as const) {
      const text = host.capacity?.[field]
      if (text !== undefined && parseSize(text) === undefined) {
        report('unit-invalid', ['hosts', index, 'capacity', field], `host "${host.name}": capacity.${field} ${quoted(text)} is too large to be a size (at most 8 PiB)`)
      }
    }
    const address = host.address.toLowerCase()
    const looksNumeric = /^[0-9.]+$/.test(address) || address.includes(':')
    if (looksNumeric && isIP(address) === 0) {
      report('host-address-invalid', ['hosts', index, 'address'], `host "${host.name}": "${host.address}" is not a valid IPv4 or IPv6 address`)
      continue
    }
    const firstAddress = addresses.get(address)
    if (firstAddress === undefined) addresses.set(address, index)
    else report('host-duplicate-address', ['hosts', index, 'address'], `host "${host.name}": address ${host.address} is already used by host #${firstAddress + 1}`)
  }
  return problems
}
