// A small cluster spec whose lifecycle scripts only write marker lines and echo SHOAL_* values, for executor tests on
// sandbox hosts. Scripts read control files on each host's own /srv: /srv/hold-start (start waits while it exists),
// /srv/fail-<node-id> (start exits 3), /srv/hang-<node-id> (start sleeps far past its timeout).
import {mkdirSync, mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

/** An env value full of shell metacharacters: it must reach the scripts byte for byte. */
export const NASTY = `it's "quoted" $HOME \`id\` $(id) ; | & * ? \\ <>{} end`

export interface LifecycleCluster {
  name: string
  dir: string
  spec: string
  dispose(): void
}

export function writeLifecycleCluster(options: {name: string; count: number; startTimeout?: string; canaries?: number; maxInFlight?: number}): LifecycleCluster {
  const dir = mkdtempSync(path.join(tmpdir(), `shoal-lc-${options.name}-`))
  mkdirSync(path.join(dir, 'templates'))
  const log = `/srv/markers/$SHOAL_CLUSTER.log`
  const mark = (what: string): string => `mkdir -p /srv/markers && echo "${what} $SHOAL_NODE_ID" >> ${log}`
  const yamlString = (text: string): string => `'${text.replace(/'/g, "''")}'`
  writeFileSync(
    path.join(dir, 'cluster.yaml'),
    `apiVersion: shoal/v1
kind: Cluster
name: ${options.name}
env:
  greeting:
    type: string
    description: A value full of shell metacharacters.
    default: ${yamlString(NASTY)}
  port:
    type: integer
    description: A number.
    default: 7000
roles:
  app:
    image: debian-12
    cpu: 1
    memory: 256Mi
    disk: 1Gi
    count: ${options.count}
    scale: {min: 1, max: 8}
    files:
      - template: templates/app.conf.liquid
        dest: conf/app.conf
        mode: "0640"
        check: "grep -q '^node=' {{src}}"
        reload: ${yamlString(mark('reload'))}
      - template: templates/sid.liquid
        dest: data/sid
        mode: "0600"
        reload: ${yamlString(mark('reload-sid'))}
      - template: templates/abs.liquid
        dest: /srv/abs-${options.name}.conf
    services:
      init:
        cmd: ${yamlString(`${mark('init')} && env | grep '^SHOAL_' | sort > env.txt && printf '%s' "$SHOAL_ENV_GREETING" > greeting.txt && cp "$SHOAL_MEMBERSHIP" membership-init.json && pwd > cwd.txt`)}
        timeout: 30s
      start:
        cmd: ${yamlString(`${mark('start')}; if [ -f /srv/fail-$SHOAL_NODE_ID ]; then echo "refusing to start $SHOAL_NODE_ID" >&2; exit 3; fi; if [ -f /srv/hang-$SHOAL_NODE_ID ]; then sleep 300 & echo $! > /srv/hang.pid; wait; fi; while [ -f /srv/hold-start ]; do sleep 0.1; done; touch started`)}
        timeout: ${options.startTimeout ?? '60s'}
      stop:
        cmd: ${yamlString(`${mark('stop')} && rm -f started`)}
      destroy:
        cmd: ${yamlString(mark('destroy'))}
      restart:
        cmd: ${yamlString(mark('restart'))}
        order: serial
      scale_out:
        cmd: ${yamlString(`${mark('scale_out')} && echo "joining=$SHOAL_JOINING"`)}
        on: existing
    actions:
      hello:
        cmd: ${yamlString(`${mark('hello')} && echo "hello from $SHOAL_NODE_ID"`)}
        on: bootstrap
    health_check:
      cmd: test -f started
      interval: 100ms
      timeout: 5s
      healthy_threshold: 2
      start_period: 30s
update:
  canaries: ${options.canaries ?? 1}
  max_in_flight: ${options.maxInFlight ?? 1}
`,
  )
  writeFileSync(path.join(dir, 'templates', 'app.conf.liquid'), `node={{ self.node_id }}\nmembers={% for m in hosts.app %}{{ m.sid }} {% endfor %}\n`)
  writeFileSync(path.join(dir, 'templates', 'sid.liquid'), '{{ self.sid }}\n')
  writeFileSync(path.join(dir, 'templates', 'abs.liquid'), 'cluster={{ cluster.name }}\n')
  return {name: options.name, dir, spec: path.join(dir, 'cluster.yaml'), dispose: () => rmSync(dir, {recursive: true, force: true})}
}

/** Marker lines (`<what> <node-id>`) of a cluster, gathered from every host's /srv. */
export function markerLines(srvDirs: readonly string[], cluster: string): string[] {
  return srvDirs.flatMap((srv) => {
    const file = path.join(srv, 'markers', `${cluster}.log`)
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
  })
}

export function count(lines: readonly string[], line: string): number {
  return lines.filter((l) => l === line).length
}

/** Put (or remove) a control file on every host's /srv: the scripts look for it on their own host. */
export function controlFile(srvDirs: readonly string[], name: string, present: boolean): void {
  for (const srv of srvDirs) {
    const file = path.join(srv, name)
    if (present) writeFileSync(file, '')
    else rmSync(file, {force: true})
  }
}
