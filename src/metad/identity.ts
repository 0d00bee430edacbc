// Who is asking: the caller's address (X-Forwarded-For only from trusted proxies), then its node in `mapping/`.
import {BlockList, isIP} from 'node:net'
import {tokenMatches} from '../registry/index.js'
import {ShoalError, EXIT} from '../errors.js'
import type {Mirror, NodeRef} from './mirror.js'

/** `::ffff:127.0.1.5` (an IPv4 caller on a dual-stack socket) → `127.0.1.5`. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

export class TrustedProxies {
  private readonly list = new BlockList()
  readonly cidrs: string[]

  constructor(cidrs: readonly string[]) {
    this.cidrs = [...cidrs]
    for (const cidr of cidrs) {
      const [address = '', bits, extra] = cidr.split('/')
      const family = isIP(address)
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits)
      if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32) || bits === '') {
        throw new ShoalError(`--trusted-proxy ${cidr}: expected an address or CIDR such as 10.0.0.0/8 or fd00::/8`, 'invalid-flag', EXIT.usage)
      }
      this.list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4')
    }
  }

  trusts(address: string): boolean {
    const family = isIP(address)
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4')
  }
}

/**
 * The address a request comes from. Behind trusted proxies the nearest address in X-Forwarded-For that is not a
 * trusted proxy (walking from the right: entries further left were written by the client and prove nothing).
 */
export function callerAddress(socketAddress: string, forwardedFor: string | undefined, proxies: TrustedProxies): string {
  let address = plainAddress(socketAddress)
  if (forwardedFor === undefined || !proxies.trusts(address)) return address
  const hops = forwardedFor.split(',').map((s) => plainAddress(s.trim())).filter((s) => s.length > 0)
  for (let i = hops.length - 1; i >= 0; i--) {
    address = hops[i]!
    if (isIP(address) === 0 || !proxies.trusts(address)) return address
  }
  return address
}

/** Why a caller gets no view: the HTTP status and the error code it is answered with. */
export class IdentityError extends ShoalError {
  constructor(message: string, code: string, readonly status: number) {
    super(message, code)
    this.name = 'IdentityError'
  }
}

/**
 * The node a caller is. One node at the address: that node (`?node=` must name it if given). Several: the caller must
 * name one and prove it with the token shoal placed in that node's home. Nothing about other nodes is ever revealed.
 */
export function identify(mirror: Mirror, address: string, nodeParam: string | undefined, token: string | undefined): NodeRef {
  const nodes = mirror.nodesAt(address)
  if (nodes.length === 0 || (nodes.length === 1 && nodeParam !== undefined && nodes[0]!.nodeId !== nodeParam)) {
    throw new IdentityError(`no node is registered at ${address}`, 'unknown-node', 404)
  }
  if (nodes.length === 1) return nodes[0]!
  if (nodeParam === undefined || token === undefined) {
    throw new IdentityError(`several nodes share ${address}: name yours with ?node=ID and send its token (X-Shoal-Token)`, 'ambiguous-node', 409)
  }
  // A node id that is not here and a wrong token get the same answer: the caller learns nothing about its neighbours.
  const node = nodes.find((n) => n.nodeId === nodeParam)
  const key = node && mirror.tokenKey(node.cluster)
  if (!node || key === undefined || !tokenMatches(key, node.cluster, node.nodeId, token)) {
    throw new IdentityError(`the token does not prove node ${nodeParam} at ${address}`, 'invalid-token', 403)
  }
  return node
}
