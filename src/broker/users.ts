/**
 * Password authentication from the config file's `[[users]]`. Passwords are
 * stored as salted scrypt hashes (`aedes-p2p hash-password` prints one), in a
 * PHC-like string: `$scrypt$N=16384,r=8,p=1$<salt>$<hash>` (base64).
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto'
import type { AuthenticateError, Client } from 'aedes'
import { ConfigError } from '../plugin/errors.js'
import type { LimitHits } from '../plugin/limits.js'
import { checkPattern } from '../plugin/patterns.js'
import { arrayOfTables } from '../plugin/table.js'
import { ClientIds } from './client-ids.js'
import type { Check } from './values.js'

export interface UserConfig {
  username: string
  /** a hash from `aedes-p2p hash-password`, never the password itself */
  password: string
  /** the client ids this user may connect with, as `*` patterns (`${username}` allowed); the ids they match are reserved for the users they match for */
  client_ids?: string[]
}

const USER_KEYS = ['username', 'password', 'client_ids']

/** Client id patterns: `*` for any run of characters, `${username}` for the user's name. */
export const clientIdPatterns: Check<string[]> = (value, where, key) => {
  if (!Array.isArray(value) || value.length === 0) throw new ConfigError(`${where} must be a non-empty list of client id patterns such as "\${username}-*"`, key)
  return value.map((item, i) => checkPattern(item, ['username'], `${where}[${i}]`, key))
}
const HASH = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/
const DEFAULT_COST = { N: 16384, r: 8, p: 1 }
// MQTT CONNACK return codes (3.1.1 §3.2.2.3)
const SERVER_UNAVAILABLE = 3
// one address may have this share of the password checks left
const PER_ADDRESS_SHARE = 4
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

interface Cost { N: number, r: number, p: number }

async function scrypt (password: Buffer, salt: Buffer, length: number, cost: Cost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, length, { ...cost, maxmem: 256 * cost.N * cost.r }, (err, key) => {
      if (err === null) resolve(key)
      else reject(err)
    })
  })
}

export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(Buffer.from(password), salt, 32, DEFAULT_COST)
  const { N, r, p } = DEFAULT_COST
  return `$scrypt$N=${N},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`
}

export async function verifyPassword (password: Buffer, hash: string): Promise<boolean> {
  const m = HASH.exec(hash)
  if (m === null) return false
  const [, N, r, p, salt, expected] = m
  const want = Buffer.from(expected ?? '', 'base64')
  const got = await scrypt(password, Buffer.from(salt ?? '', 'base64'), want.length, { N: Number(N), r: Number(r), p: Number(p) })
  return timingSafeEqual(got, want)
}

export function userConfigs (value: unknown): UserConfig[] {
  const seen = new Set<string>()
  return arrayOfTables(value, 'users', USER_KEYS, (entry, where) => {
    const { username, password, client_ids: clientIds } = entry
    if (typeof username !== 'string' || username.length === 0) throw new ConfigError(`${where}.username must be a non-empty string`, `${where}.username`)
    if (seen.has(username)) throw new ConfigError(`${where}: user '${username}' is listed twice`, `${where}.username`)
    seen.add(username)
    if (typeof password !== 'string' || !HASH.test(password)) {
      throw new ConfigError(`${where}.password must be a hash from \`aedes-p2p hash-password\` ($scrypt$...), not a plain password`, `${where}.password`)
    }
    return clientIds === undefined ? { username, password } : { username, password, client_ids: clientIdPatterns(clientIds, `${where}.client_ids`, `${where}.client_ids`) }
  })
}

/** Where a client connects from: its socket's peer, or a WebSocket's underlying one; an IPv6 address by its /64. */
function addressOf (client: Client): string {
  const conn = client.conn as { remoteAddress?: string }
  const address = conn.remoteAddress ?? client.req?.socket.remoteAddress ?? 'unknown'
  if (!address.includes(':') || address.startsWith('::ffff:')) return address
  // the first four groups, with '::' spelled out
  const [head = '', tail = ''] = address.split('::')
  const groups = head === '' ? [] : head.split(':')
  const rest = tail === '' ? [] : tail.split(':')
  const full = [...groups, ...Array<string>(Math.max(0, 8 - groups.length - rest.length)).fill('0'), ...rest]
  return full.slice(0, 4).join(':') + '::/64'
}

function refuse (code: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError
}

/** What bounds the password checks (docs/behaviour.md §7). */
export interface CheckLimits {
  /** checks running or waiting at once; past it, CONNACK 3 at once */
  max_auth_pending: number
  hits: LimitHits
}

