// What scripts did per node in an operation that did not finish, read from its recorded plan and progress marks: the
// planner's input for fixing forward and rolling back (plan/types.ts NodeFacts), carried from one operation to the next.
import type {Step} from '../plan/steps.js'
import type {NodeFacts, Plan} from '../plan/types.js'
import type {LifecycleService} from '../spec/types.js'
import type {Progress} from './record.js'

type Facts = Record<string, NodeFacts>

function entry(facts: Facts, node: string): NodeFacts {
  return (facts[node] ??= {done: [], touched: []})
}

function add(list: LifecycleService[], service: LifecycleService): void {
  if (!list.includes(service)) list.push(service)
}

/**
 * Per node: the services that finished (`done`) or began (`touched`) in the plan's steps, and whether its files may
 * differ from the registered ones (an install after a commit that landed did not finish there). A `start` counts as
 * finished only once the node's health step after it passed too: a node that started but never got healthy starts again.
 */
export function factsOf(plan: Pick<Plan, 'steps'>, progress: Progress): Facts {
  const facts: Facts = {}
  const finished = (step: Step, node: string): boolean => progress.steps.has(step.id) || progress.nodes.get(step.id)?.get(node) === 'done'
  const began = (step: Step, node: string): boolean => finished(step, node) || progress.nodes.get(step.id)?.has(node) === true
  let committed = false
  for (const step of plan.steps) {
    if (step.kind === 'commit') committed = progress.steps.has(step.id)
    else if (step.kind === 'install') {
      for (const node of step.nodes) {
        if (finished(step, node)) entry(facts, node).filesStale = false
        else if (committed) entry(facts, node).filesStale = true
      }
    } else if (step.kind === 'run' && step.service !== undefined) {
      for (const node of step.nodes) {
        if (began(step, node)) add(entry(facts, node).touched, step.service)
        if (finished(step, node)) add(entry(facts, node).done, step.service)
      }
    } else if (step.kind === 'health') {
      for (const node of step.nodes) {
        if (finished(step, node)) continue
        const f = entry(facts, node)
        f.done = f.done.filter((s) => s !== 'start')
        f.unhealthy = true
      }
    }
  }
  return facts
}

/**
 * Facts of an older operation, then of a newer one: what either did counts, except a start the newer one found
 * unhealthy; the newer one says whether files are stale where it installed or committed.
 */
export function mergeFacts(older: Facts | undefined, newer: Facts): Facts {
  const out: Facts = {}
  for (const node of new Set([...Object.keys(older ?? {}), ...Object.keys(newer)])) {
    const a = older?.[node]
    const b = newer[node]
    const done = [...new Set([...(a?.done ?? []), ...(b?.done ?? [])])].filter((s) => !(b?.unhealthy && s === 'start'))
    const touched = [...new Set([...(a?.touched ?? []), ...(b?.touched ?? []), ...done])]
    const stale = b?.filesStale ?? a?.filesStale
    out[node] = {done, touched, ...(stale ? {filesStale: true} : {}), ...(b?.unhealthy && !done.includes('start') ? {unhealthy: true} : {})}
  }
  return out
}
