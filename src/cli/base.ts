// The base of every shoal command: `--json`, documented exit codes kept under `--json`, errors as one clear line.
import {Command} from '@oclif/core'
import {EXIT, ShoalError} from '../errors.js'
import {markPhase} from '../util/phases.js'
import {quoteControl} from '../util/text.js'

/** Library error classes whose messages are written for people. */
const KNOWN_ERRORS = new Set(['RegistryError', 'StaleError', 'StoreError', 'TreeDecodeError'])

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  public override async init(): Promise<void> {
    markPhase('command loaded')
    await super.init()
  }

  /** Every line a command logs may echo input (names, paths, values): control characters are quoted. */
  public override log(message = '', ...args: unknown[]): void {
    super.log(quoteControl(message), ...args)
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}; code?: string}): Promise<unknown> {
    // Under --json oclif drops a custom exit code unless it is copied onto the error (see LIBRARY-NOTES).
    if (err.oclif?.exit !== undefined && err.exitCode === undefined) err.exitCode = err.oclif.exit
    // Errors that are values (registry, store, input) are one line for a person, not a stack trace.
    if (!(err instanceof ShoalError) && typeof err.code === 'string' && err.oclif === undefined && KNOWN_ERRORS.has(err.name)) {
      return this.catch(new ShoalError(err.message, err.code.toLowerCase().replace(/_/g, '-'), EXIT.failure))
    }
    if (err instanceof ShoalError) {
      if (this.jsonEnabled()) {
        this.logJson({error: {code: err.code, message: err.message}})
        this.exit(err.exitCode)
      }
      // Messages quote input (paths, keys, values): a spec must not be able to drive the terminal through them.
      this.logToStderr(`shoal: ${quoteControl(err.message)}`)
      this.exit(err.exitCode)
    }
    return super.catch(err)
  }
}
