// Defensive YAML loading: any input (junk, bombs, huge or deep files) becomes either plain data or Problems with positions.
import {closeSync, constants, fstatSync, openSync, readSync} from 'node:fs'
import {isAlias, isCollection, isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type YAMLMap} from 'yaml'
import type {Problem, Severity} from '../lint/problem.js'

export const LOAD_LIMITS = {
  /** Specs are small: anything bigger is a mistake or an attack. */
  maxBytes: 1024 * 1024,
  /** Nesting of mappings and sequences (a spec needs about 6). */
  maxDepth: 64,
  /** Flow brackets counted before parsing: the parser recurses and would burn time on `[[[[…`. */
  maxFlowNesting: 256,
  /** Aliases expanded when converting to data (stops "billion laughs"). */
  maxAliasCount: 100,
}

/** What reading a file with a size bound gives: its bytes, or why there are none (a lint rule and a message). */
export type BoundedRead = {bytes: Buffer} | {rule: 'file-unreadable' | 'file-too-large'; message: string}

function tooLarge(what: string, limit: number, size?: number): string {
  return `${what} is larger than ${limit} bytes${limit === LOAD_LIMITS.maxBytes ? ' (1 MiB)' : ''}${size !== undefined ? ` (${size} bytes)` : ''}, the limit for what shoal reads`
}

/**
 * Read at most `limit` bytes of a regular file. The limit holds while reading, so `/dev/zero` or a file that grows
 * cannot fill memory; devices, FIFOs and sockets are refused (a FIFO would block forever), and the open itself
 * cannot block because it is non-blocking (O_NONBLOCK does nothing to regular files, and the type is checked on the
 * opened descriptor, so a path swapped after a check cannot slip through).
 */
export function readBounded(path: string, limit: number = LOAD_LIMITS.maxBytes, what = 'file'): BoundedRead {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (err) {
    return {rule: 'file-unreadable', message: `cannot read ${what}: ${errnoText(err)}`}
  }
  try {
    const stat = fstatSync(fd)
    if (stat.isDirectory()) return {rule: 'file-unreadable', message: `cannot read ${what}: is a directory`}
    if (!stat.isFile()) {
      const type = stat.isFIFO() ? 'a FIFO (named pipe)' : stat.isCharacterDevice() ? 'a character device' : stat.isBlockDevice() ? 'a block device' : stat.isSocket() ? 'a socket' : 'not a regular file'
      return {rule: 'file-unreadable', message: `cannot read ${what}: it is ${type}, not a regular file${what === 'file' ? '; to read a stream, pipe it to standard input (-)' : ''}`}
    }
    if (stat.size > limit) return {rule: 'file-too-large', message: tooLarge(what, limit, stat.size)}
    // One byte more than the limit tells "exactly at the limit" from "grew past it since fstat".
    const buffer = Buffer.allocUnsafe(Math.min(limit, stat.size) + 1)
    let length = 0
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null)
      if (n === 0) break
      length += n
      if (length > limit) return {rule: 'file-too-large', message: tooLarge(what, limit)}
      if (length === buffer.length) break
    }
    return {bytes: buffer.subarray(0, length)}
  } catch (err) {
    return {rule: 'file-unreadable', message: `cannot read ${what}: ${errnoText(err)}`}
  } finally {
    closeSync(fd)
  }
}

/** Read a stream (standard input) up to `limit` bytes; past it the stream is destroyed, so an endless pipe ends. */
export async function readStreamBounded(stream: NodeJS.ReadableStream & {destroy?: () => void}, limit: number = LOAD_LIMITS.maxBytes): Promise<BoundedRead> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    length += bytes.byteLength
    if (length > limit) {
      stream.destroy?.()
      return {rule: 'file-too-large', message: tooLarge('input', limit)}
    }
    chunks.push(bytes)
  }
  return {bytes: Buffer.concat(chunks)}
}

function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOENT' ? 'no such file'
    : code === 'EISDIR' ? 'is a directory'
    : code === 'EACCES' ? 'permission denied'
    : code === 'ELOOP' ? 'symbolic link loop (a link that points back at itself)'
    : (err as Error).message
}

