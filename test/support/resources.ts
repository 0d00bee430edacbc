// What a test file started (etcd servers, sandboxes) and has not stopped yet: stopped after the file's own afterAll,
// so a setup that throws halfway (one of two servers started) still leaves nothing running.
const open = new Map<number, {what: string; stop: () => Promise<void>}>()
let next = 0

/** Remember how to stop a started resource; the returned function forgets it (call it once stopped). */
export function track(what: string, stop: () => Promise<void>): () => void {
  const id = next++
  open.set(id, {what, stop})
  return () => open.delete(id)
}

/** Stop whatever is still open; failures are collected so one stuck resource does not keep the others running. */
export async function stopOpenResources(): Promise<string[]> {
  const failures: string[] = []
  for (const [id, resource] of [...open].reverse()) {
    open.delete(id)
    await resource.stop().catch((error: unknown) => failures.push(`${resource.what}: ${(error as Error).message}`))
  }
  return failures
}
