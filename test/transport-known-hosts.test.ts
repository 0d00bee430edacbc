// known_hosts parsing and host key decisions: plain, hashed, [host]:port, markers, comments, garbage; and the line splitter.
import {createHmac, randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import ssh2 from 'ssh2'
import {describe, expect, it} from 'vitest'
import {appendKnownHost, hostFieldMatches, parseKnownHosts, readKnownHosts, verifyHostKey} from '../src/transport/known-hosts.js'
import {LineSplitter} from '../src/transport/lines.js'

function keyBlob(): {type: string; base64: string; blob: Buffer} {
  const [type, base64] = ssh2.utils.generateKeyPairSync('ed25519').public.split(' ')
  return {type: type!, base64: base64!, blob: Buffer.from(base64!, 'base64')}
}

function hashed(name: string): string {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

const a = keyBlob()
const b = keyBlob()

describe('parseKnownHosts', () => {
  it('reads plain entries with several host patterns and a comment', () => {
    const file = parseKnownHosts(`web1,10.0.0.1 ${a.type} ${a.base64} root@web1\n`)
    expect(file.entries).toHaveLength(1)
    expect(file.entries[0]).toMatchObject({line: 1, hosts: 'web1,10.0.0.1', keyType: 'ssh-ed25519', comment: 'root@web1'})
    expect(file.entries[0]!.key.equals(a.blob)).toBe(true)
  })

  it('skips comments and blank lines and reports unreadable ones by line number', () => {
    const text = ['# a comment', '', '   ', `host ${a.type} ${a.base64}`, 'garbage', `host ssh-rsa ${a.base64}`, `host ${a.type} not*base64`, `@bogus host ${a.type} ${a.base64}`].join('\n')
    const file = parseKnownHosts(text)
    expect(file.entries.map((e) => e.line)).toEqual([4])
    expect(file.unreadable).toEqual([5, 6, 7, 8])
  })

  it('reads markers and CRLF line ends', () => {
    const file = parseKnownHosts(`@revoked * ${a.type} ${a.base64}\r\n@cert-authority *.example ${b.type} ${b.base64}\r\n`)
    expect(file.entries.map((e) => e.marker)).toEqual(['revoked', 'cert-authority'])
    expect(file.unreadable).toEqual([])
  })
})

describe('hostFieldMatches', () => {
  it('matches plain names, [host]:port for other ports, globs and negations', () => {
    expect(hostFieldMatches('10.0.0.1', '10.0.0.1')).toBe(true)
    expect(hostFieldMatches('10.0.0.1', '[10.0.0.1]:2222')).toBe(false)
    expect(hostFieldMatches('[10.0.0.1]:2222', '[10.0.0.1]:2222')).toBe(true)
    expect(hostFieldMatches('*.example.com', 'db.example.com')).toBe(true)
    expect(hostFieldMatches('10.0.0.?', '10.0.0.7')).toBe(true)
    expect(hostFieldMatches('10.0.0.*,!10.0.0.9', '10.0.0.9')).toBe(false)
    expect(hostFieldMatches('a.b', 'aXb')).toBe(false)
  })

  it('matches hashed entries by HMAC-SHA1 of the name', () => {
    expect(hostFieldMatches(hashed('[127.0.1.1]:2222'), '[127.0.1.1]:2222')).toBe(true)
    expect(hostFieldMatches(hashed('[127.0.1.1]:2222'), '127.0.1.1')).toBe(false)
    expect(hostFieldMatches('|1|broken', '127.0.1.1')).toBe(false)
  })
})

describe('verifyHostKey', () => {
  it('trusts the recorded key, plain or hashed', () => {
    expect(verifyHostKey(parseKnownHosts(`[h]:2222 ${a.type} ${a.base64}`), 'h', 2222, a.blob).status).toBe('trusted')
    expect(verifyHostKey(parseKnownHosts(`${hashed('h')} ${a.type} ${a.base64}`), 'h', 22, a.blob).status).toBe('trusted')
  })

  it('calls a host without entries unknown, also when only another port is recorded', () => {
    expect(verifyHostKey(parseKnownHosts(''), 'h', 22, a.blob).status).toBe('unknown')
    expect(verifyHostKey(parseKnownHosts(`h ${a.type} ${a.base64}`), 'h', 2222, a.blob).status).toBe('unknown')
  })

  it('reports a different key of the same type as changed, with its line', () => {
    const verdict = verifyHostKey(parseKnownHosts(`# first\nh ${a.type} ${a.base64}`), 'h', 22, b.blob)
    expect(verdict).toMatchObject({status: 'changed', entry: {line: 2}})
  })

  it('rejects a revoked key even when a plain line trusts it', () => {
    const verdict = verifyHostKey(parseKnownHosts(`h ${a.type} ${a.base64}\n@revoked * ${a.type} ${a.base64}`), 'h', 22, a.blob)
    expect(verdict).toMatchObject({status: 'revoked', entry: {line: 2}})
  })

  it('ignores @cert-authority lines (host certificates are not supported)', () => {
    expect(verifyHostKey(parseKnownHosts(`@cert-authority h ${a.type} ${a.base64}`), 'h', 22, a.blob).status).toBe('unknown')
  })

  it('does not accept a key type the host is not recorded with', () => {
    const rsaLike = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.from([0, 0, 0, 1, 1])])
    expect(verifyHostKey(parseKnownHosts(`h ${a.type} ${a.base64}`), 'h', 22, rsaLike).status).toBe('other-type')
  })
})

describe('appendKnownHost', () => {
  it('appends a readable line and keeps the file private', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'shoal-kh-')), 'sub', 'known_hosts')
    appendKnownHost(file, '127.0.1.1', 2222, a.blob)
    appendKnownHost(file, '127.0.1.2', 22, b.blob)
    expect(readFileSync(file, 'utf8')).toBe(`[127.0.1.1]:2222 ${a.type} ${a.base64}\n127.0.1.2 ${b.type} ${b.base64}\n`)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(verifyHostKey(readKnownHosts(file), '127.0.1.2', 22, b.blob).status).toBe('trusted')
  })
})

describe('LineSplitter', () => {
  it('joins lines split across chunks, strips \\r\\n, and keeps a last line without newline', () => {
    const lines: string[] = []
    const splitter = new LineSplitter((line) => lines.push(line))
    for (const chunk of ['al', 'pha\r', '\nbe', 'ta\n\n', 'gam', 'ma']) splitter.push(Buffer.from(chunk))
    splitter.end()
    expect(lines).toEqual(['alpha', 'beta', '', 'gamma'])
  })

  it('keeps a multi-byte character split between chunks', () => {
    const lines: string[] = []
    const splitter = new LineSplitter((line) => lines.push(line))
    const bytes = Buffer.from('é€\n')
    for (const byte of bytes) splitter.push(Buffer.from([byte]))
    splitter.end()
    expect(lines).toEqual(['é€'])
  })
})
