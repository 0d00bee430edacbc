// `shoal lint`: check cluster specs and host inventories; thin over lintPaths() and the formatters.
import {writeFileSync} from 'node:fs'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {EXIT, ShoalError} from '../errors.js'

export default class Lint extends BaseCommand {
  static override summary = 'Check cluster specs and host inventories against the schema and the semantic rules'
  static override description = `Lints files, directories (every *.yaml and *.yml below them; documents whose kind is not Cluster or Hosts are skipped with a note) and \`-\` for standard input.
Every problem has file:line:col, a rule id and a severity. Exit codes: 0 no problems, 1 problems found (warnings only with --strict), 2 usage error (bad flag, path not found).`

  static override examples = [
    '<%= config.bin %> lint specs/',
    '<%= config.bin %> lint specs/zookeeper.yaml hosts.yaml --strict',
    'cat spec.yaml | <%= config.bin %> lint -',
    '<%= config.bin %> lint specs/ --format sarif --output shoal.sarif',
  ]

  static override strict = false
  static override args = {
    paths: Args.string({description: 'Files or directories to lint, or - for standard input (default: the current directory)'}),
  }

  static override flags = {
    format: Flags.string({char: 'f', description: 'Output format', options: ['text', 'json', 'sarif', 'junit', 'github'], default: 'text'}),
    output: Flags.string({char: 'o', description: 'Write the report to this file instead of standard output'}),
    strict: Flags.boolean({description: 'Warnings fail the run too (exit 1)', default: false}),
  }

  async run(): Promise<unknown> {
    const {argv, flags} = await this.parse(Lint)
    const [{lintPaths, lintFailed, LintPathError}, {formatLint}, {lintJson}] = await Promise.all([
      import('../lint/lint.js'), import('../lint/format/index.js'), import('../lint/format/json.js'),
    ])
    let result
    try {
      result = await lintPaths(argv as string[])
    } catch (err) {
      if (err instanceof LintPathError) throw new ShoalError(err.message, err.code, EXIT.usage)
      throw err
    }
    const failed = lintFailed(result, {strict: flags.strict})
    // Set, not this.exit(): under --json oclif prints the returned object after run() returns.
    process.exitCode = failed ? EXIT.failure : EXIT.ok
    if (this.jsonEnabled()) return lintJson(result, failed)

    const toFile = flags.output !== undefined
    const color = !toFile && process.stdout.isTTY === true && process.env.NO_COLOR === undefined
    const report = formatLint(result, flags.format as 'text', {color, strict: flags.strict, failed, cwd: process.cwd(), version: this.config.version})
    if (toFile) {
      try {
        writeFileSync(flags.output!, report)
      } catch (err) {
        throw new ShoalError(`cannot write ${flags.output}: ${(err as Error).message}`, 'output-unwritable', EXIT.usage)
      }
    } else {
      process.stdout.write(report)
    }
    return undefined
  }
}
