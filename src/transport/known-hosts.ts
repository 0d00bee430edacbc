// known_hosts: parse OpenSSH's host key file and decide whether a host's key is trusted, unknown, changed or revoked.
import {createHmac} from 'node:crypto'
import {appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync} from 'node:fs'
import path from 'node:path'

export type KnownHostMarker = 'cert-authority' | 'revoked'

/** One key line of a known_hosts file. Comment, blank and unreadable lines are not entries. */
export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number
  marker?: KnownHostMarker
  /** The host field as written: comma-separated patterns, or one hashed `|1|salt|hash` entry. */
  hosts: string
  keyType: string
  /** The raw key blob (the base64 field decoded). */
  key: Buffer
  comment?: string
}

export interface KnownHostsFile {
  path: string
  entries: KnownHostEntry[]
  /** Lines that could not be read as entries (1-based), so a caller can warn about them. */
  unreadable: number[]
}

/** The name a host is recorded under: the plain address for port 22, `[address]:port` otherwise. */
export function knownHostName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`
}

export function parseKnownHosts(text: string, file = 'known_hosts'): KnownHostsFile {
  const entries: KnownHostEntry[] = []
  const unreadable: number[] = []
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '').trim()
    if (line === '' || line.startsWith('#')) return
    const fields = line.split(/[ \t]+/)
    let marker: KnownHostMarker | undefined
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift()!.slice(1)
      if (name !== 'cert-authority' && name !== 'revoked') {
        unreadable.push(index + 1)
        return
      }
      marker = name
    }
    const [hosts, keyType, base64, ...rest] = fields
    if (!hosts || !keyType || !base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
      unreadable.push(index + 1)
      return
    }
    const key = Buffer.from(base64, 'base64')
    // The blob starts with its own key type; a line whose two types disagree is corrupt.
    if (blobKeyType(key) !== keyType) {
      unreadable.push(index + 1)
      return
    }
    entries.push({line: index + 1, ...(marker ? {marker} : {}), hosts, keyType, key, ...(rest.length > 0 ? {comment: rest.join(' ')} : {})})
  })
  return {path: file, entries, unreadable}
}

/** Read a known_hosts file; a missing file is an empty one. */
export function readKnownHosts(file: string): KnownHostsFile {
  return parseKnownHosts(existsSync(file) ? readFileSync(file, 'utf8') : '', file)
}

/** The key type named inside an SSH public key blob (uint32 length + name), or undefined when the blob is malformed. */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined
  const length = blob.readUInt32BE(0)
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined
  return blob.subarray(4, 4 + length).toString('latin1')
}

/** Whether a known_hosts host field names `name` (`address` or `[address]:port`). */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|')
    if (!salt || !hash) return false
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')
    return digest === hash
  }
  let matched = false
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!')
    if (globMatches(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false // a matching negation excludes the host whatever else matches
      matched = true
    }
  }
  return matched
}

function globMatches(pattern: string, name: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${regex}$`, 'i').test(name)
}

export type HostKeyVerdict =
  | {status: 'trusted'; entry: KnownHostEntry}
  | {status: 'unknown'}
  | {status: 'revoked'; entry: KnownHostEntry}
  /** The host is known with another key of the same type: possibly an attack; never accepted automatically. */
  | {status: 'changed'; entry: KnownHostEntry}
  /** The host is known, but only with keys of other types: not accepted automatically either. */
  | {status: 'other-type'; entries: KnownHostEntry[]}

/** Decide about `key` offered by `address:port`. `@cert-authority` lines are not supported and never match. */
export function verifyHostKey(file: KnownHostsFile, address: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostName(address, port)
  const matching = file.entries.filter((e) => hostFieldMatches(e.hosts, name))
  const revoked = file.entries.find((e) => e.marker === 'revoked' && e.key.equals(key) && hostFieldMatches(e.hosts, name))
  if (revoked) return {status: 'revoked', entry: revoked}
  const plain = matching.filter((e) => e.marker === undefined)
  const same = plain.find((e) => e.key.equals(key))
  if (same) return {status: 'trusted', entry: same}
  const type = blobKeyType(key)
  const changed = plain.find((e) => e.keyType === type)
  if (changed) return {status: 'changed', entry: changed}
  if (plain.length > 0) return {status: 'other-type', entries: plain}
  return {status: 'unknown'}
}

/** A known_hosts line for `key` of `address:port`. */
export function knownHostLine(address: string, port: number, key: Buffer): string {
  const type = blobKeyType(key)
  if (!type) throw new Error('not an SSH public key blob')
  return `${knownHostName(address, port)} ${type} ${key.toString('base64')}`
}

/** Append a host key to a known_hosts file (created with mode 0600, directory too). */
export function appendKnownHost(file: string, address: string, port: number, key: Buffer): void {
  mkdirSync(path.dirname(file), {recursive: true, mode: 0o700})
  const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const separator = text === '' || text.endsWith('\n') ? '' : '\n'
  appendFileSync(file, `${separator}${knownHostLine(address, port, key)}\n`, {mode: 0o600})
  chmodSync(file, 0o600)
}
