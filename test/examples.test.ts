// The example specs in specs/: complete lifecycles, and templates that render the right config for every node
// during create, scale out and scale in.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, describe, expect, it} from 'vitest'
import type {LinkView, NodeView} from '../src/render/view.js'
import type {ClusterSpec} from '../src/spec/types.js'
import {linkViewOf, loadSpec, renderNodeFiles, sampleCluster, type SampleOptions} from './support/sample-view.js'

const SPECS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../specs')
const EXAMPLES = ['zookeeper', 'haproxy', 'redis-cluster', 'kafka', 'mariadb', 'mariadb-proxy'] as const
const specFile = (name: string): string => join(SPECS_DIR, `${name}.yaml`)

/** Values of parameters an example requires (secrets have no default). */
const REQUIRED: Record<string, SampleOptions['env']> = {
  mariadb: {app_password: 'sample-app-pw', repl_password: 'sample-repl-pw'},
  zookeeper: {super_password: 'sample-super-password'},
}
/** Examples that link to another: link name and the linked example (rendered as a sample of its own, at create). */
const LINKED: Record<string, [string, string]> = {kafka: ['zk', 'zookeeper'], 'mariadb-proxy': ['db', 'mariadb']}

function linkedView(name: string, options: SampleOptions = {}): LinkView {
  return linkViewOf(sampleCluster(loadSpec(specFile(name)), {...options, env: REQUIRED[name]}))
}

/** Every node's rendered files, by node id then destination. */
function renderAll(name: string, options: SampleOptions = {}): Map<string, {view: NodeView; files: Map<string, string>}> {
  const spec = loadSpec(specFile(name))
  const linked = LINKED[name]
  const links = linked ? {[linked[0]]: linkedView(linked[1])} : undefined
  const sample = sampleCluster(spec, {links, env: REQUIRED[name], ...options, firstOctet: options.firstOctet ?? (linked ? 101 : 1)})
  const out = new Map<string, {view: NodeView; files: Map<string, string>}>()
  for (const [id, view] of sample.views) out.set(id, {view, files: renderNodeFiles(specFile(name), spec, view)})
  return out
}

function fileOf(rendered: ReturnType<typeof renderAll>, nodeId: string, dest: string): string {
  const text = rendered.get(nodeId)?.files.get(dest)
  if (text === undefined) throw new Error(`no ${dest} rendered for ${nodeId}`)
  return text
}

const linesStarting = (text: string, prefix: string): string[] => text.split('\n').filter((l) => l.startsWith(prefix))
const property = (text: string, key: string): string | undefined => linesStarting(text, `${key}=`)[0]?.slice(key.length + 1)

