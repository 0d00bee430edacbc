// A set of cluster specs planned or applied as one (`shoal plan DIR|FILE...`): every Cluster document below the paths,
// read and linted as lint reads them, ordered so that a cluster comes after the clusters it links to.
import {statSync} from 'node:fs'
import {formatLint} from '../lint/format/index.js'
import {lintFailed, lintPaths} from '../lint/lint.js'
import {EXIT, ShoalError} from '../errors.js'
import {readClusterInput, type ClusterInput} from './inputs.js'

/** True when the paths name a set (a directory, or more than one path) rather than one spec file. */
export function isSpecSet(paths: readonly string[]): boolean {
  if (paths.length !== 1) return true
  try {
    return statSync(paths[0]!).isDirectory()
  } catch {
    return false
  }
}

/** Every Cluster spec below `paths`, in link order; refused when any of them (or a template) does not lint clean. */
export async function readSpecSet(paths: readonly string[]): Promise<ClusterInput[]> {
  const result = await lintPaths(paths)
  if (lintFailed(result)) {
    const report = formatLint(result, 'text', {color: false, strict: false, failed: true, cwd: process.cwd(), version: ''})
    throw new ShoalError(`the specs do not lint clean:\n${report.trimEnd()}`, 'invalid-input', EXIT.failure)
  }
  const files = result.files.filter((f) => f.kind === 'Cluster').map((f) => f.file)
  if (files.length === 0) throw new ShoalError(`no Cluster spec found in ${paths.join(', ')}`, 'invalid-input', EXIT.usage)
  const inputs = files.map((file) => readClusterInput(file))
  const byName = new Map<string, ClusterInput>()
  for (const input of inputs) {
    const other = byName.get(input.spec.name)
    if (other) throw new ShoalError(`cluster ${input.spec.name} is specified twice: ${other.path} and ${input.path}`, 'invalid-input', EXIT.failure)
    byName.set(input.spec.name, input)
  }
  return linkOrder(inputs.map((i) => ({name: i.spec.name, links: Object.values(i.spec.links ?? {})}))).map((name) => byName.get(name)!)
}

/**
 * Names in an order where each comes after the clusters it links to that are in the set (links outside it must be
 * registered already: the planner checks them); otherwise sorted by name. A cycle is an error that names it.
 */
export function linkOrder(clusters: ReadonlyArray<{name: string; links: readonly string[]}>): string[] {
  const links = new Map(clusters.map((c) => [c.name, [...new Set(c.links)]]))
  const inSet = (name: string): boolean => links.has(name)
  const order: string[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name]
      throw new ShoalError(`the specs link in a cycle: ${cycle.join(' → ')} (a cluster must come after the clusters it links to)`, 'link-cycle', EXIT.failure)
    }
    state.set(name, 'visiting')
    for (const target of [...links.get(name)!].sort()) if (inSet(target)) visit(target, [...path, name])
    state.set(name, 'done')
    order.push(name)
  }
  for (const name of [...links.keys()].sort()) visit(name, [])
  return order
}
