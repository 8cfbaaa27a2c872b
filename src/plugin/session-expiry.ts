/**
 * session_expiry (docs/behaviour.md §7): an offline persistent session is
 * kept that many seconds after its client disconnects from this broker,
 * then ended — its queue emptied and its subscriptions removed, the
 * subscription to its own channel with them, so nothing more is queued for it.
 *
 * Each broker keeps the clocks of the sessions that ended on it. A client
 * connecting to any broker of a cluster stops its clock: every broker
 * announces new clients on `$SYS/<broker id>/new/clients`, which Aedes
 * itself listens to for takeovers across nodes. A broker on its own starts
 * the clocks of the sessions its store holds when it starts (a data
 * directory after a restart): none of them is connected yet. A cluster node
 * cannot tell which of them are connected to other nodes, so a session left
 * by a node that died is not expired until its client comes back and leaves.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { Counters } from './counters.js'
import { connectedClient } from './host.js'
import { SESSIONS_TOPIC } from './channel.js'
import { clientsSubscribedTo, dropQueue, endSession } from './host-store.js'
import type { Logger } from './log.js'

const NEW_CLIENTS = '$SYS/+/new/clients'
// how often the clocks are read: often enough for an expiry of a few seconds, cheap for one of days
const SWEEP_MAX_MS = 60_000

/**
 * Starts the clocks; they stop when the broker closes. `alone`: this broker
 * is the only one on its store, so every stored session is offline now.
 */
export function expireSessions (broker: Aedes, seconds: number, alone: boolean, counters: Counters, log: Logger): void {
  // it runs on broker events and its own timer
  const expiry = new SessionExpiry(broker, seconds, counters, log)
  if (alone) void expiry.startStored()
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
    broker.on('client', (client: Client) => { this.#offline.delete(client.id) })
    // Other brokers' new clients. This broker's own notices are left out: one
    // comes back through the emitter later, maybe after its client has left again.
    const own = `$SYS/${broker.id}/`
    broker.subscribe(NEW_CLIENTS, (packet: AedesPublishPacket, done: () => void) => {
      if (!packet.topic.startsWith(own)) this.#offline.delete(packet.payload.toString())
      done()
    }, () => {})
    this.#timer = setInterval(() => { void this.#sweep() }, Math.min(SWEEP_MAX_MS, Math.max(1000, this.#ms / 4)))
    this.#timer.unref()
    broker.once('closed', () => { clearInterval(this.#timer) })
  }

  /** Starts a clock for every stored session that has none. */
  async startStored (): Promise<void> {
    const now = Date.now()
    try {
      for await (const id of clientsSubscribedTo(this.#broker, SESSIONS_TOPIC)) {
        if (!this.#offline.has(id) && connectedClient(this.#broker, id) === undefined) this.#offline.set(id, now)
      }
    } catch (err) {
      this.#log.error({ err }, 'stored sessions could not be listed: those offline since before this start do not expire')
    }
  }

  async #sweep (): Promise<void> {
    const before = Date.now() - this.#ms
    for (const [id, since] of this.#offline) {
      if (since > before) break
      this.#offline.delete(id)
      if (connectedClient(this.#broker, id) !== undefined) continue
      try {
        const dropped = await dropQueue(this.#broker, id)
        // back meanwhile: its session is its own again
        if (connectedClient(this.#broker, id) !== undefined) continue
        await endSession(this.#broker, id)
        this.#counters.limits.hit('session_expiry', { clientId: id, dropped })
      } catch (err) {
        this.#log.error({ err, clientId: id }, 'expired session could not be ended')
      }
    }
  }
}
