import { pino } from 'pino'

/** The slice of a pino logger the plugin writes to; any pino instance fits. */
export interface Logger {
  error (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

export function defaultLogger (): Logger {
  return pino({ name: 'aedes-p2p-messaging', level: 'warn' })
}

/**
 * Warnings caused by clients (malformed topics, refused messages) go through
 * here so a client flooding bad publishes cannot flood the log: at most
 * `limit` lines per window, then one line saying how many were held back.
 */
export class WarnLimiter {
  #windowStart = 0
  #written = 0
  #suppressed = 0

  constructor (private readonly logger: Logger, private readonly limit = 20, private readonly windowMs = 10_000) {}

  warn (obj: object, msg: string): void {
    const now = Date.now()
    if (now - this.#windowStart >= this.windowMs) {
      if (this.#suppressed > 0) {
        this.logger.warn({ suppressed: this.#suppressed }, 'P2P warnings suppressed by rate limit')
      }
      this.#windowStart = now
      this.#written = 0
      this.#suppressed = 0
    }
    if (this.#written < this.limit) {
      this.#written++
      this.logger.warn(obj, msg)
    } else {
      this.#suppressed++
    }
  }
}
