// Shell quoting: the only way a value reaches a command line.

/** Quote a value for POSIX sh so it arrives as one literal word. */
export function shellQuote(value: string | number | boolean): string {
  const text = String(value)
  if (text !== '' && /^[A-Za-z0-9_\-.,/:=@%+]+$/.test(text)) return text
  return `'${text.replace(/'/g, `'\\''`)}'`
}

/** `K1='v1' K2='v2' ` prefix for a command: env passed inline, since sshd drops exec env unless AcceptEnv allows it. */
export function envPrefix(env: Record<string, string | number | boolean>): string {
  return Object.keys(env)
    .sort()
    .map((k) => `${assertEnvName(k)}=${shellQuote(env[k]!)} `)
    .join('')
}

/** `name` when it can be an environment variable's name (what every shell accepts); throws otherwise. */
export function assertEnvName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid environment variable name: ${JSON.stringify(name)}`)
  return name
}
