// `shoal sandbox up`: start N local test hosts (own network namespace and address, own sshd, own /srv) and write their inventory.
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {sandboxDirFlag} from '../../cli/sandbox-flags.js'

export default class SandboxUp extends BaseCommand {
  static override summary = 'Start local sandbox hosts to run specs on'
  static override description =
    'Starts HOSTS hosts, sandbox-1 to sandbox-N, each an sshd in a network namespace of its own (address 198.18.K.N on a bridge the sandbox makes, K one subnet per sandbox) ' +
    'and a private mount namespace with its own /srv: connections between hosts come from the sender\'s own address, as between machines. The machine reaches every host, and the hosts reach the machine at the gateway address (198.18.K.254). ' +
    'Writes a user key, a known_hosts file and hosts.yaml (an inventory for --hosts) into DIR. Running hosts are kept; a larger HOSTS adds hosts, a smaller one stops the extra ones. ' +
    'The servers keep running after the command ends, until `shoal sandbox down`. Needs root and Debian\'s openssh-server.'

  static override examples = ['<%= config.bin %> sandbox up --hosts 3', '<%= config.bin %> sandbox up --hosts 5 --port 2222 --dir /tmp/sandbox']

  static override flags = {
    hosts: Flags.integer({description: 'Number of hosts (1-253)', required: true}),
    port: Flags.integer({description: 'SSH port on every host', default: 22}),
    dir: sandboxDirFlag,
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(SandboxUp)
    const {sandboxUp} = await import('../../sandbox/sandbox.js')
    const state = await sandboxUp({dir: flags.dir, hosts: flags.hosts, port: flags.port})
    if (this.jsonEnabled()) return state
    for (const host of state.hosts) this.log(`${host.name}  ${host.address}:${host.port}  pid ${host.pid}`)
    if (state.network) this.log(`gateway (the machine, as the hosts see it): ${state.network.gateway}`)
    this.log(`inventory: ${state.inventory}`)
    this.log(`ssh: ssh -i ${state.key} -o UserKnownHostsFile=${state.knownHosts} -p ${state.port} root@${state.hosts[0]?.address ?? ''}`)
    return undefined
  }
}
