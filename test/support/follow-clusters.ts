// Specs for live scaling tests on sandbox hosts: a service cluster whose every script and reload appends one line to a
// log shared by all hosts (what ran, where, and what the node saw: SHOAL_JOINING/LEAVING and its rendered files) and
// copies the membership file it was given; and consumers that link to it (one whose file lists the service's members,
// one whose file does not depend on them). The log lives outside /srv, so lines from every host land in one file in the
// order they were written. Scripts wait while `<out>/hold-<service>` exists, so a test can catch an operation mid-way.
import {mkdirSync, mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

export interface FollowFixture {
  dir: string
  /** Where scripts write: `<cluster>.log`, `<node-id>.<service>.json` (the membership file a script saw), hold files. */
  out: string
  svc: string
  consumer: string
  bystander: string
  /** The service spec with other values, written beside the original (same templates). */
  variant(options: {port?: number; count?: number}): string
  dispose(): void
}

const yamlString = (text: string): string => `'${text.replace(/'/g, "''")}'`

/** One log line per script or reload run, then wait while its hold file exists. */
function script(what: string): string {
  return yamlString(
    `echo "${what} $SHOAL_NODE_ID joining=[$SHOAL_JOINING] leaving=[$SHOAL_LEAVING] members=[$(cat conf/members 2>/dev/null)] backends=[$(cat conf/backends 2>/dev/null)]" >> "$SHOAL_ENV_OUT/$SHOAL_CLUSTER.log"` +
      ` && cp "$SHOAL_MEMBERSHIP" "$SHOAL_ENV_OUT/$SHOAL_NODE_ID.${what}.json"` +
      ` && while [ -f "$SHOAL_ENV_OUT/hold-${what}" ]; do sleep 0.1; done`,
  )
}

const ROLE_SHAPE = `    image: debian-12
    cpu: 0.25
    memory: 64Mi
    disk: 100Mi
    placement: {max_per_host: 4}`

function svcSpec(name: string, out: string, port: number, count: number): string {
  return `apiVersion: shoal/v1
kind: Cluster
name: ${name}
env:
  out: {type: string, description: Shared output directory of the test., default: ${yamlString(out)}}
  port: {type: integer, description: Read by the bootstrap node's file and by consumers., default: ${port}}
roles:
  node:
${ROLE_SHAPE}
    count: ${count}
    scale: {min: 1, max: 5}
    files:
      - {template: members.liquid, dest: conf/members, reload: ${script('reload-members')}}
      - {template: backends.liquid, dest: conf/backends, reload: ${script('reload-members')}}
      - {template: boot.liquid, dest: conf/boot, reload: ${script('reload-boot')}}
    services:
      init: {cmd: ${script('init')}}
      start: {cmd: ${script('start')}}
      stop: {cmd: ${script('stop')}}
      destroy: {cmd: ${script('destroy')}}
      scale_out: {cmd: ${script('scale_out')}, on: existing}
      scale_in: {cmd: ${script('scale_in')}, on: existing}
update: {canaries: 1, max_in_flight: 100%}
`
}

function consumerSpec(name: string, svc: string, out: string, template: string): string {
  return `apiVersion: shoal/v1
kind: Cluster
name: ${name}
links: {dep: ${svc}}
env:
  out: {type: string, description: Shared output directory of the test., default: ${yamlString(out)}}
roles:
  c:
${ROLE_SHAPE}
    count: 2
    files:
      - {template: ${template}, dest: conf/deps, reload: ${script('reload')}}
    services:
      init: {cmd: ${script('init')}}
      start: {cmd: ${script('start')}}
      stop: {cmd: ${script('stop')}}
      destroy: {cmd: ${script('destroy')}}
`
}

export function writeFollowClusters(prefix: string): FollowFixture {
  const dir = mkdtempSync(path.join(tmpdir(), `shoal-follow-${prefix}-`))
  const out = path.join(dir, 'out')
  mkdirSync(out)
  const svc = `svc-${prefix}`
  const files: Record<string, string> = {
    'members.liquid': '{% for m in hosts.node %}{{ m.sid }} {% endfor %}\n',
    // Like HAProxy: leaving members are dropped before they stop, joining ones are shown while they join.
    'backends.liquid': '{% for m in hosts.node %}{% unless deleting_hosts.node contains m %}{{ m.sid }} {% endunless %}{% endfor %}| joining {% for m in adding_hosts.node %}{{ m.sid }} {% endfor %}\n',
    'boot.liquid': '{% if self.bootstrap %}port={{ env.port }}{% endif %}\n',
    'deps.liquid': '{% for m in links.dep.hosts.node %}{{ m.ip }}:{{ links.dep.env.port }}/{{ m.sid }} {% endfor %}\n',
    'name.liquid': 'dep={{ links.dep.cluster }}\n',
    'svc.yaml': svcSpec(svc, out, 7000, 3),
    'consumer.yaml': consumerSpec(`consumer-${prefix}`, svc, out, 'deps.liquid'),
    'bystander.yaml': consumerSpec(`bystander-${prefix}`, svc, out, 'name.liquid'),
  }
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text)
  let variants = 0
  return {
    dir,
    out,
    svc,
    consumer: `consumer-${prefix}`,
    bystander: `bystander-${prefix}`,
    variant({port = 7000, count = 3}) {
      const file = path.join(dir, `svc-${++variants}.yaml`)
      writeFileSync(file, svcSpec(svc, out, port, count))
      return file
    },
    dispose: () => rmSync(dir, {recursive: true, force: true}),
  }
}

/** One log line: what ran on which node, and what that node saw. */
export interface LogLine {
  what: string
  node: string
  joining: string
  leaving: string
  members: string
  backends: string
}

const LINE = /^(\S+) (\S+) joining=\[(.*)\] leaving=\[(.*)\] members=\[(.*)\] backends=\[(.*)\]$/

export function readLog(out: string, cluster: string): LogLine[] {
  const file = path.join(out, `${cluster}.log`)
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((text) => {
    const m = LINE.exec(text)
    if (!m) throw new Error(`unexpected log line: ${text}`)
    return {what: m[1]!, node: m[2]!, joining: m[3]!, leaving: m[4]!, members: m[5]!.trim(), backends: m[6]!.trim()}
  })
}

/** The phases in the order they ran: consecutive lines of one kind collapse to `<what> <sorted nodes>`. */
export function phases(lines: readonly LogLine[]): string[] {
  const out: Array<{what: string; nodes: string[]}> = []
  for (const line of lines) {
    const last = out.at(-1)
    if (last?.what === line.what) last.nodes.push(line.node)
    else out.push({what: line.what, nodes: [line.node]})
  }
  return out.map((p) => `${p.what} ${p.nodes.sort().join(',')}`)
}

export type MembershipSeen = Record<'before' | 'after' | 'joining' | 'leaving', Record<string, Array<{node_id: string}>>>

/** The membership file a script was given, as role -> node ids. */
export function membershipSeen(out: string, node: string, what: string): Record<string, Record<string, string[]>> {
  const seen = JSON.parse(readFileSync(path.join(out, `${node}.${what}.json`), 'utf8')) as MembershipSeen
  return Object.fromEntries(Object.entries(seen).map(([k, roles]) => [k, Object.fromEntries(Object.entries(roles).map(([role, nodes]) => [role, nodes.map((n) => n.node_id)]))]))
}

export function hold(out: string, what: string, on: boolean): void {
  const file = path.join(out, `hold-${what}`)
  if (on) writeFileSync(file, '')
  else rmSync(file, {force: true})
}
