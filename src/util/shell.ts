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
    .map((k) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name: ${JSON.stringify(k)}`)
      return `${k}=${shellQuote(env[k]!)} `
    })
    .join('')
}
