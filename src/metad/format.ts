// Answer bodies by Accept: JSON (a leaf as a JSON value, a subtree as an object), plain text, YAML.
import {stringify} from 'yaml'
import type {Tree} from './view.js'

export type Format = 'json' | 'text' | 'yaml'

export const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  yaml: 'application/yaml; charset=utf-8',
}

const MEDIA: Record<string, Format> = {
  'application/json': 'json',
  'text/plain': 'text',
  'application/yaml': 'yaml',
  'application/x-yaml': 'yaml',
  'text/yaml': 'yaml',
  'application/*': 'json',
  'text/*': 'text',
  '*/*': 'json',
}

/** The first acceptable format in the order the caller lists them (q=0 excluded); JSON when nothing is asked for. */
export function negotiate(accept: string | undefined): Format | undefined {
  if (accept === undefined || accept.trim() === '') return 'json'
  for (const item of accept.split(',')) {
    const [type = '', ...params] = item.split(';').map((s) => s.trim().toLowerCase())
    if (params.some((p) => /^q=0(\.0*)?$/.test(p))) continue
    const format = MEDIA[type]
    if (format) return format
  }
  return undefined
}

/** Tabs, newlines and backslashes escaped, so one value stays on one `path<TAB>value` line. */
function lineValue(value: string | number | boolean): string {
  return String(value).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
}

function lines(tree: Tree, path: string, out: string[]): void {
  if (typeof tree !== 'object') {
    out.push(`${path}\t${lineValue(tree)}`)
    return
  }
  for (const [name, child] of Object.entries(tree)) lines(child, `${path}/${name}`, out)
}

/** `path` is the request path (e.g. `/self/hosts`): text lines name every leaf by its full path. */
export function render(tree: Tree, format: Format, path: string): string {
  if (format === 'json') return JSON.stringify(tree)
  if (format === 'yaml') return stringify(tree, {lineWidth: 0})
  if (typeof tree !== 'object') return String(tree)
  const out: string[] = []
  lines(tree, path.replace(/\/+$/, ''), out)
  out.sort((a, b) => {
    const pa = a.slice(0, a.indexOf('\t'))
    const pb = b.slice(0, b.indexOf('\t'))
    return pa < pb ? -1 : pa > pb ? 1 : 0
  })
  return out.length ? `${out.join('\n')}\n` : ''
}