export interface Position {
  line: number
  col: number
  endLine?: number
  endCol?: number
}

export interface LoadedYaml {
  file: string
  /** Decoded text; empty when the file could not be read or decoded. */
  source: string
  lineCounter: LineCounter
  /** Present when YAML parsing succeeded (even if the top level is not a mapping). */
  doc?: Document.Parsed
  /** The document as plain data; present only when loading produced no errors. */
  data?: Record<string, unknown>
  problems: Problem[]
}

function problem(file: string, pos: Position, rule: string, message: string, severity: Severity = 'error'): Problem {
  return {file, ...pos, rule, severity, message}
}

/** Read (bounded) and load a YAML file; what cannot be read becomes a `file-unreadable` or `file-too-large` problem. */
export function loadYamlFile(path: string, displayName = path): LoadedYaml {
  return loadRead(readBounded(path), displayName)
}

/** Load what a bounded read gave. */
export function loadRead(read: BoundedRead, displayName: string): LoadedYaml {
  if ('bytes' in read) return loadYaml(read.bytes, displayName)
  const pos = read.rule === 'file-too-large' ? {line: 1, col: 1} : {line: 0, col: 0}
  return {file: displayName, source: '', lineCounter: new LineCounter(), problems: [problem(displayName, pos, read.rule, read.message)]}
}

