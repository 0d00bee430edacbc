// `shoal sandbox partition HOST`: cut a sandbox host off the network (or heal it), as a failed link would.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {sandboxDirFlag} from '../../cli/sandbox-flags.js'

export default class SandboxPartition extends BaseCommand {
  static override summary = 'Cut a sandbox host off the network, or heal it'
  static override description =
    'Takes the host\'s link to the sandbox bridge down: nothing reaches it and it reaches nothing (other hosts, the machine), while its processes keep running — ' +
    'the network fault real clusters see. `--heal` brings the link back; connections that were not timed out carry on. `shoal sandbox ls` shows which hosts are cut off.'

  static override examples = ['<%= config.bin %> sandbox partition sandbox-2', '<%= config.bin %> sandbox partition sandbox-2 --heal']

  static override args = {
    host: Args.string({description: 'Host name (sandbox-N) or address', required: true}),
  }

  static override flags = {
    heal: Flags.boolean({description: 'Bring the host back onto the network'}),
    dir: sandboxDirFlag,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(SandboxPartition)
    const {sandboxPartition} = await import('../../sandbox/sandbox.js')
    const host = sandboxPartition({dir: flags.dir, host: args.host, partitioned: !flags.heal})
    if (this.jsonEnabled()) return {name: host.name, address: host.address, partitioned: host.partitioned === true}
    this.log(`${host.name} (${host.address}) ${flags.heal ? 'is back on the network' : 'is cut off the network'}`)
    return undefined
  }
}
