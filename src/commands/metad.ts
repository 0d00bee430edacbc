// `shoal metad`: serve every node its own view of the registry over HTTP (GET /self by caller address, long-poll).
import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {openStoreFromFlags, storeFlags} from '../cli/store-flags.js'
import {EXIT, ShoalError} from '../errors.js'
import {parseDuration} from '../util/units.js'

export const metadServeFlags = {
  'trusted-proxy': Flags.string({description: 'Address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable); default none', multiple: true, default: []}),
  quiet: Flags.string({description: 'Answer long-polls once the registry has been quiet this long after a change', default: '5ms'}),
  'max-delay': Flags.string({description: 'Answer long-polls at most this long after the first change of a burst, quiet or not', default: '100ms'}),
  verbose: Flags.boolean({description: 'Log one line per request to stderr', default: false}),
  ...storeFlags,
}

export default class MetadCommand extends BaseCommand {
  static override summary = 'Serve the metadata service: each node asks GET /self and gets its own view of the registry'
  static override description = `Reads the registry (never writes it): one read, then one watch feeds every client. A node is known by the address its request comes from (X-Forwarded-For only from --trusted-proxy addresses); where one address holds several nodes, the request names its node (?node=ID) and sends the token shoal placed in the node's home (.shoal/token) as X-Shoal-Token.
GET /self and its subpaths answer the node's view (what its templates see) in JSON, text or YAML by Accept, with the registry revision it was read at in X-Shoal-Revision. ?wait=true&prev_version=N waits until the view differs from revision N (or &timeout=, default 60 s: 304). /health and /metrics (Prometheus) report the service. When the registry is unreachable, answers are the last state read, marked X-Shoal-Stale: true.
Runs until interrupted (SIGINT or SIGTERM).`

  static override examples = [
    '<%= config.bin %> metad',
    '<%= config.bin %> metad --listen 0.0.0.0:9611 --etcd http://10.0.0.5:2379 --trusted-proxy 10.0.0.0/24',
  ]

  static override flags = {
    listen: Flags.string({description: 'Address and port to listen on', default: '127.0.0.1:9611'}),
    ...metadServeFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(MetadCommand)
    await serveMetad(flags, parseListen(flags.listen))
  }
}

/** Run metad over the registry the flags name, on `listen`, until SIGINT or SIGTERM; `announce` adds a line for people. */
export async function serveMetad(
  flags: {'trusted-proxy': string[]; quiet: string; 'max-delay': string; verbose: boolean} & Parameters<typeof openStoreFromFlags>[0],
  listen: {host: string; port: number},
  announce?: (url: string) => string,
): Promise<void> {
  const quietMs = durationFlag('--quiet', flags.quiet)
  const maxDelayMs = durationFlag('--max-delay', flags['max-delay'])
  const {Metad} = await import('../metad/server.js')
  const store = await openStoreFromFlags(flags)
  const log = (line: string): void => void process.stderr.write(`${line}\n`)
  let metad: InstanceType<typeof Metad> | undefined
  try {
    metad = new Metad({store, host: listen.host, port: listen.port, trustedProxies: flags['trusted-proxy'], quietMs, maxDelayMs, verbose: flags.verbose, log})
    const address = await metad.start()
    const where = `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
    log(`shoal metad listening on ${where} over ${store.description}`)
    if (announce) log(announce(`http://${where}`))
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve())
      process.once('SIGTERM', () => resolve())
    })
  } finally {
    await metad?.close()
    await store.close()
  }
}

export function parseListen(value: string): {host: string; port: number} {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value)
  const port = m ? Number(m[3]) : NaN
  if (!m || !(port >= 0 && port <= 65535)) throw new ShoalError(`--listen ${value}: expected ADDRESS:PORT, e.g. 127.0.0.1:9611 or [::1]:9611`, 'invalid-flag', EXIT.usage)
  return {host: m[1] ?? m[2]!, port}
}

function durationFlag(flag: string, value: string): number {
  const ms = parseDuration(value)
  if (ms === undefined) throw new ShoalError(`${flag} ${value}: expected a duration such as 20ms or 1s`, 'invalid-flag', EXIT.usage)
  return ms
}