describe.each(EXAMPLES)('example spec %s', (name) => {
  const spec: ClusterSpec = loadSpec(specFile(name))

  it('points editors at the published schema on its first line', () => {
    expect(readFileSync(specFile(name), 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../schemas/cluster.schema.json')
  })

  it('gives every role a full lifecycle, a health check and existing templates with string modes', () => {
    expect(spec.apiVersion).toBe('shoal/v1')
    expect(spec.kind).toBe('Cluster')
    for (const [role, roleSpec] of Object.entries(spec.roles)) {
      for (const service of ['init', 'start', 'stop', 'destroy'] as const) {
        expect(roleSpec.services?.[service]?.cmd, `${role}.${service}`).toMatch(/\S/)
      }
      expect(roleSpec.health_check?.cmd, `${role}.health_check`).toMatch(/\S/)
      for (const file of roleSpec.files ?? []) {
        expect(existsSync(resolve(SPECS_DIR, file.template)), file.template).toBe(true)
        expect(file.mode, file.dest).toMatch(/^0[0-7]{3}$/)
        if (file.dest.startsWith('bin/') && file.dest !== 'bin/common.sh') expect(file.mode, file.dest).toBe('0755')
      }
    }
  })

  it('names only scripts it ships in its commands', () => {
    for (const roleSpec of Object.values(spec.roles)) {
      const shipped = new Set((roleSpec.files ?? []).map((f) => f.dest))
      const commands = [...Object.values(roleSpec.services ?? {}), ...Object.values(roleSpec.actions ?? {}), roleSpec.health_check!]
        .map((s) => s.cmd)
        .concat((roleSpec.files ?? []).flatMap((f) => (f.reload ? [f.reload] : [])))
      for (const cmd of commands) {
        for (const script of cmd.match(/bin\/[\w.-]+/g) ?? []) expect(shipped.has(script), `${cmd} runs ${script}`).toBe(true)
      }
    }
  })

  const phases: Array<[string, SampleOptions]> = [
    ['create', {}],
    ['scale out', {adding: Object.fromEntries(Object.keys(spec.roles).map((r) => [r, 2]))}],
    ['scale in', {deleting: Object.fromEntries(Object.keys(spec.roles).map((r) => [r, [spec.roles[r]!.server_id?.start ?? 1]]))}],
  ]
  describe.each(phases)('during %s', (_phase, options) => {
    const rendered = renderAll(name, options)
    const scratch = mkdtempSync(join(tmpdir(), 'shoal-examples-'))
    afterAll(() => rmSync(scratch, {recursive: true, force: true}))

    it('renders every template for every node', () => {
      const roles = spec.roles
      for (const {view, files} of rendered.values()) {
        expect([...files.keys()]).toEqual((roles[view.self.role]!.files ?? []).map((f) => f.dest))
        for (const text of files.values()) expect(text).not.toMatch(/\{\{|\{%/)
      }
    })

    it('renders scripts that the shell parses, with set -eu', () => {
      for (const [id, {files}] of rendered) {
        for (const [dest, text] of files) {
          const shell = /^#!\/bin\/(sh|bash)\n/.exec(text)?.[1]
          if (!shell) continue
          expect(text, `${id} ${dest}`).toMatch(/^set -eu$/m)
          const path = join(scratch, `${id}-${dest.replace(/\//g, '_')}`)
          writeFileSync(path, text)
          expect(() => execFileSync(shell, ['-n', path], {stdio: 'pipe'}), `${id} ${dest}`).not.toThrow()
        }
      }
    })
  })
})

describe('zookeeper templates', () => {
  const serverLines = (ips: string[]): string[] => ips.map((ip) => `server.${Number(ip.split('.')[3])}=${ip}:2888:3888:participant;${ip}:2181`)
  const initialMembers = (rendered: ReturnType<typeof renderAll>, id: string): string[] => linesStarting(fileOf(rendered, id, 'conf/initial-members.cfg'), 'server.')

  it('keep membership out of zoo.cfg (ZooKeeper owns it, reconfigEnabled) and point each member at its own data', () => {
    const rendered = renderAll('zookeeper')
    expect([...rendered.keys()]).toEqual(['zk-main-zk-1', 'zk-main-zk-2', 'zk-main-zk-3'])
    for (const [id, {view}] of rendered) {
      const cfg = fileOf(rendered, id, 'conf/zoo.cfg')
      expect(linesStarting(cfg, 'server.')).toEqual([])
      expect(linesStarting(cfg, 'dynamicConfigFile')).toEqual([])
      expect(property(cfg, 'reconfigEnabled')).toBe('true')
      expect(property(cfg, 'standaloneEnabled')).toBe('false')
      expect(property(cfg, 'dataDir')).toBe(`/srv/shoal/zk-main/${id}/data`)
      expect(property(cfg, 'admin.enableServer')).toBe('false')
      expect(property(cfg, '4lw.commands.whitelist')).toBe('srvr,mntr,ruok,stat,conf')
      expect(property(cfg, 'tickTime')).toBe('2000')
      expect(fileOf(rendered, id, 'data/myid')).toBe(`${view.self.sid}\n`)
    }
  })

  it('start every member of a new ensemble from all members, each with its own client address', () => {
    const rendered = renderAll('zookeeper')
    for (const id of rendered.keys()) expect(initialMembers(rendered, id)).toEqual(serverLines(['127.0.1.1', '127.0.1.2', '127.0.1.3']))
  })

  it('myid follows server_id.start', () => {
    const spec = loadSpec(specFile('zookeeper'))
    spec.roles.zk!.server_id = {start: 7}
    const view = sampleCluster(spec, {env: REQUIRED.zookeeper}).views.get('zk-main-zk-8')!
    expect(renderNodeFiles(specFile('zookeeper'), spec, view).get('data/myid')).toBe('8\n')
  })

  it('start a joiner from the members it joins plus itself (not the other joiners); existing members keep theirs', () => {
    const rendered = renderAll('zookeeper', {adding: {zk: 2}})
    expect(rendered.size).toBe(5)
    const existing = ['127.0.1.1', '127.0.1.2', '127.0.1.3']
    for (const id of ['zk-main-zk-1', 'zk-main-zk-2', 'zk-main-zk-3']) expect(initialMembers(rendered, id)).toEqual(serverLines(existing))
    expect(initialMembers(rendered, 'zk-main-zk-4')).toEqual(serverLines([...existing, '127.0.1.4']))
    expect(initialMembers(rendered, 'zk-main-zk-5')).toEqual(serverLines([...existing, '127.0.1.5']))
    // zoo.cfg does not move with membership: no member restarts for a scale.
    expect(fileOf(rendered, 'zk-main-zk-1', 'conf/zoo.cfg')).toBe(fileOf(renderAll('zookeeper'), 'zk-main-zk-1', 'conf/zoo.cfg'))
  })

  it('give the scripts every member, leaving ones included while they leave (bin/leave.sh reaches them by address)', () => {
    const leaving = renderAll('zookeeper', {counts: {zk: 4}, deleting: {zk: [4]}})
    expect(fileOf(leaving, 'zk-main-zk-1', 'bin/common.sh')).toContain('MEMBERS="zk-main-zk-1=127.0.1.1 zk-main-zk-2=127.0.1.2 zk-main-zk-3=127.0.1.3 zk-main-zk-4=127.0.1.4 "')
    const after = renderAll('zookeeper', {counts: {zk: 3}})
    expect(fileOf(after, 'zk-main-zk-1', 'bin/common.sh')).toContain('MEMBERS="zk-main-zk-1=127.0.1.1 zk-main-zk-2=127.0.1.2 zk-main-zk-3=127.0.1.3 "')
  })

  it('adds a joiner as a voter with its own server line and keeps the super password in a 0600 file only', () => {
    const rendered = renderAll('zookeeper', {adding: {zk: 1}})
    expect(fileOf(rendered, 'zk-main-zk-4', 'bin/join.sh')).toContain('line="server.4=127.0.1.4:2888:3888:participant;127.0.1.4:2181"')
    expect(fileOf(rendered, 'zk-main-zk-4', 'conf/secrets.sh')).toContain("SUPER_PASSWORD='sample-super-password'")
    const spec = loadSpec(specFile('zookeeper'))
    expect(spec.roles.zk!.files!.find((f) => f.dest === 'conf/secrets.sh')?.mode).toBe('0600')
    for (const [dest, text] of rendered.get('zk-main-zk-4')!.files) if (dest !== 'conf/secrets.sh') expect(text, dest).not.toContain('sample-super-password')
  })

  it('starts QuorumPeerMain from the Debian jars with the heap cap, on the config ZooKeeper owns', () => {
    const start = fileOf(renderAll('zookeeper'), 'zk-main-zk-2', 'bin/start.sh')
    expect(start).toContain('java -Xmx256m @"$HOME_DIR/run/jvm.args"')
    expect(start).toContain('-cp "$CONF_DIR:/usr/share/java/zookeeper.jar:/usr/share/java/*"')
    expect(start).toContain('org.apache.zookeeper.server.quorum.QuorumPeerMain "$RUN_CFG"')
    expect(fileOf(renderAll('zookeeper'), 'zk-main-zk-2', 'bin/common.sh')).toMatch(/^HOME_DIR=\/srv\/shoal\/zk-main\/zk-main-zk-2$/m)
  })

  it('asks this member, on its own address and client port, for four-letter words', () => {
    expect(fileOf(renderAll('zookeeper'), 'zk-main-zk-3', 'bin/zk4lw')).toContain('zk4lw 127.0.1.3 2181 "$word"')
  })
})

describe('haproxy templates', () => {
  const backend = (cfg: string): string[] => linesStarting(cfg, '    server ').map((l) => l.trim())

  it('list exactly the web members in the lb backend and bind the lb address', () => {
    const rendered = renderAll('haproxy')
    const cfg = fileOf(rendered, 'web-lb-lb-1', 'conf/haproxy.cfg')
    expect(backend(cfg)).toEqual(['server web-lb-web-1 127.0.1.1:8080 check', 'server web-lb-web-2 127.0.1.2:8080 check'])
    expect(cfg).toContain('    bind 127.0.1.51:8000\n')
    expect(cfg).toContain('    balance roundrobin\n')
    expect(rendered.get('web-lb-web-1')!.files.has('conf/haproxy.cfg')).toBe(false)
  })

  it('list joining web nodes only once a scale out has finished (they start and pass health first)', () => {
    const during = fileOf(renderAll('haproxy', {adding: {web: 1}}), 'web-lb-lb-1', 'conf/haproxy.cfg')
    expect(backend(during)).toEqual(['server web-lb-web-1 127.0.1.1:8080 check', 'server web-lb-web-2 127.0.1.2:8080 check'])
    const after = fileOf(renderAll('haproxy', {counts: {web: 3}}), 'web-lb-lb-1', 'conf/haproxy.cfg')
    expect(backend(after)).toEqual([
      'server web-lb-web-1 127.0.1.1:8080 check', 'server web-lb-web-2 127.0.1.2:8080 check', 'server web-lb-web-3 127.0.1.3:8080 check',
    ])
  })

  it('list every web node at create, when all of them are joining (they start before the lb)', () => {
    const cfg = fileOf(renderAll('haproxy', {counts: {web: 0, lb: 0}, adding: {web: 2, lb: 1}}), 'web-lb-lb-1', 'conf/haproxy.cfg')
    expect(backend(cfg)).toEqual(['server web-lb-web-1 127.0.1.1:8080 check', 'server web-lb-web-2 127.0.1.2:8080 check'])
  })

  it('drop leaving web nodes from the backend before they stop', () => {
    const cfg = fileOf(renderAll('haproxy', {counts: {web: 3}, deleting: {web: [1]}}), 'web-lb-lb-1', 'conf/haproxy.cfg')
    expect(backend(cfg)).toEqual(['server web-lb-web-2 127.0.1.2:8080 check', 'server web-lb-web-3 127.0.1.3:8080 check'])
  })

  it('serve a page naming the web node', () => {
    const rendered = renderAll('haproxy')
    expect(fileOf(rendered, 'web-lb-web-2', 'www/index.html')).toContain('Served by web-lb-web-2 (sid 2) at 127.0.1.2 in cluster web-lb.')
  })
})

describe('redis-cluster templates', () => {
  const quotedList = (text: string, variable: string): string[] | undefined => {
    const match = new RegExp(`^${variable}="([^"]*)"$`, 'm').exec(text)
    return match ? match[1]!.split(' ').filter(Boolean) : undefined
  }

  it('bind each node to its own address with cluster mode and data under its home', () => {
    const rendered = renderAll('redis-cluster')
    for (const [id, {view}] of rendered) {
      const conf = fileOf(rendered, id, 'conf/redis.conf')
      expect(linesStarting(conf, 'bind ')).toEqual([`bind ${view.self.ip}`])
      expect(linesStarting(conf, 'port ')).toEqual(['port 6379'])
      expect(linesStarting(conf, 'dir ')).toEqual([`dir /srv/shoal/redis-main/${id}/data`])
      expect(linesStarting(conf, 'cluster-enabled ')).toEqual(['cluster-enabled yes'])
      expect(linesStarting(conf, 'cluster-announce-ip ')).toEqual([`cluster-announce-ip ${view.self.ip}`])
    }
  })

  it('let only the highest-sid node create the cluster, from every member', () => {
    const rendered = renderAll('redis-cluster')
    const creators = [...rendered.keys()].filter((id) => fileOf(rendered, id, 'bin/form-cluster.sh').includes('rcli_cluster create'))
    expect(creators).toEqual(['redis-main-redis-3'])
    expect(quotedList(fileOf(rendered, 'redis-main-redis-3', 'bin/form-cluster.sh'), 'MEMBERS')).toEqual(['127.0.1.1', '127.0.1.2', '127.0.1.3'])
  })

  it('never create a cluster while nodes are joining, not even on the highest-sid joiner', () => {
    const rendered = renderAll('redis-cluster', {adding: {redis: 2}})
    for (const id of rendered.keys()) expect(fileOf(rendered, id, 'bin/form-cluster.sh')).not.toContain('rcli_cluster create')
  })

  it('add exactly the joining nodes on scale out, and none otherwise', () => {
    expect(quotedList(fileOf(renderAll('redis-cluster', {adding: {redis: 2}}), 'redis-main-redis-1', 'bin/scale-out.sh'), 'JOINING')).toEqual(['127.0.1.4', '127.0.1.5'])
    expect(quotedList(fileOf(renderAll('redis-cluster'), 'redis-main-redis-1', 'bin/scale-out.sh'), 'JOINING')).toEqual([])
  })

  it('drain the leaving nodes from the lowest-sid remaining node, even when the bootstrap node leaves', () => {
    const rendered = renderAll('redis-cluster', {counts: {redis: 4}, deleting: {redis: [1, 3]}})
    const actors = [...rendered.keys()].filter((id) => quotedList(fileOf(rendered, id, 'bin/scale-in.sh'), 'LEAVING') !== undefined)
    expect(actors).toEqual(['redis-main-redis-2'])
    expect(rendered.get('redis-main-redis-2')!.view.self.bootstrap).toBe(true)
    const script = fileOf(rendered, 'redis-main-redis-2', 'bin/scale-in.sh')
    expect(quotedList(script, 'LEAVING')).toEqual(['127.0.1.1', '127.0.1.3'])
    expect(quotedList(script, 'REMAINING')).toEqual(['127.0.1.2', '127.0.1.4'])
    expect(script).toContain('wait_known "$REMAINING" 2 120')
    expect(fileOf(rendered, 'redis-main-redis-4', 'bin/scale-in.sh')).toContain('echo "scale-in: redis-main-redis-2 moves the slots"')
  })
})

describe('kafka templates', () => {
  it('give each broker its sid as broker.id and a listener on its own address', () => {
    const rendered = renderAll('kafka')
    expect([...rendered.keys()]).toEqual(['kafka-main-broker-1', 'kafka-main-broker-2', 'kafka-main-broker-3'])
    for (const [id, {view}] of rendered) {
      const props = fileOf(rendered, id, 'conf/server.properties')
      expect(property(props, 'broker.id')).toBe(String(view.self.sid))
      expect(property(props, 'listeners')).toBe(`PLAINTEXT://${view.self.ip}:9092`)
      expect(property(props, 'advertised.listeners')).toBe(`PLAINTEXT://${view.self.ip}:9092`)
      expect(property(props, 'log.dirs')).toBe(`/srv/shoal/kafka-main/${id}/data`)
    }
  })

  it('build zookeeper.connect from the linked cluster members, its client port and the chroot', () => {
    const props = fileOf(renderAll('kafka'), 'kafka-main-broker-1', 'conf/server.properties')
    expect(property(props, 'zookeeper.connect')).toBe('127.0.1.1:2181,127.0.1.2:2181,127.0.1.3:2181/kafka')
  })

  it('follow the linked cluster when it grows and when its client port changes', () => {
    const zk = sampleCluster(loadSpec(specFile('zookeeper')), {adding: {zk: 2}, env: {client_port: 2281}})
    const spec = loadSpec(specFile('kafka'))
    const view = sampleCluster(spec, {firstOctet: 101, links: {zk: linkViewOf(zk)}}).views.get('kafka-main-broker-1')!
    const props = renderNodeFiles(specFile('kafka'), spec, view).get('conf/server.properties')!
    expect(property(props, 'zookeeper.connect')).toBe('127.0.1.1:2281,127.0.1.2:2281,127.0.1.3:2281,127.0.1.4:2281,127.0.1.5:2281/kafka')
  })

  it('cap replication factors at the number of brokers', () => {
    const single = fileOf(renderAll('kafka', {counts: {broker: 1}}), 'kafka-main-broker-1', 'conf/server.properties')
    expect(property(single, 'default.replication.factor')).toBe('1')
    expect(property(single, 'offsets.topic.replication.factor')).toBe('1')
    expect(property(single, 'transaction.state.log.min.isr')).toBe('1')
    const three = fileOf(renderAll('kafka'), 'kafka-main-broker-1', 'conf/server.properties')
    expect(property(three, 'default.replication.factor')).toBe('3')
    expect(property(three, 'transaction.state.log.min.isr')).toBe('2')
  })

  it('start the broker from env.kafka_home', () => {
    const rendered = renderAll('kafka', {env: {kafka_home: '/opt/kafka_2.13-3.9.0'}})
    expect(fileOf(rendered, 'kafka-main-broker-2', 'bin/common.sh')).toMatch(/^KAFKA_HOME=\/opt\/kafka_2\.13-3\.9\.0$/m)
  })
})

describe('mariadb templates', () => {
  const rendered = renderAll('mariadb', {counts: {primary: 1, replica: 2}})

  it('give every server a server_id of its own and make replicas read-only, with GTID binary logs on all', () => {
    const ids = [...rendered.keys()].map((id) => [id, property(fileOf(rendered, id, 'conf/my.cnf').replace(/ = /g, '='), 'server_id')])
    expect(ids).toEqual([['db-main-primary-1', '1'], ['db-main-replica-1', '1001'], ['db-main-replica-2', '1002']])
    expect(fileOf(rendered, 'db-main-replica-1', 'conf/my.cnf')).toContain('\nread_only = ON\n')
    expect(fileOf(rendered, 'db-main-primary-1', 'conf/my.cnf')).not.toContain('read_only')
    for (const id of rendered.keys()) expect(fileOf(rendered, id, 'conf/my.cnf')).toMatch(/^gtid_strict_mode = ON$/m)
  })

  it('point replicas at the primary and keep the passwords only in the files of mode 0600', () => {
    expect(fileOf(rendered, 'db-main-replica-2', 'bin/common.sh')).toContain(`PRIMARY_IP=${rendered.get('db-main-primary-1')!.view.self.ip}\n`)
    const spec = loadSpec(specFile('mariadb'))
    for (const [id, {view, files}] of rendered) {
      for (const [dest, text] of files) {
        const mode = spec.roles[view.self.role]!.files!.find((f) => f.dest === dest)!.mode
        if (text.includes('sample-repl-pw') || text.includes('sample-app-pw')) expect(mode, `${id} ${dest}`).toBe('0600')
      }
    }
  })

  it('drain a leaving replica before it stops (pre_scale_in)', () => {
    expect(loadSpec(specFile('mariadb')).roles.replica!.services!.pre_scale_in!.cmd).toBe('bin/drain.sh')
    expect(fileOf(rendered, 'db-main-replica-1', 'bin/drain.sh')).toContain("WHERE USER = '$APP_USER'")
  })
})

describe('mariadb-proxy templates', () => {
  const servers = (cfg: string, backend: string): string[] =>
    linesStarting(cfg.split(`\nbackend ${backend}\n`)[1]!.split('\nbackend ')[0]!, '    server ').map((l) => l.trim().split(' ').slice(1, 3).join(' ') + (l.includes(' backup') ? ' backup' : ''))
  const proxyCfg = (db: SampleOptions): string => {
    const sample = sampleCluster(loadSpec(specFile('mariadb-proxy')), {links: {db: linkedView('mariadb', db)}, firstOctet: 101})
    return renderNodeFiles(specFile('mariadb-proxy'), loadSpec(specFile('mariadb-proxy')), sample.views.get('db-proxy-proxy-1')!).get('conf/haproxy.cfg')!
  }

  it('send writes to the primary and reads to the replicas, the primary standing by for reads', () => {
    const cfg = proxyCfg({counts: {primary: 1, replica: 2}})
    expect(servers(cfg, 'primary')).toEqual(['db-main-primary-1 127.0.1.1:3306'])
    expect(servers(cfg, 'replicas')).toEqual(['db-main-replica-1 127.0.1.51:3306', 'db-main-replica-2 127.0.1.52:3306', 'db-main-primary-1 127.0.1.1:3306 backup'])
    expect(cfg).toContain('    bind 127.0.1.101:3307\n')
    expect(cfg).toContain('    bind 127.0.1.101:3308\n')
  })

  it('give a joining replica no reads until it has caught up, and a leaving one none before it goes', () => {
    expect(servers(proxyCfg({counts: {primary: 1, replica: 1}, adding: {replica: 2}}), 'replicas'))
      .toEqual(['db-main-replica-1 127.0.1.51:3306', 'db-main-primary-1 127.0.1.1:3306 backup'])
    expect(servers(proxyCfg({counts: {primary: 1, replica: 3}, deleting: {replica: [2, 3]}}), 'replicas'))
      .toEqual(['db-main-replica-1 127.0.1.51:3306', 'db-main-primary-1 127.0.1.1:3306 backup'])
  })
})
