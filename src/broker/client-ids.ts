/**
 * Which user may connect with which client id (docs/behaviour.md §8). A
 * user's patterns are its own `client_ids`, or, for a user that lists none,
 * `[auth] client_ids`. The ids a user's patterns match are reserved: only
 * the users whose patterns match may use them, and of those only the ones
 * whose matching pattern is the most specific (the most literal
 * characters): with `${username}-*` for all, `bob-x-phone` is user bob-x's
 * (`bob-x-*`), not bob's (`bob-*`). Ids no pattern matches are open to
 * every user, unless `[auth] client_ids` is set: then every user has
 * patterns, and an id none of them matches is nobody's to use.
 */
import { Pattern } from '../plugin/patterns.js'

interface Owned {
  username: string
  pattern: Pattern<string>
  /** how many literal characters the pattern has, with the username filled in */
  literal: number
}

// the only placeholder a client id pattern has is the user's own name
const fillUsername = (_name: string, username: string): string => username

export class ClientIds {
  /** patterns without `*`, by the id they name */
  readonly #exact = new Map<string, Owned[]>()
  /** patterns with `*`, by what comes before the first `*`, filled in */
  readonly #byPrefix = new Map<string, Owned[]>()
  /** the lengths of those prefixes, so an id is cut only where one may end (a long id costs no more) */
  readonly #prefixLengths: number[]
  /** `[auth] client_ids` is set: ids nobody's patterns match are closed */
  readonly #narrowed: boolean

  constructor (users: ReadonlyArray<{ username: string, client_ids?: readonly string[] }>, defaults: readonly string[] | undefined) {
    this.#narrowed = defaults !== undefined
    const lengths = new Set<number>()
    for (const { username, client_ids: own } of users) {
      for (const source of own ?? defaults ?? []) {
        // cut at `*` before filling in, as Pattern does: a `*` in a username is literal
        // a function, so that `$&` or `$$` in a name stays as it is
        const parts = source.split('*').map((part) => part.replaceAll('${username}', () => username))
        const owned = { username, pattern: new Pattern(source, fillUsername), literal: parts.join('').length }
        const key = parts[0] ?? ''
        const index = parts.length === 1 ? this.#exact : this.#byPrefix
        index.set(key, [...(index.get(key) ?? []), owned])
        if (parts.length > 1) lengths.add(key.length)
      }
    }
    this.#prefixLengths = [...lengths].sort((a, b) => a - b)
  }

  /** Whether `username` may connect with `clientId`. */
  allows (username: string, clientId: string): boolean {
    const owners = this.#owners(clientId)
    return owners === null ? !this.#narrowed : owners.has(username)
  }

  /** The users the id is reserved for; null when no pattern matches it. */
  #owners (clientId: string): Set<string> | null {
    let best = -1
    let owners: Set<string> | null = null
    const consider = (owned: Owned): void => {
      if (owned.literal < best || !owned.pattern.matches(clientId, owned.username)) return
      if (owned.literal > best || owners === null) {
        best = owned.literal
        owners = new Set()
      }
      owners.add(owned.username)
    }
    this.#exact.get(clientId)?.forEach(consider)
    for (const length of this.#prefixLengths) {
      if (length > clientId.length) break
      this.#byPrefix.get(clientId.slice(0, length))?.forEach(consider)
    }
    return owners
  }
}
