// Health checks: wait until a node passes its health_check `healthy_threshold` times in a row, within `start_period`.
import {DEFAULTS, type HealthCheckSpec} from '../spec/types.js'
import type {ExecResult} from '../transport/transport.js'
import {parseDuration} from '../util/units.js'

export interface HealthTiming {
  intervalMs: number
  timeoutMs: number
  threshold: number
  startPeriodMs: number
}

export function healthTiming(check: HealthCheckSpec): HealthTiming {
  return {
    intervalMs: parseDuration(check.interval ?? DEFAULTS.healthInterval) ?? 10_000,
    timeoutMs: parseDuration(check.timeout ?? DEFAULTS.healthTimeout) ?? 3000,
    threshold: Math.max(1, check.healthy_threshold ?? DEFAULTS.healthyThreshold),
    startPeriodMs: parseDuration(check.start_period ?? DEFAULTS.healthStartPeriod) ?? 120_000,
  }
}

export type HealthOutcome = {healthy: true; tries: number} | {healthy: false; tries: number; last: ExecResult | Error}

/** Try `probe` every interval until `threshold` consecutive passes; give up once start_period has passed. */
export async function waitHealthy(probe: (timeoutMs: number) => Promise<ExecResult>, timing: HealthTiming): Promise<HealthOutcome> {
  const deadline = Date.now() + timing.startPeriodMs
  let passes = 0
  let tries = 0
  let last: ExecResult | Error = new Error('never checked')
  for (;;) {
    tries++
    try {
      const result = await probe(timing.timeoutMs)
      last = result
      passes = result.exitCode === 0 ? passes + 1 : 0
    } catch (error) {
      last = error as Error
      passes = 0
    }
    if (passes >= timing.threshold) return {healthy: true, tries}
    if (Date.now() + timing.intervalMs > deadline) return {healthy: false, tries, last}
    await new Promise((resolve) => setTimeout(resolve, timing.intervalMs))
  }
}

export function describeProbe(last: ExecResult | Error): string {
  if (last instanceof Error) return last.message
  const how = last.timedOut ? 'timed out' : last.signal ? `killed by ${last.signal}` : `exit ${String(last.exitCode)}`
  const tail = `${last.stderr ?? ''}${last.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ')
  return tail ? `${how}: ${tail}` : how
}
