/**
 * Which user may connect with which client id (docs/behaviour.md §8). A
 * user's patterns are its own `client_ids`, or, for a user that lists none,
 * `[auth] client_ids`. The ids a user's patterns match are reserved: only
 * the users whose patterns match may use them. Ids no pattern matches are
 * open to every user, unless `[auth] client_ids` is set: then every user has
 * patterns, and an id none of them matches is nobody's to use.
 */
import { Pattern } from '../plugin/patterns.js'

interface Owned {
  username: string
  pattern: Pattern<string>
}

// the only placeholder a client id pattern has is the user's own name
const fillUsername = (_name: string, username: string): string => username

export class ClientIds {
  /** patterns without `*`, filled in: the id they name, and the users it is reserved for */
  readonly #exact = new Map<string, Set<string>>()
  /** patterns with `*`, in the order of the users */
  readonly #wild: Owned[] = []
  readonly #byUser = new Map<string, Array<Pattern<string>>>()
  /** `[auth] client_ids` is set: ids nobody's patterns match are closed */
  readonly #narrowed: boolean

  constructor (users: ReadonlyArray<{ username: string, client_ids?: readonly string[] }>, defaults: readonly string[] | undefined) {
    this.#narrowed = defaults !== undefined
    for (const { username, client_ids: own } of users) {
      const sources = own ?? defaults
      if (sources === undefined) continue
      const patterns = sources.map((source) => new Pattern(source, fillUsername))
      this.#byUser.set(username, patterns)
      for (const pattern of patterns) {
        if (pattern.source.includes('*')) {
          this.#wild.push({ username, pattern })
        } else {
          // `${username}` is the only placeholder, and the user's name is known now
          const id = pattern.source.replaceAll('${username}', username)
          const reserved = this.#exact.get(id) ?? new Set()
          reserved.add(username)
          this.#exact.set(id, reserved)
        }
      }
    }
  }

  /** True when no user has patterns: every id is open to every user. */
  get open (): boolean { return this.#byUser.size === 0 }

  /** Whether `username` may connect with `clientId`. */
  allows (username: string, clientId: string): boolean {
    const own = this.#byUser.get(username)
    if (own?.some((pattern) => pattern.matches(clientId, username)) === true) return true
    if (this.#narrowed) return false
    // open unless someone else's pattern reserves it
    if (this.#exact.has(clientId)) return false
    return !this.#wild.some(({ username: other, pattern }) => pattern.matches(clientId, other))
  }
}
