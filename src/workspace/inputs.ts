// Reads what a command compiles from disk — a cluster spec with its templates, a host inventory — and refuses
// anything that does not lint clean, so the pure planner only ever sees valid input.
import {existsSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import type {HostsFile} from '../inventory/types.js'
import {formatLint} from '../lint/format/index.js'
import {resolveTemplate} from '../lint/cluster-checks.js'
import {LintSession, type LintedFile} from '../lint/lint.js'
import {loadYamlFile} from '../spec/load.js'
import {validators} from '../spec/schema.js'
import type {ClusterSpec} from '../spec/types.js'
import {EXIT, ShoalError} from '../errors.js'

export interface ClusterInput {
  spec: ClusterSpec
  /** Template path as written in the spec → source text. */
  templates: Map<string, string>
  path: string
}

function lintOne(path: string, expected: 'Cluster' | 'Hosts'): {data: Record<string, unknown>; linted: LintedFile; session: LintSession} {
  const absolute = resolve(path)
  if (!existsSync(absolute)) throw new ShoalError(`no such file: ${path}`, 'path-not-found', EXIT.usage)
  const loaded = loadYamlFile(absolute, path)
  const session = new LintSession(validators())
  const linted = session.lint(loaded, {explicit: true, specDir: dirname(absolute), displayDir: dirname(path)})
  const result = session.result([linted])
  if (result.summary.errors > 0) {
    const report = formatLint(result, 'text', {color: false, strict: false, failed: true, cwd: process.cwd(), version: ''})
    throw new ShoalError(`${path} does not lint clean:\n${report.trimEnd()}`, 'invalid-input', EXIT.failure)
  }
  if (linted.kind !== expected) {
    throw new ShoalError(`${path} is a ${linted.kind ?? 'unknown'} document, expected kind ${expected}`, 'invalid-input', EXIT.usage)
  }
  return {data: loaded.data!, linted, session}
}

export function readClusterInput(path: string): ClusterInput {
  const {data, session} = lintOne(path, 'Cluster')
  const spec = data as unknown as ClusterSpec
  const specDir = dirname(resolve(path))
  const templates = new Map<string, string>()
  for (const role of Object.values(spec.roles)) {
    for (const file of role.files ?? []) {
      if (templates.has(file.template)) continue
      // The text lint checked, read once: reading again could meet another file (a link changed meanwhile).
      const resolved = resolveTemplate(specDir, file.template)
      const source = 'real' in resolved ? session.templates.get(resolved.real).source : undefined
      if (source === undefined) throw new ShoalError(`template ${file.template} of ${path} cannot be read`, 'invalid-input', EXIT.failure)
      templates.set(file.template, source)
    }
  }
  return {spec, templates, path}
}

export function readInventory(path: string): HostsFile {
  return lintOne(path, 'Hosts').data as unknown as HostsFile
}
