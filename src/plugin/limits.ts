/**
 * The bounds the plugin keeps on what clients can make the broker hold
 * (docs/behaviour.md §7), and the count of each time one bites. Every limit
 * is on by default; the keys are those of the broker's `[limits]` table.
 */
import { ConfigError } from './errors.js'
import { WarnLimiter, type Logger } from './log.js'
import { isTable, rejectUnknownKeys } from './table.js'

export interface PluginLimits {
  /**
   * Messages one session's queue may hold, P2P and ordinary; the newest past
   * it is refused (`queue_full`).
   * @default 1000
   */
  max_queued_messages: number
  /**
   * Payload bytes one session's queue may hold, P2P and ordinary.
   * @default 67108864 (64 MiB)
   */
  max_queued_bytes: number
  /**
   * Payload bytes all session queues may hold together, on a broker with a
   * store of its own (memory or a data directory; a cluster's queues are in
   * Redis): past it, every queue refuses as a full one does. It bounds what
   * many sessions, each within its own bounds, hold together.
   * @default 268435456 (256 MiB)
   */
  max_queued_bytes_total: number
  /**
   * Bytes written to a connected client and not yet taken by its socket.
   * Past it, P2P messages at QoS 0 (or to a clean session) are dropped
   * (`slow_consumer`), and those at QoS 1/2 for a persistent session wait in
   * its queue until it reconnects.
   * @default 1048576 (1 MiB)
   */
  max_pending_bytes: number
  /**
   * Seconds a queued P2P message may wait for its target; older ones are
   * dropped when the queue is replayed (`expired`). 0 never expires them.
   * @default 0
   */
  message_expiry: number
  /**
   * Seconds an offline persistent session is kept, with its queue, after its
   * client disconnects from this broker. 0 keeps it until the client comes back.
   * @default 0
   */
  session_expiry: number
}

export const LIMIT_DEFAULTS: Readonly<PluginLimits> = Object.freeze({
  max_queued_messages: 1000,
  max_queued_bytes: 64 * 1024 * 1024,
  max_queued_bytes_total: 256 * 1024 * 1024,
  max_pending_bytes: 1024 * 1024,
  message_expiry: 0,
  session_expiry: 0
})

export const LIMIT_KEYS = Object.keys(LIMIT_DEFAULTS) as ReadonlyArray<keyof PluginLimits>

/** The largest value any limit takes: a year in seconds, or 2^53 bytes, are both beyond use. */
const MOST = Number.MAX_SAFE_INTEGER

/** Checks a limit: a whole number, at least `least`; `where` is how the user wrote its name. */
export function wholeNumber (value: unknown, where: string, key: string, least: number): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < least || n > MOST) {
    throw new ConfigError(`${where} must be a whole number of at least ${least} (got ${JSON.stringify(value)})`, key)
  }
  return n
}

/** The plugin's limits from register()'s `limits` option; keys left out keep their defaults. */
export function pluginLimits (input: unknown): PluginLimits {
  if (input === undefined) return { ...LIMIT_DEFAULTS }
  if (!isTable(input)) throw new ConfigError('limits must be an object', 'limits')
  rejectUnknownKeys(input, LIMIT_KEYS, 'limits', 'limits')
  const limits: PluginLimits = { ...LIMIT_DEFAULTS }
  for (const key of LIMIT_KEYS) {
    const value = input[key]
    // expiries may be 0 (never); a size or count of 0 would refuse everything
    if (value !== undefined) limits[key] = wholeNumber(value, `limits.${key}`, `limits.${key}`, key.endsWith('_expiry') ? 0 : 1)
  }
  return limits
}

/**
 * How often each limit has bitten, by the limit's key, and a warning for
 * each that a flooding client cannot turn into a flood of log lines.
 */
export class LimitHits {
  readonly #hits = new Map<string, number>()
  readonly #warnings: WarnLimiter

  constructor (log: Logger) {
    this.#warnings = new WarnLimiter(log)
  }

  hit (limit: string, details: object): void {
    this.#hits.set(limit, (this.#hits.get(limit) ?? 0) + 1)
    this.#warnings.warn({ limit, ...details }, `limit reached: ${limit}`)
  }

  snapshot (): Record<string, number> {
    return Object.fromEntries(this.#hits)
  }
}
