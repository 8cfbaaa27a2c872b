/**
 * The one pattern language of the config: `*` matches any run of characters
 * (also none), and `${name}` placeholders are filled in at match time from
 * whoever is being checked — the rules' `${username}`, a client id pattern's
 * `${username}`, the ACL's `${clientid}`. A placeholder with no value (a
 * client without a username) makes the pattern match nothing.
 */
import { ConfigError } from './errors.js'

const PLACEHOLDER = /\$\{([a-z_]+)\}/g

/** Gives a placeholder's value for one check; undefined when the subject has none. */
export type Fill<S> = (name: string, subject: S) => string | undefined

export class Pattern<S> {
  readonly source: string
  readonly #parts: string[]
  readonly #fill: Fill<S> | undefined

  /** `source` is checked by `checkPattern` first; `fill` is only needed when it has placeholders. */
  constructor (source: string, fill?: Fill<S>) {
    this.source = source
    this.#parts = source.split('*')
    this.#fill = source.includes('${') ? fill : undefined
  }

  /** Whether `value` matches, with the placeholders filled in for `subject`. */
  matches (value: string | undefined, subject: S): boolean {
    let parts = this.#parts
    const fill = this.#fill
    if (fill !== undefined) {
      let missing = false
      parts = parts.map((part) => part.replace(PLACEHOLDER, (_, name: string) => {
        const filled = fill(name, subject)
        if (filled === undefined) missing = true
        return filled ?? ''
      }))
      if (missing) return false
    }
    return glob(parts, value ?? '')
  }
}

/** Checks a pattern from the config: a string whose placeholders are among `names`. */
export function checkPattern (value: unknown, names: readonly string[], where: string, key = where): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(`${where} must be a non-empty string pattern`, key)
  for (const [placeholder, name] of value.matchAll(/\$\{([^}]*)\}/g)) {
    if (!names.includes(name ?? '')) {
      throw new ConfigError(`${where}: unknown placeholder ${placeholder} (use ${names.map((n) => '${' + n + '}').join(' or ')})`, key)
    }
  }
  return value
}

/** Whether `value` is the parts of a pattern cut at each `*`, with any run of characters between them. */
function glob (parts: string[], value: string): boolean {
  const first = parts[0] ?? ''
  if (parts.length === 1) return value === first
  if (!value.startsWith(first)) return false
  const last = parts[parts.length - 1] ?? ''
  if (value.length - last.length < first.length || !value.endsWith(last)) return false
  let at = first.length
  const end = value.length - last.length
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] ?? ''
    const found = value.indexOf(part, at)
    if (found === -1 || found + part.length > end) return false
    at = found + part.length
  }
  return true
}
