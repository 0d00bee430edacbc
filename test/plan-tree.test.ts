// The metadata tree: layout, round trip through stateFromTree, minimal diffs, node-grouped chunks, and line diffs.
import {describe, expect, it} from 'vitest'
import {unifiedDiff} from '../src/plan/diff.js'
import {chunkChanges, diffTrees, nodeOfKey, planCluster, stateFromTree, TreeDecodeError, treeOf} from '../src/plan/index.js'
import {applied, hosts, zkSpec, zkTemplates} from './support/plan-fixtures.js'

const created = () => planCluster({spec: zkSpec(), templates: zkTemplates(), inventory: hosts(5), operation: {kind: 'create'}})

describe('tree layout', () => {
  it('writes the documented keys for a cluster and its nodes', () => {
    const tree = treeOf(created().desired!)
    expect(tree['clusters/zk-main/cluster/revision']).toBe('1')
    expect(tree['clusters/zk-main/hosts/zk/zk-main-zk-2/sid']).toBe('2')
    expect(tree['clusters/zk-main/hosts/zk/zk-main-zk-2/state']).toBe('active')
    expect(tree['clusters/zk-main/ids/zk/sid_high']).toBe('3')
    expect(tree['clusters/zk-main/files/zk-main-zk-1/data%2Fmyid']).toBe('1\n')
    expect(tree['clusters/zk-main/cluster/templates/zk/myid.liquid']).toBe('{{ self.sid }}\n')
    expect(tree['mapping/10.0.0.1/zk-main/zk-main-zk-1']).toBe('zk-main/zk-main-zk-1')
  })

  it('lists keys in sorted order', () => {
    const keys = Object.keys(treeOf(created().desired!))
    expect(keys).toEqual([...keys].sort((a, b) => (a < b ? -1 : 1)))
  })

  it('registers joining nodes under adding-hosts while the operation is in flight, and only then', () => {
    const current = applied(created())
    const p = planCluster({spec: current.spec!, templates: zkTemplates(), inventory: hosts(5), current, operation: {kind: 'scale', role: 'zk', add: 1}})
    const register = p.steps[0]!.changes!.puts.map(([k]) => k)
    expect(register).toContain('clusters/zk-main/adding-hosts/zk/zk-main-zk-4/ip')
    expect(register).toContain('clusters/zk-main/hosts/zk/zk-main-zk-4/state')
    expect(p.tree.some(([k]) => k.includes('adding-hosts'))).toBe(false)
  })
})

describe('stateFromTree', () => {
  it('round-trips a state', () => {
    const state = created().desired!
    expect(stateFromTree('zk-main', treeOf(state))).toEqual(state)
  })

  it('keeps the declared role order of the spec', () => {
    const spec = zkSpec()
    spec.roles = {zz: {...spec.roles.zk!, count: 1, files: []}, aa: {...spec.roles.zk!, count: 1, files: []}}
    const p = planCluster({spec, templates: zkTemplates(), inventory: hosts(5), operation: {kind: 'create'}})
    expect(Object.keys(applied(p).spec!.roles)).toEqual(['zz', 'aa'])
  })

  it('ignores keys of other clusters', () => {
    const tree = {...treeOf(created().desired!), 'clusters/zk-mainer/cluster/name': 'zk-mainer'}
    expect(stateFromTree('zk-main', tree).name).toBe('zk-main')
  })

  it('refuses a node record with a missing field', () => {
    const tree = treeOf(created().desired!)
    delete tree['clusters/zk-main/hosts/zk/zk-main-zk-1/sid']
    expect(() => stateFromTree('zk-main', tree)).toThrow(TreeDecodeError)
  })
})

describe('diffTrees', () => {
  it('writes changed and new keys and deletes vanished ones', () => {
    expect(diffTrees({a: '1', b: '2', c: '3'}, {a: '1', b: '9', d: '4'})).toEqual({puts: [['b', '9'], ['d', '4']], deletes: ['c']})
  })

  it('touches O(1) keys when a 1,000-node cluster grows by one and no file changes', () => {
    const spec = zkSpec({count: 1000, server_id: {upper_bound: 2000}, files: [{template: 'zk/myid.liquid', dest: 'data/myid'}]})
    const first = planCluster({spec, templates: zkTemplates(), inventory: hosts(1001), operation: {kind: 'create'}})
    const current = applied(first)
    const p = planCluster({spec: current.spec!, templates: zkTemplates(), inventory: hosts(1001), current, operation: {kind: 'scale', role: 'zk', add: 1}})
    const perNode = new Set(p.changes.puts.map(([k]) => nodeOfKey(k)).filter(Boolean))
    expect([...perNode]).toEqual(['zk-main-zk-1001'])
    expect(p.changes.puts.filter(([k]) => nodeOfKey(k) === undefined).map(([k]) => k)).toEqual([
      'clusters/zk-main/cluster/revision', 'clusters/zk-main/cluster/spec', 'clusters/zk-main/cluster/spec_hash', 'clusters/zk-main/ids/zk/node_seq', 'clusters/zk-main/ids/zk/sid_high',
    ])
    expect(p.changes.deletes).toEqual([])
  })
})

describe('chunkChanges', () => {
  it('keeps one node\'s keys in one chunk', () => {
    const p = created()
    const chunks = chunkChanges(p.changes, 20)
    const chunkOf = new Map<string, number>()
    chunks.forEach((ops, i) => {
      for (const op of ops) {
        const node = nodeOfKey(op.key)
        if (!node) continue
        expect(chunkOf.get(node) ?? i).toBe(i)
        chunkOf.set(node, i)
      }
    })
    expect(chunks.flat()).toHaveLength(p.changes.puts.length)
    expect(chunks.every((c) => c.length <= 20)).toBe(true)
  })
})

describe('unifiedDiff', () => {
  it('writes @@ hunks with three lines of context', () => {
    const before = 'a\nb\nc\nd\ne\nf\ng\n'
    const after = 'a\nb\nc\nD\ne\nf\ng\n'
    expect(unifiedDiff(before, after, 'old', 'new')).toBe('--- old\n+++ new\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n')
  })

  it('splits far-apart changes into separate hunks', () => {
    const lines = Array.from({length: 20}, (_, i) => `l${i}`)
    const after = lines.map((l, i) => (i === 1 || i === 18 ? `${l}!` : l))
    const diff = unifiedDiff(`${lines.join('\n')}\n`, `${after.join('\n')}\n`, 'a', 'b')
    expect(diff.match(/^@@ .* @@$/gm)).toEqual(['@@ -1,5 +1,5 @@', '@@ -16,5 +16,5 @@'])
  })

  it('diffs a new file against nothing and marks a missing final newline', () => {
    expect(unifiedDiff('', 'x\ny', '/dev/null', 'b')).toBe('--- /dev/null\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n\\ No newline at end of file\n')
  })

  it('is empty for equal texts', () => {
    expect(unifiedDiff('same\n', 'same\n', 'a', 'b')).toBe('')
  })

  it('finds a minimal edit for interleaved changes', () => {
    const diff = unifiedDiff('a\nb\nc\na\nb\nb\na\n', 'c\nb\na\nb\na\nc\n', 'x', 'y')
    const changed = diff.split('\n').filter((l) => /^[-+][^-+]/.test(l) || l === '-' || l === '+')
    expect(changed).toHaveLength(5)
  })
})
