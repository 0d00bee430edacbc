// metad's counters in the Prometheus text format (`GET /metrics`): a handful of series, no client library needed.

/** Upper bounds (seconds) of the wake latency histogram: from a registry change reaching metad to the answer sent. */
const WAKE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

export interface Gauges {
  openLongPolls: number
  registryRevision: number
  stale: boolean
  clusters: number
  resyncs: Record<string, number>
}

export class Metrics {
  private readonly requests = new Map<number, number>()
  private readonly wakeCounts = WAKE_BUCKETS.map(() => 0)
  private wakeCount = 0
  private wakeSum = 0

  request(status: number): void {
    this.requests.set(status, (this.requests.get(status) ?? 0) + 1)
  }

  woke(seconds: number): void {
    this.wakeCount++
    this.wakeSum += seconds
    for (const [i, bound] of WAKE_BUCKETS.entries()) if (seconds <= bound) this.wakeCounts[i]!++
  }

  render(gauges: Gauges): string {
    const out: string[] = []
    const metric = (name: string, type: string, help: string, samples: string[]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples)
    }
    metric('shoal_metad_requests_total', 'counter', 'Requests answered, by HTTP status.',
      [...this.requests].sort(([a], [b]) => a - b).map(([status, n]) => `shoal_metad_requests_total{code="${status}"} ${n}`))
    metric('shoal_metad_long_polls_open', 'gauge', 'Long-polls waiting for a change.', [`shoal_metad_long_polls_open ${gauges.openLongPolls}`])
    metric('shoal_metad_wake_latency_seconds', 'histogram', 'From a registry change reaching metad to a woken long-poll answered (coalescing included).', [
      ...WAKE_BUCKETS.map((bound, i) => `shoal_metad_wake_latency_seconds_bucket{le="${bound}"} ${this.wakeCounts[i]!}`),
      `shoal_metad_wake_latency_seconds_bucket{le="+Inf"} ${this.wakeCount}`,
      `shoal_metad_wake_latency_seconds_sum ${this.wakeSum}`,
      `shoal_metad_wake_latency_seconds_count ${this.wakeCount}`,
    ])
    metric('shoal_metad_registry_revision', 'gauge', 'The registry revision metad has seen.', [`shoal_metad_registry_revision ${gauges.registryRevision}`])
    metric('shoal_metad_registry_stale', 'gauge', '1 while the registry cannot be reached and answers are the last state read.', [`shoal_metad_registry_stale ${gauges.stale ? 1 : 0}`])
    metric('shoal_metad_clusters', 'gauge', 'Registered clusters served.', [`shoal_metad_clusters ${gauges.clusters}`])
    metric('shoal_metad_registry_reads_total', 'counter', 'Whole reads of the registry, by reason (start, compacted watch, registry back).',
      Object.entries(gauges.resyncs).map(([reason, n]) => `shoal_metad_registry_reads_total{reason="${reason}"} ${n}`))
    return `${out.join('\n')}\n`
  }
}
