// Nodes of a cluster with `agent: true`: shoal places the agent bundle in each node's home, starts it supervised (a
// systemd unit where the host runs systemd, a supervisor loop elsewhere), waits for its reports, and stops it on removal.
import {existsSync, readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import type {RenderedFile} from '../plan/types.js'
import {readAgentReports, type AgentReport} from '../registry/agent-report.js'
import {NODE_TOKEN_FILE} from '../registry/index.js'
import type {Store} from '../store/store.js'
import type {InstallFileOptions} from '../transport/install.js'
import {shellQuote} from '../util/shell.js'
import {ShoalError} from '../errors.js'

/** Where the bundle is beside the compiled code (dist/lifecycle → dist/agent), or from the sources (src/lifecycle). */
const BUNDLE_PATHS = ['../agent/shoal-agent.mjs', '../../dist/agent/shoal-agent.mjs'].map((p) => fileURLToPath(new URL(p, import.meta.url)))
const AGENT_DIR = '.shoal'
/** Where the agent writes how each pass went (see AgentOptions.readyFile): shoal reads its first pass there. */
const READY_FILE = 'agent.ready'
/** How long, in seconds, a new agent's first pass may take to apply shoal's commit (metad follows the registry in ms). */
const FIRST_PASS_WAIT_S = 30

let bundle: string | undefined

/** The agent bundle (one file, built by `npm run build`). */
export function agentBundle(): string {
  if (bundle !== undefined) return bundle
  const found = BUNDLE_PATHS.find((p) => existsSync(p))
  if (!found) throw new ShoalError(`the agent bundle is missing (looked for ${BUNDLE_PATHS.join(', ')}); build shoal with \`npm run build\``, 'agent-bundle-missing')
  return (bundle = readFileSync(found, 'utf8'))
}

export interface AgentNode {
  node_id: string
  ip: string
  home: string
}

/** The systemd unit of a node's agent: one per node, named by cluster and node. */
export function agentUnit(cluster: string, node: {node_id: string}): string {
  return `shoal-agent-${cluster}-${node.node_id}`
}

/** How the agent runs on the node: the same arguments for the supervisor loop and the systemd unit. */
function agentArgs(metad: string, node: AgentNode): string {
  return ['--metad', metad, '--bind', node.ip, '--node', node.node_id, '--token-file', `${node.home}/${NODE_TOKEN_FILE}`, '--ready-file', `${node.home}/${AGENT_DIR}/${READY_FILE}`].map(shellQuote).join(' ')
}

/**
 * The bundle and the supervisor script, placed in the node's home (`.shoal/`) with its other files. The supervisor
 * restarts the agent a second after it ends, whatever the reason, and keeps its log to two files of at most 1 MiB.
 */
export function agentFiles(metad: string, node: AgentNode): InstallFileOptions[] {
  const dir = `${node.home}/${AGENT_DIR}`
  const supervisor = [
    '#!/bin/sh',
    `# Supervises the shoal agent of node ${node.node_id}: started by shoal, restarted here when it ends, stopped when the node is removed.`,
    `cd ${shellQuote(dir)} || exit 1`,
    'echo $$ > agent.pid',
    'while :; do',
    '  if [ -f agent.log ] && [ "$(wc -c < agent.log)" -gt 1048576 ]; then mv -f agent.log agent.log.1; fi',
    `  node ./agent.mjs ${agentArgs(metad, node)} >> agent.log 2>&1`,
    '  echo "$(date -u +%FT%TZ) agent ended (exit $?); restarting in 1 s" >> agent.log',
    '  sleep 1',
    'done',
    '',
  ].join('\n')
  return [
    {path: `${dir}/agent.mjs`, content: agentBundle(), mode: '0644'},
    {path: `${dir}/agent.sh`, content: supervisor, mode: '0755'},
  ]
}

/**
 * Shell functions every agent command uses: whether systemd supervises here (a host running it, and this shell in
 * its own namespaces: a sandbox host's private mounts or network would be lost to a unit), and stopping the agent.
 */
function agentShell(cluster: string, node: AgentNode): string {
  const dir = `${node.home}/${AGENT_DIR}`
  const unit = agentUnit(cluster, node)
  return [
    `unit=${shellQuote(unit)}`,
    `dir=${shellQuote(dir)}`,
    'use_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ "$(readlink /proc/1/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && [ "$(readlink /proc/1/ns/net)" = "$(readlink /proc/self/ns/net)" ]; }',
    // The pid file names the supervisor, which leads its own session: the group holds it and the agent.
    'supervisor() { [ -f "$dir/agent.pid" ] || return 1; p=$(cat "$dir/agent.pid"); [ -n "$p" ] && tr "\\0" " " < /proc/$p/cmdline 2>/dev/null | grep -q "agent.sh" && echo "$p"; }',
    'stop_agent() {',
    '  if [ -f "/etc/systemd/system/$unit.service" ]; then systemctl disable --now "$unit" >/dev/null 2>&1 || true; rm -f "/etc/systemd/system/$unit.service"; systemctl daemon-reload >/dev/null 2>&1 || true; fi',
    '  if p=$(supervisor); then',
    // dash's kill takes no `--`: a negative number after the signal is a process group.
    '    kill -TERM "-$p" 2>/dev/null || true',
    '    i=0; while kill -0 "-$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done',
    '    kill -KILL "-$p" 2>/dev/null || true',
    '    i=0; while kill -0 "-$p" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done',
    '    if kill -0 "-$p" 2>/dev/null; then echo "the agent (process group $p) did not stop" >&2; return 1; fi',
    '  fi',
    '  rm -f "$dir/agent.pid"',
    '}',
  ].join('\n')
}

/**
 * Start (or restart, with the bundle just placed) a node's agent: Node.js >= 20 must be there; the agent starts
 * supervised, and its first passes must apply shoal's commit `revision` (metad reached from the node, the files
 * rendered) within FIRST_PASS_WAIT_S, as its ready file says — else it is stopped again. Exit 3: no usable Node.js;
 * 1: the first pass failed, with its reason. The agent's own process does that pass: a separate `--once` process
 * first was a second Node.js start per new node (about 150 ms of CPU here, while the other agents react).
 */
export function startAgentCommand(cluster: string, node: AgentNode, metad: string, revision: number): string {
  const unitFile = [
    '[Unit]',
    `Description=shoal agent of node ${node.node_id} of cluster ${cluster}`,
    'After=network-online.target',
    '[Service]',
    `WorkingDirectory=${node.home}/${AGENT_DIR}`,
    `ExecStart=NODE ${node.home}/${AGENT_DIR}/agent.mjs ${agentArgs(metad, node)}`,
    'Restart=always',
    'RestartSec=1',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
  return [
    'set -e',
    agentShell(cluster, node),
    'if ! command -v node >/dev/null 2>&1; then echo "this host has no Node.js (no node on PATH); the shoal agent needs Node.js 20 or later" >&2; exit 3; fi',
    // `node --version` answers before V8 starts (20 ms here, against 120 ms for `node -p`): one start less per new node.
    'version=$(node --version 2>/dev/null) || version=; major=${version#v}; major=${major%%.*}',
    'case "$major" in ""|*[!0-9]*) echo "this host has a node on PATH that does not say its version ($version); the shoal agent needs Node.js 20 or later" >&2; exit 3;; esac',
    'if [ "$major" -lt 20 ]; then echo "this host has Node.js $version; the shoal agent needs 20 or later" >&2; exit 3; fi',
    'stop_agent',
    `ready="$dir/${READY_FILE}"`,
    'rm -f "$ready"',
    'if use_systemd; then',
    `  printf '%s' ${shellQuote(unitFile)} | sed "s|^ExecStart=NODE |ExecStart=$(command -v node) |" > "/etc/systemd/system/$unit.service"`,
    '  systemctl daemon-reload && systemctl enable --now "$unit" >/dev/null',
    'else',
    '  setsid sh "$dir/agent.sh" < /dev/null > /dev/null 2>&1 &',
    'fi',
    // The first pass: its outcome in the ready file (`applied REV`, `failed REV MESSAGE`, `unreachable MESSAGE`).
    `first_pass_wait=${FIRST_PASS_WAIT_S}`,
    'first_pass() {',
    '  n=0; what=; rev=; rest=',
    '  while [ $n -lt $((first_pass_wait * 10)) ]; do',
    '    if [ -f "$ready" ]; then',
    '      read -r what rev rest < "$ready" || true',
    '      case "$what" in',
    `        applied) if [ "$rev" -ge ${revision} ] 2>/dev/null; then return 0; fi;;`,
    `        failed) if [ "$rev" -ge ${revision} ] 2>/dev/null; then echo "shoal-agent: not in sync at revision $rev: $rest" >&2; return 1; fi;;`,
    '      esac',
    '    fi',
    '    sleep 0.1; n=$((n + 1))',
    '  done',
    '  if [ "$what" = unreachable ]; then echo "shoal-agent: $rev $rest" >&2',
    `  else echo "shoal-agent: the agent did not apply revision ${revision} within $first_pass_wait s\${what:+ (its last pass: $what $rev $rest)}; the end of its log:" >&2; tail -n 5 "$dir/agent.log" >&2 2>/dev/null || true; fi`,
    '  return 1',
    '}',
    'if ! first_pass; then stop_agent; exit 1; fi',
  ].join('\n')
}

/** Stop a node's agent (before its home goes); nothing when it has none. */
export function stopAgentCommand(cluster: string, node: AgentNode): string {
  return `${agentShell(cluster, node)}\nstop_agent || exit 1`
}

/** What shoal waits for on a node: each file's hash as rendered for this step. */
export interface AgentExpectation {
  node: string
  files: RenderedFile[]
}

export interface AgentWaitOptions {
  timeoutMs: number
  /** How often the reports are read. */
  pollMs?: number
}

/**
 * Wait until every node's agent reports `revision` (or later) applied with each file as expected. Fails at once when
 * an agent reports an error for such a revision; at the deadline, names each node that is not there and why.
 */
export async function waitForAgents(store: Store, cluster: string, revision: number, expected: readonly AgentExpectation[], options: AgentWaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  let pending = [...expected]
  for (;;) {
    const reports = await readAgentReports(store, cluster)
    const failed = pending.flatMap((e) => {
      const r = reports.get(e.node)
      return r && r.revision >= revision && r.errors.length ? [`${e.node}: ${r.errors.join('; ')}`] : []
    })
    if (failed.length) throw new ShoalError(`the agents of ${failed.length === 1 ? 'a node' : `${failed.length} nodes`} could not apply revision ${revision}: ${failed.join('; ')}`, 'agent-failed')
    pending = pending.filter((e) => !inSync(reports.get(e.node), revision, e.files))
    if (pending.length === 0) return
    if (Date.now() >= deadline) {
      const why = pending.map((e) => `${e.node} (${lag(reports.get(e.node), revision)})`)
      throw new ShoalError(`waited ${Math.round(options.timeoutMs / 1000)} s for the agents of ${pending.length} node${pending.length === 1 ? '' : 's'} to apply revision ${revision}: ${why.join(', ')}`, 'agent-timeout')
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(options.pollMs ?? 100, Math.max(0, deadline - Date.now()))))
  }
}

function inSync(report: AgentReport | undefined, revision: number, files: readonly RenderedFile[]): boolean {
  return report !== undefined && report.revision >= revision && report.errors.length === 0 && files.every((f) => report.files[f.dest] === f.hash)
}

function lag(report: AgentReport | undefined, revision: number): string {
  if (!report) return 'no agent reports for it: the agent is down or cannot reach metad'
  if (report.revision < revision) return `its files reflect revision ${report.revision}, last reported at ${report.at}`
  return 'its files differ from the planned ones'
}
