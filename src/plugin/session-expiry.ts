/**
 * session_expiry (docs/behaviour.md §7): an offline persistent session is
 * kept that many seconds after its client disconnects from this broker,
 * then ended — its queue emptied and its subscriptions removed, the
 * subscription to its own channel with them, so nothing more is queued for it.
 *
 * Each broker keeps the clocks of the sessions that ended on it. A client
 * connecting to any broker of a cluster stops its clock: every broker
 * announces new clients on `$SYS/<broker id>/new/clients`, which Aedes
 * itself listens to for takeovers across nodes.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { Counters } from './counters.js'
import { connectedClient } from './host.js'
import { dropQueue, endSession } from './host-store.js'
import type { Logger } from './log.js'

const NEW_CLIENTS = '$SYS/+/new/clients'
// how often the clocks are read: often enough for an expiry of a few seconds, cheap for one of days
const SWEEP_MAX_MS = 60_000

/** Starts the clocks; they stop when the broker closes. */
export function expireSessions (broker: Aedes, seconds: number, counters: Counters, log: Logger): void {
  // it runs on broker events and its own timer
  new SessionExpiry(broker, seconds, counters, log)
}

class SessionExpiry {
  readonly #broker: Aedes
  readonly #ms: number
  readonly #counters: Counters
  readonly #log: Logger
  /** client id → when its session went offline here, oldest first */
  readonly #offline = new Map<string, number>()
  readonly #timer: NodeJS.Timeout

  constructor (broker: Aedes, seconds: number, counters: Counters, log: Logger) {
    this.#broker = broker
    this.#ms = seconds * 1000
    this.#counters = counters
    this.#log = log
    broker.on('clientDisconnect', (client: Client) => {
      if (client.clean) return
      // re-inserted, so the map stays in the order the sessions went offline
      this.#offline.delete(client.id)
      this.#offline.set(client.id, Date.now())
    })
    broker.subscribe(NEW_CLIENTS, (packet: AedesPublishPacket, done: () => void) => {
      this.#offline.delete(packet.payload.toString())
      done()
    }, () => {})
    this.#timer = setInterval(() => { void this.#sweep() }, Math.min(SWEEP_MAX_MS, Math.max(1000, this.#ms / 4)))
    this.#timer.unref()
    broker.once('closed', () => { clearInterval(this.#timer) })
  }

  async #sweep (): Promise<void> {
    const before = Date.now() - this.#ms
    for (const [id, since] of this.#offline) {
      if (since > before) break
      this.#offline.delete(id)
      if (connectedClient(this.#broker, id) !== undefined) continue
      try {
        const dropped = await dropQueue(this.#broker, id)
        await endSession(this.#broker, id)
        this.#counters.limits.hit('session_expiry', { clientId: id, dropped })
      } catch (err) {
        this.#log.error({ err, clientId: id }, 'expired session could not be ended')
      }
    }
  }
}
