// `shoal sandbox ls`: the sandbox hosts, their addresses and whether each sshd is running.
import {BaseCommand} from '../../cli/base.js'
import {sandboxDirFlag} from '../../cli/sandbox-flags.js'

export default class SandboxLs extends BaseCommand {
  static override summary = 'List the sandbox hosts'
  static override description = 'Prints each sandbox host with its address, SSH port, sshd pid, whether it is running and whether it is cut off (`shoal sandbox partition`), the gateway address the hosts reach the machine at, and the inventory file to pass to other commands.'

  static override examples = ['<%= config.bin %> sandbox ls', '<%= config.bin %> sandbox ls --json']

  static override flags = {
    dir: sandboxDirFlag,
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(SandboxLs)
    const {sandboxStatus} = await import('../../sandbox/sandbox.js')
    const status = sandboxStatus({dir: flags.dir})
    if (this.jsonEnabled()) return status ?? {dir: flags.dir, hosts: []}
    if (!status) {
      this.log(`no sandbox in ${flags.dir}`)
      return undefined
    }
    for (const host of status.hosts) {
      this.log(`${host.name}  ${host.address}:${host.port}  pid ${host.pid}  ${host.running ? 'running' : 'STOPPED'}${host.partitioned ? '  PARTITIONED' : ''}`)
    }
    if (status.network) this.log(`gateway (the machine, as the hosts see it): ${status.network.gateway}`)
    this.log(`inventory: ${status.inventory}`)
    return undefined
  }
}
