// Every rule `shoal lint` reports: a stable id, its severity and what it means. The README's rule table is generated from this.
import type {Severity} from './problem.js'

export type RuleGroup = 'file' | 'yaml' | 'schema' | 'spec' | 'template' | 'hosts'

export interface Rule {
  id: string
  severity: Severity
  group: RuleGroup
  description: string
}

export const RULES = [
  // Reading the file.
  {id: 'file-unreadable', severity: 'error', group: 'file', description: 'The file cannot be read: missing, a directory, no permission, a symbolic link loop, or not a regular file (a FIFO or a device such as `/dev/zero`; pipe streams to `-`).'},
  {id: 'file-too-large', severity: 'error', group: 'file', description: 'The file (or standard input) is larger than 1 MiB; specs are small, so this is a mistake or an attack. Reading stops at the limit.'},
  {id: 'file-encoding', severity: 'error', group: 'file', description: 'The file is not UTF-8 text: invalid UTF-8, NUL bytes or other control characters.'},
  // Parsing YAML.
  {id: 'yaml-syntax', severity: 'error', group: 'yaml', description: 'The YAML does not parse (bad indentation, unclosed brackets or quotes, tabs as indentation, unresolved alias...).'},
  {id: 'yaml-warning', severity: 'warning', group: 'yaml', description: 'The YAML parses but the parser warns about it (e.g. an unknown tag such as `!foo`).'},
  {id: 'yaml-duplicate-key', severity: 'error', group: 'yaml', description: 'A key appears twice in one mapping; YAML would silently keep only one.'},
  {id: 'yaml-multiple-documents', severity: 'error', group: 'yaml', description: 'The file holds more than one YAML document (`---`); put each spec in its own file.'},
  {id: 'yaml-not-mapping', severity: 'error', group: 'yaml', description: 'The document is empty, or its top level is a list or a scalar instead of a mapping.'},
  {id: 'yaml-too-deep', severity: 'error', group: 'yaml', description: 'Mappings and lists nest deeper than 64 levels.'},
  {id: 'yaml-alias-limit', severity: 'error', group: 'yaml', description: 'Aliases (`*a`) expand to too much data: an alias bomb ("billion laughs").'},
  // Which document is this.
  {id: 'kind-unknown', severity: 'error', group: 'schema', description: 'A file named on the command line has a `kind` other than `Cluster` or `Hosts`. (Files found in directories are skipped with a note instead.)'},
  // JSON Schema (schemas/*.schema.json).
  {id: 'schema-unknown-key', severity: 'error', group: 'schema', description: 'A key the schema does not define (often a typo; a suggestion is given).'},
  {id: 'schema-required', severity: 'error', group: 'schema', description: 'A required key is missing.'},
  {id: 'schema-type', severity: 'error', group: 'schema', description: 'A value has the wrong type (e.g. a number where a string is expected; file modes must be quoted strings).'},
  {id: 'schema-enum', severity: 'error', group: 'schema', description: 'A value is not one of the allowed values (e.g. `on`, `order`, `apiVersion`, `kind`).'},
  {id: 'schema-pattern', severity: 'error', group: 'schema', description: 'A string does not have the required form (names, file modes, owners, addresses).'},
  {id: 'schema-range', severity: 'error', group: 'schema', description: 'A number, string, list or mapping is outside its allowed range or size.'},
  {id: 'schema-invalid', severity: 'error', group: 'schema', description: 'Any other schema violation.'},
  // Cluster semantics the schema cannot express.
  {id: 'unit-invalid', severity: 'error', group: 'spec', description: 'A size (`512Mi`), duration (`30s`) or percentage (`25%`) does not parse or is out of range.'},
  {id: 'role-name', severity: 'error', group: 'spec', description: 'A role name is not a DNS label (lowercase letters, digits, `-`, at most 63 characters); the schema says so too, so editors flag it.'},
  {id: 'scale-inverted', severity: 'error', group: 'spec', description: '`scale.min` is greater than `scale.max`.'},
  {id: 'count-out-of-scale', severity: 'error', group: 'spec', description: "A role's `count` lies outside its `scale` bounds."},
  {id: 'server-id-range', severity: 'error', group: 'spec', description: 'The server id range (`upper_bound - start + 1`) is empty or cannot hold the largest allowed count.'},
  {id: 'file-dest-duplicate', severity: 'error', group: 'spec', description: 'Two files of one role have the same destination.'},
  {id: 'env-type-mismatch', severity: 'error', group: 'spec', description: "An env parameter's default or enum value does not have the declared type."},
  {id: 'env-default-invalid', severity: 'error', group: 'spec', description: "An env parameter's default is outside its enum, minimum/maximum or pattern."},
  {id: 'env-range-inverted', severity: 'error', group: 'spec', description: "An env parameter's minimum is greater than its maximum."},
  {id: 'env-pattern-invalid', severity: 'error', group: 'spec', description: "An env parameter's pattern is not a valid regular expression."},
  {id: 'env-name-collision', severity: 'error', group: 'spec', description: 'Two env parameters reach scripts as the same `SHOAL_ENV_<NAME>` variable (they differ only in case, `-` or `_`).'},
  {id: 'env-secret-short', severity: 'warning', group: 'spec', description: 'A secret is shorter than 4 characters: it is hidden wherever shoal knows it prints it, but not searched for in free text such as script output.'},
  {id: 'env-secret-default', severity: 'warning', group: 'spec', description: 'A `secret: true` parameter has a non-empty `default`: the secret would live in the spec (and in version control). Give it at create with `--set-file`, `--values` or `--set` instead.'},
  {id: 'env-required', severity: 'info', group: 'spec', description: 'A parameter has no `default`: `shoal create` needs a value for it (`--set`, `--set-file` or a `--values` file); later commands keep the registered value.'},
  {id: 'link-self', severity: 'warning', group: 'spec', description: 'A link points at the cluster itself.'},
  // Templates.
  {id: 'template-path', severity: 'error', group: 'template', description: "A template path is absolute or leaves the spec file's directory (`..`, or a symbolic link leading out of it)."},
  {id: 'template-missing', severity: 'error', group: 'template', description: 'A template file does not exist or cannot be read as UTF-8 text (limit 1 MiB).'},
  {id: 'template-syntax', severity: 'error', group: 'template', description: 'A template does not parse as Liquid (strict mode: unknown tags and filters are errors).'},
  {id: 'template-include', severity: 'error', group: 'template', description: '`{% include %}`, `{% render %}` and `{% layout %}` are not allowed: templates cannot read other files.'},
  {id: 'template-unknown-variable', severity: 'error', group: 'template', description: 'A template references a variable the node view does not have (see `self`, `host`, `cluster`, `env`, `hosts`, `links`, `adding_hosts`, `deleting_hosts`).'},
  {id: 'template-undeclared-env', severity: 'error', group: 'template', description: 'A template references `env.<name>` that the spec does not declare.'},
  {id: 'template-undeclared-role', severity: 'error', group: 'template', description: 'A template references `hosts.<role>` (or `adding_hosts`/`deleting_hosts`) for a role the spec does not declare.'},
  {id: 'template-undeclared-link', severity: 'error', group: 'template', description: 'A template references `links.<name>` that the spec does not declare.'},
  // Host inventory.
  {id: 'host-duplicate-name', severity: 'error', group: 'hosts', description: 'Two hosts have the same name.'},
  {id: 'host-duplicate-address', severity: 'error', group: 'hosts', description: 'Two hosts have the same address.'},
  {id: 'host-address-invalid', severity: 'error', group: 'hosts', description: 'An address looks like an IP address but is not a valid one (e.g. `10.0.0.300`).'},
] as const satisfies readonly Rule[]

export type RuleId = (typeof RULES)[number]['id']

const BY_ID: ReadonlyMap<string, Rule> = new Map(RULES.map((rule) => [rule.id, rule]))

export function ruleById(id: string): Rule | undefined {
  return BY_ID.get(id)
}

/** The severity a rule always reports with. */
export function ruleSeverity(id: RuleId): Severity {
  return BY_ID.get(id)!.severity
}
