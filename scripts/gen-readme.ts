// Regenerates the README's reference sections (spec and inventory fields, lint rules, commands) from their sources:
// the JSON Schemas, src/lint/rules.ts and oclif.manifest.json. `--check` exits 1 when the README is out of date.
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {RULES} from '../src/lint/rules.js'

type Schema = Record<string, unknown> & {
  description?: string
  properties?: Record<string, Schema>
  additionalProperties?: Schema | boolean
  items?: Schema
  $ref?: string
  type?: string | string[]
  oneOf?: Schema[]
  anyOf?: Schema[]
  enum?: unknown[]
  const?: unknown
  required?: string[]
}

const ROOT = join(import.meta.dirname, '..')

function resolveRef(root: Schema, node: Schema): Schema {
  if (!node.$ref) return node
  const target = node.$ref.replace('#/$defs/', '')
  const resolved = (root.$defs as Record<string, Schema>)[target]!
  return {...resolveRef(root, resolved), ...node, description: node.description ?? resolved.description, $ref: undefined}
}

function typeOf(root: Schema, raw: Schema): string {
  const node = resolveRef(root, raw)
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ')
  const variants = node.oneOf ?? node.anyOf
  if (variants) return variants.map((v) => typeOf(root, v)).join(' or ')
  if (Array.isArray(node.type)) return node.type.join(' or ')
  if (node.type === 'array') return `list of ${node.items ? typeOf(root, node.items) : 'values'}`
  if (node.type === 'object' && !node.properties && typeof node.additionalProperties === 'object') return `map of ${typeOf(root, node.additionalProperties)}`
  return node.type ?? 'value'
}

/** One table row per property, walking nested objects, list items and map values. */
function rows(root: Schema, raw: Schema, path: string, out: string[]): void {
  const node = resolveRef(root, raw)
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const childPath = path ? `${path}.${name}` : name
    const required = node.required?.includes(name) ? ' **(required)**' : ''
    const resolved = resolveRef(root, child)
    out.push(`| \`${childPath}\` | ${typeOf(root, child)} | ${(resolved.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')}${required} |`)
    descend(root, resolved, childPath, out)
  }
}

function descend(root: Schema, node: Schema, path: string, out: string[]): void {
  if (node.properties) rows(root, node, path, out)
  else if (node.type === 'array' && node.items) descend(root, resolveRef(root, node.items), `${path}[]`, out)
  else if (typeof node.additionalProperties === 'object') {
    const value = resolveRef(root, node.additionalProperties)
    if (value.properties) rows(root, value, `${path}.<name>`, out)
  }
}

function schemaTable(file: string): string {
  const root = JSON.parse(readFileSync(join(ROOT, 'schemas', file), 'utf8')) as Schema
  const out = ['| field | type | meaning |', '|---|---|---|']
  rows(root, root, '', out)
  return out.join('\n')
}

function rulesTable(): string {
  const out = ['| rule | severity | group | meaning |', '|---|---|---|---|']
  for (const rule of RULES) out.push(`| \`${rule.id}\` | ${rule.severity} | ${rule.group} | ${rule.description.replace(/\|/g, '\\|')} |`)
  return out.join('\n')
}

interface ManifestFlag {
  name: string
  char?: string
  type: 'boolean' | 'option'
  description?: string
  summary?: string
  default?: unknown
  options?: string[]
  hidden?: boolean
}
interface ManifestCommand {
  id: string
  summary?: string
  description?: string
  args: Record<string, {name: string; description?: string; required?: boolean}>
  flags: Record<string, ManifestFlag>
  examples?: string[]
}

function commandsReference(): string {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, ManifestCommand>}
  const parts: string[] = []
  for (const command of Object.values(manifest.commands).sort((a, b) => a.id.localeCompare(b.id))) {
    const id = command.id.replace(/:/g, ' ')
    const args = Object.values(command.args).map((a) => (a.required ? a.name.toUpperCase() : `[${a.name.toUpperCase()}]`)).join(' ')
    parts.push(`### \`shoal ${id}${args ? ' ' + args : ''}\``, '', command.summary ?? '', '')
    if (command.description) parts.push(command.description, '')
    const flags = Object.values(command.flags).filter((f) => !f.hidden)
    if (flags.length > 0) {
      parts.push('| flag | meaning |', '|---|---|')
      for (const flag of flags) {
        const name = `${flag.char ? `-${flag.char}, ` : ''}--${flag.name}${flag.type === 'option' ? (flag.options ? `=${flag.options.join('\\|')}` : '=VALUE') : ''}`
        const def = flag.default !== undefined && flag.default !== false ? ` (default: \`${String(flag.default)}\`)` : ''
        parts.push(`| \`${name}\` | ${(flag.summary ?? flag.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')}${def} |`)
      }
      parts.push('')
    }
    if (command.examples?.length) {
      parts.push('```sh', ...command.examples.map((e) => `$ ${e.replace('<%= config.bin %>', 'shoal')}`), '```', '')
    }
  }
  return parts.join('\n').trimEnd()
}

const SECTIONS: Record<string, () => string> = {
  'spec-reference': () => schemaTable('cluster.schema.json'),
  'hosts-reference': () => schemaTable('hosts.schema.json'),
  'lint-rules': rulesTable,
  commands: commandsReference,
}

export function regenerate(readme: string): string {
  let text = readme
  for (const [name, make] of Object.entries(SECTIONS)) {
    const begin = `<!-- BEGIN GENERATED ${name} -->`
    const end = `<!-- END GENERATED ${name} -->`
    const from = text.indexOf(begin)
    const to = text.indexOf(end)
    if (from < 0 || to < from) throw new Error(`README.md lacks the markers for ${name}`)
    text = `${text.slice(0, from + begin.length)}\n${make()}\n${text.slice(to)}`
  }
  return text
}

if (process.argv[1] === import.meta.filename) {
  const path = join(ROOT, 'README.md')
  const current = readFileSync(path, 'utf8')
  const next = regenerate(current)
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error('README.md reference sections are out of date: run `npm run docs`')
      process.exit(1)
    }
  } else {
    writeFileSync(path, next)
  }
}
