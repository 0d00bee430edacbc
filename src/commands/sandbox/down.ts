// `shoal sandbox down`: stop every sandbox host and everything running on it, then remove the sandbox directory.
import {BaseCommand} from '../../cli/base.js'
import {sandboxDirFlag} from '../../cli/sandbox-flags.js'

export default class SandboxDown extends BaseCommand {
  static override summary = 'Stop the sandbox hosts and remove the sandbox directory'
  static override description = 'Stops each host\'s sshd and every process running inside that host (SIGTERM, then SIGKILL after 5 s), then removes DIR, including each host\'s /srv. Does nothing when DIR holds no sandbox.'

  static override examples = ['<%= config.bin %> sandbox down', '<%= config.bin %> sandbox down --dir /tmp/sandbox']

  static override flags = {
    dir: sandboxDirFlag,
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(SandboxDown)
    const {sandboxDown} = await import('../../sandbox/sandbox.js')
    const removed = await sandboxDown({dir: flags.dir})
    if (this.jsonEnabled()) return {dir: flags.dir, removed}
    this.log(removed ? `sandbox in ${flags.dir} stopped and removed` : `no sandbox in ${flags.dir}`)
    return undefined
  }
}