/**
 * An Aedes `authenticate` hook over a user list that can be swapped on
 * reload. With no users, everyone is let in (the broker then listens on
 * loopback unless told otherwise).
 *
 * A check costs one scrypt whether the user exists or not, so neither the
 * answer's timing nor a flood of unknown names tells which users exist; and
 * at most max_auth_pending checks run or wait at once (libuv runs four at a
 * time), so a flood of wrong passwords keeps the broker answering everyone
 * else within the time of max_auth_pending checks. One remote address (an
 * IPv6 one counted by its /64, as one host holds all of one) may have a
 * quarter of the checks not taken by others under way: a flood from one
 * place, or from a few, leaves some to everyone else (clients behind one
 * proxy share its address).
 */
export class Users {
  #byName = new Map<string, string>()
  #ids = new ClientIds([], undefined)
  #pending = 0
  /** checks under way by remote address (an IPv6 one by its /64) */
  readonly #byAddress = new Map<string, number>()
  /** the username each client proved with its password */
  readonly #usernames = new WeakMap<Client, string>()
  /** which users and patterns a client was checked against: a reload makes new ones */
  #generation = 0
  readonly #checkedUnder = new WeakMap<Client, number>()
  readonly #limits: CheckLimits
  // checked against when the user is unknown, so that costs the same
  readonly #decoy: Promise<string> = hashPassword(randomBytes(16).toString('base64'))

  constructor (users: readonly UserConfig[], defaultClientIds: readonly string[] | undefined, limits: CheckLimits) {
    this.#limits = limits
    this.replace(users, defaultClientIds)
  }

  get size (): number { return this.#byName.size }

  /** Checks running or waiting now. */
  get pending (): number { return this.#pending }

  /** Whether passwords are checked at all: with no users, nobody is, and no client id has an owner. */
  enabled (): boolean {
    return this.#byName.size > 0
  }

  /** Whether `username` is one of the users now, and may connect with `clientId`. */
  mayUse (username: string, clientId: string): boolean {
    return this.#byName.has(username) && this.#ids.allows(username, clientId)
  }

  /** The username a client logged in with, once its password was checked; undefined for one let in without users. */
  usernameOf (client: Client): string | undefined {
    return this.#usernames.get(client)
  }

  replace (users: readonly UserConfig[], defaultClientIds: readonly string[] | undefined): void {
    this.#byName = new Map(users.map((u) => [u.username, u.password]))
    this.#ids = new ClientIds(users, defaultClientIds)
    this.#generation++
  }

  /**
   * Whether a client let in earlier would be let in now, by its username and
   * client id (its password is not kept to be checked again): after a reload
   * removes its user, or a client id pattern it no longer matches, it is not.
   */
  stillAllowed (client: Client): boolean {
    // checked at its login against the users as they are: nothing to do again on every registration
    if (this.#byName.size === 0 || this.#checkedUnder.get(client) === this.#generation) return true
    const username = this.#usernames.get(client)
    return username !== undefined && this.mayUse(username, client.id)
  }

  readonly authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void => {
    const users = this.#byName
    if (users.size === 0) {
      done(null, true)
      return
    }
    if (username === undefined) {
      done(refuse(NOT_AUTHORIZED, 'anonymous clients are not allowed'), null)
      return
    }
    const address = addressOf(client)
    const fromThere = this.#byAddress.get(address) ?? 0
    // one place may take a quarter of the checks left to it and everyone else: a few places together leave some still
    const share = Math.max(1, Math.ceil((this.#limits.max_auth_pending - this.#pending + fromThere) / PER_ADDRESS_SHARE))
    if (this.#pending >= this.#limits.max_auth_pending || fromThere >= share) {
      this.#limits.hits.hit('max_auth_pending', { pending: this.#pending, address, fromAddress: fromThere })
      done(refuse(SERVER_UNAVAILABLE, 'too many password checks under way'), null)
      return
    }
    this.#pending++
    this.#byAddress.set(address, fromThere + 1)
    const finished = (): void => {
      this.#pending--
      const left = (this.#byAddress.get(address) ?? 1) - 1
      if (left === 0) this.#byAddress.delete(address)
      else this.#byAddress.set(address, left)
    }
    const hash = users.get(username)
    const given = password ?? Buffer.alloc(0)
    const checked = hash === undefined
      ? this.#decoy.then(async (decoy) => { await verifyPassword(given, decoy); return false })
      : verifyPassword(given, hash)
    checked.then((ok) => {
      finished()
      if (!ok) {
        done(refuse(BAD_USERNAME_OR_PASSWORD, 'bad user name or password'), null)
        return
      }
      // asked of the users as they are now: a reload during the check counts
      if (!this.mayUse(username, client.id)) {
        done(refuse(NOT_AUTHORIZED, `client id not allowed for user ${username}`), null)
        return
      }
      this.#usernames.set(client, username)
      this.#checkedUnder.set(client, this.#generation)
      done(null, true)
    }, () => {
      finished()
      done(refuse(BAD_USERNAME_OR_PASSWORD, 'bad user name or password'), null)
    })
  }
}
