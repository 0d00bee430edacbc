// Line diffs: Myers' O(ND) shortest edit script and the unified format (@@ hunks, 3 lines of context).

type Edit = {op: ' ' | '-' | '+'; line: string}

/** Lines keep their terminator so a missing final newline is a difference too. */
function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split('\n').map((l) => `${l}\n`)
  if (text.endsWith('\n')) lines.pop()
  else lines[lines.length - 1] = lines[lines.length - 1]!.slice(0, -1)
  return lines
}

/** The shortest edit script from a to b (common prefix and suffix trimmed first: config changes are local). */
export function diffLines(a: readonly string[], b: readonly string[]): Edit[] {
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  const A = a.slice(head, a.length - tail)
  const B = b.slice(head, b.length - tail)
  const middle = myers(A, B)
  return [...a.slice(0, head).map((line) => ({op: ' ' as const, line})), ...middle, ...a.slice(a.length - tail).map((line) => ({op: ' ' as const, line}))]
}

function myers(a: readonly string[], b: readonly string[]): Edit[] {
  const n = a.length
  const m = b.length
  const max = n + m
  if (max === 0) return []
  const offset = max
  const v = new Int32Array(2 * max + 2)
  const trace: Int32Array[] = []
  let found = false
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice())
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1
      let y = x - k
      while (x < n && y < m && a[x] === b[y]) {
        x++
        y++
      }
      v[offset + k] = x
      if (x >= n && y >= m) {
        found = true
        break
      }
    }
  }
  // Walk the trace backwards from (n, m) to recover the edits.
  const edits: Edit[] = []
  let x = n
  let y = m
  for (let d = trace.length - 1; d >= 0; d--) {
    const vd = trace[d]!
    const k = x - y
    const prevK = k === -d || (k !== d && vd[offset + k - 1]! < vd[offset + k + 1]!) ? k + 1 : k - 1
    const prevX = d === 0 ? 0 : vd[offset + prevK]!
    const prevY = prevX - prevK
    while (x > prevX && y > prevY) {
      edits.push({op: ' ', line: a[x - 1]!})
      x--
      y--
    }
    if (d > 0) {
      if (x === prevX) edits.push({op: '+', line: b[y - 1]!})
      else edits.push({op: '-', line: a[x - 1]!})
      x = prevX
      y = prevY
    }
  }
  return edits.reverse()
}

function formatLine(e: Edit): string {
  return e.line.endsWith('\n') ? `${e.op}${e.line}` : `${e.op}${e.line}\n\\ No newline at end of file\n`
}

/** A unified diff of two texts; empty when they are equal. */
export function unifiedDiff(before: string, after: string, fromName: string, toName: string, context = 3): string {
  if (before === after) return ''
  const edits = diffLines(splitLines(before), splitLines(after))
  const out: string[] = [`--- ${fromName}\n`, `+++ ${toName}\n`]
  // Positions (in a and b) of each edit, then hunks = changed edits with `context` unchanged ones around them.
  const posA: number[] = []
  const posB: number[] = []
  let ia = 0
  let ib = 0
  for (const e of edits) {
    posA.push(ia)
    posB.push(ib)
    if (e.op !== '+') ia++
    if (e.op !== '-') ib++
  }
  let i = 0
  while (i < edits.length) {
    if (edits[i]!.op === ' ') {
      i++
      continue
    }
    const start = Math.max(0, i - context)
    let end = i
    // Extend while the next change is within 2*context unchanged lines of this one.
    for (;;) {
      while (end < edits.length && edits[end]!.op !== ' ') end++
      let gap = end
      while (gap < edits.length && edits[gap]!.op === ' ') gap++
      if (gap < edits.length && gap - end <= 2 * context) end = gap
      else break
    }
    const stop = Math.min(edits.length, end + context)
    const hunk = edits.slice(start, stop)
    const aLen = hunk.filter((e) => e.op !== '+').length
    const bLen = hunk.filter((e) => e.op !== '-').length
    const aStart = aLen === 0 ? posA[start]! : posA[start]! + 1
    const bStart = bLen === 0 ? posB[start]! : posB[start]! + 1
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@\n`)
    for (const e of hunk) out.push(formatLine(e))
    i = stop
  }
  return out.join('')
}