/** Load YAML from bytes (or already decoded text). Never throws. */
export function loadYaml(input: Uint8Array | string, file: string): LoadedYaml {
  const lineCounter = new LineCounter()
  // `source` is kept where it is text, so the problem can be shown in a code frame.
  const fail = (pos: Position, rule: string, message: string, source = ''): LoadedYaml => ({file, source, lineCounter, problems: [problem(file, pos, rule, message)]})

  const byteLength = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength
  if (byteLength > LOAD_LIMITS.maxBytes) {
    return fail({line: 1, col: 1}, 'file-too-large', tooLarge('file', LOAD_LIMITS.maxBytes, byteLength))
  }
  let source: string
  if (typeof input === 'string') {
    source = input
  } else {
    const bad = firstInvalidUtf8(input)
    if (bad !== undefined) {
      const lossy = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8')
      return fail(bytePosition(input, bad), 'file-encoding', `invalid UTF-8 at byte ${bad}: save the file as UTF-8 text`, lossy)
    }
    source = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8')
  }
  if (source.charCodeAt(0) === 0xfeff) source = source.slice(1)
  // A lone CR is a line break in YAML 1.2 (old Mac files); as LF it is one for the line counter and code frames too.
  // One character for one keeps every offset, so positions still match the file.
  if (source.includes('\r')) source = source.replace(/\r(?!\n)/g, '\n')
  // eslint-disable-next-line no-control-regex -- binary junk is detected by its control characters
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(source)
  if (control) {
    const what = control[0] === '\u0000' ? 'a NUL byte' : `control character U+${control[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`
    return fail(textPosition(source, control.index), 'file-encoding', `${what} found: this looks like binary data, not a YAML text file`, source)
  }
  const deepAt = flowNestingOverflow(source, LOAD_LIMITS.maxFlowNesting)
  if (deepAt !== undefined) {
    return fail(textPosition(source, deepAt), 'yaml-too-deep', `nesting deeper than ${LOAD_LIMITS.maxFlowNesting} levels`)
  }

  const result: LoadedYaml = {file, source, lineCounter, problems: []}
  const at = (offset: number): Position => {
    const p = lineCounter.linePos(offset)
    return {line: p.line, col: p.col}
  }
  let doc: Document.Parsed
  try {
    // yaml's own `uniqueKeys` check compares every key with every other (100,000 keys: minutes); duplicateKeys() is linear.
    doc = parseDocument(source, {lineCounter, prettyErrors: false, uniqueKeys: false, strict: true})
  } catch (err) {
    // The parser is not supposed to throw; if it does, the input is still the user's problem to see, not a stack trace.
    result.problems.push(problem(file, {line: 1, col: 1}, 'yaml-syntax', `cannot parse YAML: ${(err as Error).message}`))
    return result
  }
  result.doc = doc
  for (const err of doc.errors) {
    const rule = YAML_ERROR_RULES[err.code] ?? 'yaml-syntax'
    const message = rule === 'yaml-multiple-documents'
      ? 'more than one YAML document (`---`): put each spec in its own file'
      : rule === 'yaml-too-deep' ? `nesting is too deep to parse (limit ${LOAD_LIMITS.maxDepth} levels)` : yamlMessage(err.message)
    result.problems.push(problem(file, at(err.pos[0]), rule, message))
  }
  if (doc.errors.length === 0) {
    for (const key of duplicateKeys(doc)) {
      result.problems.push(problem(file, at(key.range?.[0] ?? 0), 'yaml-duplicate-key', `duplicate key ${JSON.stringify(String((key as {value?: unknown}).value))}: each key may appear once in a mapping`))
    }
  }
  for (const warning of doc.warnings) {
    result.problems.push(problem(file, at(warning.pos[0]), 'yaml-warning', yamlMessage(warning.message), 'warning'))
  }
  if (result.problems.some((p) => p.severity === 'error')) return result

  const contents = doc.contents
  if (!isMap(contents)) {
    const what = contents === null || (isScalar(contents) && contents.value === null) ? 'the document is empty' : `the top level is a ${isCollection(contents) ? 'sequence' : 'scalar'}`
    result.problems.push(problem(file, contents?.range ? at(contents.range[0]) : {line: 1, col: 1}, 'yaml-not-mapping', `${what}; a spec must be a mapping (key: value lines)`))
    return result
  }
  const tooDeep = deeperThan(contents, LOAD_LIMITS.maxDepth)
  if (tooDeep) {
    result.problems.push(problem(file, at(tooDeep.range?.[0] ?? 0), 'yaml-too-deep', `nesting deeper than ${LOAD_LIMITS.maxDepth} levels`))
    return result
  }
  try {
    result.data = doc.toJS({maxAliasCount: LOAD_LIMITS.maxAliasCount}) as Record<string, unknown>
  } catch (err) {
    const message = (err as Error).message
    const alias = firstAlias(doc)
    const pos = alias?.range ? at(alias.range[0]) : {line: 1, col: 1}
    if (/alias count/i.test(message)) {
      result.problems.push(problem(file, pos, 'yaml-alias-limit', `aliases expand to too much data (more than ${LOAD_LIMITS.maxAliasCount} alias expansions): this looks like an alias bomb`))
    } else {
      result.problems.push(problem(file, pos, 'yaml-syntax', yamlMessage(message)))
    }
  }
  return result
}

const YAML_ERROR_RULES: Record<string, string> = {
  DUPLICATE_KEY: 'yaml-duplicate-key',
  MULTIPLE_DOCS: 'yaml-multiple-documents',
  RESOURCE_EXHAUSTION: 'yaml-too-deep',
}

/** yaml's messages end with " at line N, column M:" and a code frame; we print our own position and frame. */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
  return first.replace(/^Map keys must be unique$/, 'duplicate key: each key may appear once in a mapping')
}

/** The position of the node at `path` (keys and indexes), or of its key when `key` is set; climbs to the nearest existing ancestor. */
export function positionAt(loaded: LoadedYaml, path: ReadonlyArray<string | number>, options: {key?: boolean} = {}): Position {
  const node = nodeAt(loaded.doc, path, options.key === true)
  if (!node?.range) return {line: 1, col: 1}
  const start = loaded.lineCounter.linePos(node.range[0])
  const end = loaded.lineCounter.linePos(node.range[1])
  return {line: start.line, col: start.col, endLine: end.line, endCol: end.col}
}

