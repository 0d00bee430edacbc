// Writes a small ZooKeeper-like cluster spec (with its templates) and a host inventory into a temp dir, for CLI tests:
// every node's `members.cfg` lists all members by sid, `myid` holds its own sid, an optional secret env value is used.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

export interface TmpClusterOptions {
  name: string
  /** Nodes of role `zk` at create. */
  count: number
  /** Scale bounds of the role; default 1..40. */
  min?: number
  max?: number
  /** Server id bound; default 255. */
  upperBound?: number
  /** Hosts in the inventory (127.0.2.1, ...); default 30. */
  hosts?: number
  /** Value of the secret env parameter `password` (used in members.cfg); none when undefined. */
  secret?: string
}

export interface TmpCluster {
  name: string
  dir: string
  spec: string
  hosts: string
  dispose(): void
}

export const ROLE = 'zk'

export function writeTmpCluster(options: TmpClusterOptions): TmpCluster {
  const dir = mkdtempSync(path.join(tmpdir(), `shoal-${options.name}-`))
  mkdirSync(path.join(dir, 'templates'))
  const secretParam = options.secret === undefined
    ? ''
    : `  password:\n    type: string\n    description: Client password (secret).\n    default: ${JSON.stringify(options.secret)}\n    secret: true\n`
  writeFileSync(
    path.join(dir, 'cluster.yaml'),
    `apiVersion: shoal/v1
kind: Cluster
name: ${options.name}
env:
  client_port:
    type: integer
    description: Client port.
    default: 2181
${secretParam}roles:
  ${ROLE}:
    image: debian-12
    cpu: 1
    memory: 256Mi
    disk: 1Gi
    count: ${options.count}
    scale: {min: ${options.min ?? 1}, max: ${options.max ?? 40}}
    server_id: {start: 1, upper_bound: ${options.upperBound ?? 255}}
    files:
      - template: templates/members.cfg.liquid
        dest: conf/members.cfg
      - template: templates/myid.liquid
        dest: data/myid
`,
  )
  const members = `# member {{ self.sid }} of {{ cluster.name }}
clientPort={{ env.client_port }}
${options.secret === undefined ? '' : 'password={{ env.password }}\n'}{% for m in hosts.${ROLE} -%}
server.{{ m.sid }}={{ m.ip }}:2888:3888
{% endfor -%}
`
  writeFileSync(path.join(dir, 'templates', 'members.cfg.liquid'), members)
  writeFileSync(path.join(dir, 'templates', 'myid.liquid'), '{{ self.sid }}\n')
  const hostLines = Array.from({length: options.hosts ?? 30}, (_, i) =>
    `  - {name: h${i + 1}, address: 127.0.${2 + Math.floor(i / 250)}.${(i % 250) + 1}, capacity: {cpu: 8, memory: 16Gi, disk: 100Gi}}`,
  )
  writeFileSync(path.join(dir, 'hosts.yaml'), `apiVersion: shoal/v1\nkind: Hosts\nhosts:\n${hostLines.join('\n')}\n`)
  return {
    name: options.name,
    dir,
    spec: path.join(dir, 'cluster.yaml'),
    hosts: path.join(dir, 'hosts.yaml'),
    dispose: () => rmSync(dir, {recursive: true, force: true}),
  }
}

/** The `server.<sid>=<ip>` lines of a rendered members.cfg, as `sid=ip` strings. */
export function memberLines(content: string): string[] {
  return [...content.matchAll(/^server\.(\d+)=([\d.]+):/gm)].map(m => `${m[1]}=${m[2]}`)
}
