// `shoal sandbox metad`: metad where the sandbox hosts reach it (the machine's address on their bridge).
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {sandboxDirFlag} from '../../cli/sandbox-flags.js'
import {EXIT, ShoalError} from '../../errors.js'
import {metadServeFlags, serveMetad} from '../metad.js'

export default class SandboxMetad extends BaseCommand {
  static override summary = 'Serve metad to the sandbox hosts, on the machine\'s address on their bridge'
  static override description = `Runs \`shoal metad\` listening on the sandbox's gateway (the machine as the hosts see it, e.g. 198.18.0.254) and prints the URL to give \`shoal create --metad\` for a cluster with agents. Same registry flags as every command; runs until interrupted (SIGINT or SIGTERM).`

  static override examples = [
    '<%= config.bin %> sandbox metad &',
    '<%= config.bin %> sandbox metad --port 9612 --etcd http://127.0.0.1:2379',
  ]

  static override flags = {
    dir: sandboxDirFlag,
    port: Flags.integer({description: 'Port to listen on', default: 9611, min: 0, max: 65535}),
    ...metadServeFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(SandboxMetad)
    const {sandboxStatus} = await import('../../sandbox/sandbox.js')
    const sandbox = sandboxStatus({dir: flags.dir})
    const gateway = sandbox?.network?.gateway
    const inventory = sandbox?.inventory
    if (gateway === undefined) throw new ShoalError(`no sandbox network in ${flags.dir}: start the sandbox first (shoal sandbox up --dir ${flags.dir})`, 'sandbox-missing', EXIT.failure)
    await serveMetad(flags, {host: gateway, port: flags.port}, (url) => `sandbox hosts reach it at ${url}: shoal create SPEC --hosts ${inventory} --metad ${url}`)
  }
}