function nodeAt(doc: Document.Parsed | undefined, path: ReadonlyArray<string | number>, wantKey: boolean): Node | undefined {
  let node: unknown = doc?.contents
  let keyNode: Node | undefined
  for (const segment of path) {
    let next: unknown
    keyNode = undefined
    if (isMap(node)) {
      const pair = pairIndex(node).get(String(segment))
      if (pair) {
        next = pair.value ?? pair.key
        keyNode = pair.key as Node
      }
    } else if (isCollection(node)) {
      next = node.items[Number(segment)]
    }
    if (next === undefined) return node as Node | undefined
    node = next
  }
  return wantKey && keyNode ? keyNode : (node as Node | undefined)
}

/** Pairs of a mapping by key text, built once per mapping: a spec with 100,000 keys and as many problems stays linear. */
const PAIR_INDEX = new WeakMap<YAMLMap, Map<string, Pair>>()

function pairIndex(map: YAMLMap): Map<string, Pair> {
  let index = PAIR_INDEX.get(map)
  if (!index) {
    index = new Map()
    for (const item of map.items) {
      if (isPair(item) && isScalar(item.key)) {
        const text = String(item.key.value)
        if (!index.has(text)) index.set(text, item as Pair)
      }
    }
    PAIR_INDEX.set(map, index)
  }
  return index
}

/**
 * Every key that repeats an earlier key of its mapping, in one pass over the document (a Set per mapping). Keys
 * compare by their text, as they do once the document becomes data: `1` and `"1"` are the same property there.
 */
function duplicateKeys(doc: Document.Parsed): Node[] {
  const found: Node[] = []
  const stack: unknown[] = [doc.contents]
  while (stack.length > 0) {
    const node = stack.pop()
    if (!isCollection(node)) continue
    const seen = isMap(node) ? new Set<string>() : undefined
    for (const item of node.items) {
      if (isPair(item)) {
        if (seen && isScalar(item.key)) {
          const text = String(item.key.value)
          if (seen.has(text)) found.push(item.key)
          else seen.add(text)
        }
        stack.push(item.key, item.value)
      } else {
        stack.push(item)
      }
    }
  }
  return found.sort((a, b) => (a.range?.[0] ?? 0) - (b.range?.[0] ?? 0))
}

function deeperThan(root: Node, limit: number): Node | undefined {
  const stack: Array<[Node, number]> = [[root, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (!isCollection(node)) continue
    if (depth > limit) return node
    for (const item of node.items) {
      const children = isPair(item) ? [item.key, item.value] : [item]
      for (const child of children) if (child && isCollection(child)) stack.push([child as Node, depth + 1])
    }
  }
  return undefined
}

function firstAlias(doc: Document.Parsed): Node | undefined {
  let found: Node | undefined
  visit(doc, {
    Alias(_key, node) {
      found = node
      return visit.BREAK
    },
  })
  return found && isAlias(found) ? found : undefined
}

/** Offset where `[`/`{` nesting (outside quotes and comments) first exceeds the limit. */
function flowNestingOverflow(source: string, limit: number): number | undefined {
  let depth = 0
  let quote = ''
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!
    if (quote) {
      if (c === '\\' && quote === '"') i++
      else if (c === quote || c === '\n') quote = ''
    } else if (c === '"' || c === "'") {
      quote = c
    } else if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++
    } else if (c === '[' || c === '{') {
      if (++depth > limit) return i
    } else if (c === ']' || c === '}') {
      depth = Math.max(0, depth - 1)
    }
  }
  return undefined
}

function textPosition(text: string, offset: number): Position {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return {line, col: offset - lineStart + 1}
}

function bytePosition(bytes: Uint8Array, offset: number): Position {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++
      lineStart = i + 1
    }
  }
  return {line, col: offset - lineStart + 1}
}

/** Index of the first byte that is not part of a well-formed UTF-8 sequence. */
export function firstInvalidUtf8(bytes: Uint8Array): number | undefined {
  let i = 0
  while (i < bytes.length) {
    const b = bytes[i]!
    if (b < 0x80) {
      i++
      continue
    }
    let need: number
    let min: number
    if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80]
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800]
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000]
    else return i
    let cp = b & (0x3f >> need)
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]
      if (c === undefined || (c & 0xc0) !== 0x80) return i
      cp = (cp << 6) | (c & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i
    i += need + 1
  }
  return undefined
}
