// `shoal logs`: the output of every script an operation ran, per step and node, kept in the registry.
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'
import {storeFlags, openStoreFromFlags} from '../cli/store-flags.js'
import type {NodeLog, RunSummary, StepTiming} from '../operation/history.js'

/** How often --follow looks for new output. */
const FOLLOW_POLL_MS = 500

export default class Logs extends BaseCommand {
  static override summary = "Print the output of an operation's scripts, per step and node"
  static override description = `Every script's stdout and stderr (reloads included) is kept per operation, step and node: the last 2000 lines or 64 KiB per node and step, secrets redacted. The last 10 operations of a cluster are kept; destroy removes them with it.
Without --operation: the unfinished operation, else the last one. Lines read \`<node> | line\` (stdout) and \`<node> ! line\` (stderr) under a heading per step with its timing. --follow keeps printing as nodes finish their steps until the operation ends.`

  static override examples = [
    '<%= config.bin %> logs zk-main',
    '<%= config.bin %> logs zk-main --step 05-run-start-zk --node zk-main-zk-2',
    '<%= config.bin %> logs zk-main --follow',
  ]

  static override args = {cluster: Args.string({description: 'Cluster name', required: true})}

  static override flags = {
    operation: Flags.string({description: 'Operation id (see --list); default: the unfinished one, else the last'}),
    step: Flags.string({description: 'Only this step id (e.g. 05-run-start-zk)'}),
    node: Flags.string({description: 'Only this node id'}),
    follow: Flags.boolean({char: 'f', description: 'Keep printing new output until the operation ends', default: false}),
    list: Flags.boolean({description: 'List the kept operations instead', default: false}),
    ...storeFlags,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Logs)
    const {readHistory, readLogs, readTimings, readRun} = await import('../operation/history.js')
    const store = await openStoreFromFlags(flags)
    try {
      const history = await readHistory(store, args.cluster)
      if (flags.list) {
        if (this.jsonEnabled()) return {cluster: args.cluster, operations: history}
        if (history.length === 0) this.log(`${args.cluster}: no operation is recorded.`)
        for (const r of history) this.log(`${r.id}  ${r.started}  ${r.result.padEnd(10)}  ${r.title}${r.supersededBy ? ` (superseded by ${r.supersededBy})` : ''}`)
        return undefined
      }
      const run = flags.operation !== undefined ? history.find((r) => r.id === flags.operation) : ([...history].reverse().find((r) => r.result === 'running' && !r.readOnly) ?? history.at(-1))
      if (!run) {
        throw new ShoalError(
          flags.operation !== undefined ? `no operation ${flags.operation} is kept for ${args.cluster} (shoal logs ${args.cluster} --list)` : `${args.cluster}: no operation is recorded in ${store.description}`,
          'no-logs',
          EXIT.failure,
        )
      }
      const wanted = (l: {step: string; node?: string}): boolean => (flags.step === undefined || l.step === flags.step) && (flags.node === undefined || l.node === undefined || l.node === flags.node)
      const read = async (): Promise<{timings: StepTiming[]; logs: NodeLog[]}> => ({
        timings: (await readTimings(store, args.cluster, run.id)).filter(wanted),
        logs: (await readLogs(store, args.cluster, run.id)).filter(wanted),
      })
      if (this.jsonEnabled()) return {cluster: args.cluster, operation: run, ...(await read())}
      this.log(`Operation "${run.title}" (${run.id}), started ${run.started}: ${run.result}${run.supersededBy ? ` (superseded by ${run.supersededBy})` : ''}`)
      const seen = new Set<string>()
      const print = ({timings, logs}: {timings: StepTiming[]; logs: NodeLog[]}): void => {
        for (const t of timings) {
          const done = t.result !== 'running'
          const key = `t:${t.step}:${done}`
          if (seen.has(key)) continue
          seen.add(key)
          if (!done) this.log(`==> ${t.step}: ${t.title} (running)`)
          for (const log of logs.filter((l) => l.step === t.step && !seen.has(`l:${l.step}:${l.node}`))) {
            seen.add(`l:${log.step}:${log.node}`)
            if (log.dropped) this.log(`${log.node} … ${log.dropped} earlier line${log.dropped === 1 ? '' : 's'} not kept`)
            for (const line of log.lines) this.log(`${log.node} ${line}`)
            if (log.exit && log.exit.exitCode !== 0) this.log(`${log.node} ${log.exit.timedOut ? 'timed out' : log.exit.signal ? `killed by ${log.exit.signal}` : `exited ${String(log.exit.exitCode)}`}`)
          }
          if (done) this.log(`==> ${t.step}: ${t.title}: ${t.result} in ${String(t.seconds)}s`)
        }
      }
      print(await read())
      if (!flags.follow) return undefined
      const {readLock} = await import('../registry/index.js')
      // Until it ends; an operation whose process died stays `running` in the record, but its lock is gone with it.
      const going = async (r: RunSummary | undefined): Promise<boolean> => r?.result === 'running' && (r.readOnly === true || (await readLock(store, args.cluster)) !== undefined)
      for (let current: RunSummary | undefined = run; await going(current); current = await readRun(store, args.cluster, run.id)) {
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS))
        print(await read())
      }
      print(await read())
      const end = await readRun(store, args.cluster, run.id)
      this.log(`Operation ${run.id} ended: ${end === undefined ? 'gone (the cluster was destroyed)' : end.result === 'running' ? 'its process is gone (see shoal status)' : end.result}`)
      return undefined
    } finally {
      await store.close()
    }
  }
}
