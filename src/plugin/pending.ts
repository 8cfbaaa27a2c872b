/**
 * What a connection has not been sent yet, P2P and ordinary traffic alike
 * (docs/behaviour.md §7, max_pending_bytes). A reader that stops reading
 * costs the broker at most max_pending_bytes, and holds up nobody:
 *
 * - Past the bound, a message that is not in the client's session queue is
 *   dropped (QoS 0, a clean session, a retained copy); one that is in it
 *   stays there. The connection is then lagging: every later queued message
 *   stays in the queue too, so none overtakes another, and once the socket
 *   drains a catch-up reads the queue and sends, in order, what this
 *   connection has not been sent (those without a packet id).
 * - Aedes's own deliveries of ordinary messages are wrapped so that the
 *   emitter and the publisher go on at once: Aedes would hold the publisher
 *   and one of the emitter's slots until a slow subscriber drains, and a
 *   queue of such slots released at once overflows the stack.
 * - P2P messages that come before a client is ready (before its CONNACK,
 *   or while its queue is replayed) are held, within the same bound.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { Counters } from './counters.js'
import { hasConnack, replaceDeliveries, type Deliver } from './host.js'
import { queuedPackets } from './host-store.js'
import type { PluginLimits } from './limits.js'
import type { Logger } from './log.js'
import { Sent } from './sent.js'

// How soon a catch-up looks again at a socket that is over the bound but
// asked for no 'drain' (a max_pending_bytes below its high-water mark).
const RECHECK_MS = 20
// How soon a catch-up reads the queue again after the store failed it (a
// Redis Cluster in a failover answers with errors for a few seconds), doubling up to the most.
const RETRY_FIRST_MS = 250
const RETRY_MOST_MS = 10_000

/** A connection with something waiting; only such connections have one. */
interface Waiting {
  /** P2P messages that came before the client was ready, in order */
  held: Array<() => void> | undefined
  heldBytes: number
  /** queued messages wait in the queue for a catch-up to send them */
  lagging: boolean
  /** a catch-up is reading the queue */
  reading: boolean
  /** a queued message came while it read: it reads again */
  again: boolean
  /** queued messages a catch-up has sent, so that neither a second read nor the live path sends one twice */
  sent: Sent
  /** reads of the queue the store failed in a row */
  failures: number
  /** a read again after a failure is waiting for its time */
  retrying: boolean
}

// A generation of sent keys: a queue holds at most max_queued_messages, and
// each catch-up pass sends at most what fits under max_pending_bytes.
const SENT_GENERATION = 1024

/** Sends a queued packet from the catch-up: true if it was a P2P one (on the client's channel). */
export type SendQueuedP2P = (client: Client, packet: AedesPublishPacket) => boolean

const keyOf = (packet: AedesPublishPacket): string => `${packet.brokerId}:${packet.brokerCounter}`
const noop = (): void => {}

export class Pending {
  readonly #broker: Aedes
  readonly #max: number
  readonly #counters: Counters
  readonly #log: Logger
  readonly #waiting = new WeakMap<Client, Waiting>()
  readonly #generation: number
  /** Aedes's own delivery of queued ordinary messages, per client */
  readonly #hostDeliverQoS = new WeakMap<Client, Deliver>()
  #sendP2P: SendQueuedP2P = () => false

  constructor (broker: Aedes, limits: PluginLimits, counters: Counters, log: Logger) {
    this.#broker = broker
    this.#max = limits.max_pending_bytes
    // a generation at least as long as a queue may be
    this.#generation = Math.max(SENT_GENERATION, limits.max_queued_messages)
    this.#counters = counters
    this.#log = log
  }

  /** How the catch-up sends a P2P message it finds in a queue. */
  set sendP2P (send: SendQueuedP2P) {
    this.#sendP2P = send
  }

  /** Counts a message not written because its target is past the bound. */
  hit (client: Client, topic: string): void {
    this.#counters.limits.hit('max_pending_bytes', { clientId: client.id, topic })
  }

  /**
   * Counts, and true, when the bytes written to the connection that its
   * socket has not taken yet are past the bound: what is not queued is then
   * dropped.
   */
  dropsLive (client: Client, topic: string): boolean {
    return this.#over(client, topic)
  }

  /**
   * Wraps the client's deliveries of ordinary messages. Called at CONNECT,
   * before Aedes has made any subscription for the client, each of which
   * takes the delivery functions the client has then.
   */
  guard (client: Client): void {
    replaceDeliveries(client, (host) => {
      this.#hostDeliverQoS.set(client, host.deliverQoS)
      const live = (packet: AedesPublishPacket, deliver: Deliver): void => {
        // a session's subscriptions are restored before its CONNACK, which must come first: what matches them waits
        if (!hasConnack(client)) {
          if (!this.hold(client, packet.payload.length, () => { deliver(packet, noop) })) this.hit(client, packet.topic)
        } else if (!this.#over(client, packet.topic)) {
          deliver(packet, noop)
        }
      }
      return {
        deliver0: (packet, cb) => {
          live(packet, host.deliver0)
          cb()
        },
        deliverQoS: (packet, cb) => {
          // Aedes queued it for a persistent session before it emitted it; a
          // retained copy for a new subscription has no broker id and is not queued
          const queued = packet.qos > 0 && !client.clean && typeof packet.brokerId === 'string'
          if (!queued) live(packet, host.deliverQoS)
          else if (!this.isQueuedAway(client, packet)) host.deliverQoS(packet, noop)
          cb()
        }
      }
    })
  }

  /**
   * True when a queued message for `client` is not to be written now, as it
   * stays in the queue: the replay after the CONNACK or a catch-up sends it
   * (or has sent it). Past the bound, the connection starts lagging.
   */
  isQueuedAway (client: Client, packet: AedesPublishPacket): boolean {
    // before the CONNACK: the replay that follows it sends what the queue holds, this message included
    if (!hasConnack(client)) return true
    const waiting = this.#waiting.get(client)
    if (waiting?.sent.delete(keyOf(packet)) === true) return true
    if (waiting?.lagging === true) {
      waiting.again = true
      return true
    }
    if (!client.connected) {
      // the replay is running and may have read the queue before this message came: catch up after it
      this.lag(client)
      return true
    }
    if (!this.#over(client, packet.topic)) return false
    this.lag(client)
    return true
  }

  /** Past the bound: counted, and true. */
  #over (client: Client, topic: string): boolean {
    if (client.conn.writableLength <= this.#max) return false
    this.hit(client, topic)
    return true
  }

  /**
   * Holds `send` until the client is ready (its CONNACK written and its queue
   * replayed); false, and nothing held, past the bound.
   */
  hold (client: Client, bytes: number, send: () => void): boolean {
    const waiting = this.#waitingOf(client)
    if (waiting.heldBytes + bytes > this.#max) return false
    waiting.heldBytes += bytes
    ;(waiting.held ??= []).push(send)
    return true
  }

  /** Queued messages for `client` wait in its queue until a catch-up sends them. */
  lag (client: Client): void {
    const waiting = this.#waitingOf(client)
    // what an earlier catch-up sent is long acknowledged or in flight: its record can go
    if (!waiting.lagging) waiting.sent.clear()
    waiting.lagging = true
    waiting.again = true
    // a client not yet ready is caught up once it is
    if (client.connected) this.#afterDrain(client, waiting)
  }

  #waitingOf (client: Client): Waiting {
    let waiting = this.#waiting.get(client)
    if (waiting === undefined) {
      const created: Waiting = waiting = { held: undefined, heldBytes: 0, lagging: false, reading: false, again: false, sent: new Sent(this.#generation), failures: 0, retrying: false }
      this.#waiting.set(client, created)
      // 'connected' comes once the client has had its CONNACK and its queue replayed
      if (!client.connected) client.once('connected', () => { this.#ready(client, created) })
    }
    return waiting
  }

  #ready (client: Client, waiting: Waiting): void {
    const held = waiting.held
    waiting.held = undefined
    waiting.heldBytes = 0
    if (held !== undefined) for (const send of held) send()
    if (waiting.lagging) void this.#catchUp(client, waiting)
  }

  #afterDrain (client: Client, waiting: Waiting): void {
    const conn = client.conn
    const again = (): void => { void this.#catchUp(client, waiting) }
    // Aedes emits 'drain' when it closes the connection too; the catch-up then stops
    if (conn.writableNeedDrain) conn.once('drain', again)
    else setTimeout(again, RECHECK_MS).unref()
  }

  /**
   * Sends, in queue order, the queued messages this connection has not been
   * sent: those without a packet id. It stops when the socket is over the
   * bound again, and goes on once it drains.
   */
  async #catchUp (client: Client, waiting: Waiting): Promise<void> {
    if (!waiting.lagging || waiting.reading || client.closed || !hasConnack(client)) return
    waiting.reading = true
    try {
      while (waiting.again) {
        waiting.again = false
        for await (const packet of queuedPackets(this.#broker, client.id)) {
          if (client.closed) return
          if (packet.cmd !== 'publish' || (packet.messageId !== undefined && packet.messageId !== null)) continue
          const key = keyOf(packet)
          if (waiting.sent.has(key)) continue
          if (client.conn.writableLength > this.#max) {
            // still behind: look again once the socket drains
            waiting.again = true
            waiting.reading = false
            this.#afterDrain(client, waiting)
            return
          }
          waiting.sent.add(key)
          if (!this.#sendP2P(client, packet)) this.#hostDeliverQoS.get(client)?.(packet, noop)
        }
      }
      waiting.lagging = false
      waiting.failures = 0
    } catch (err) {
      // read again later, while the client stays: the messages are in its queue, and nothing else sends them
      const failures = ++waiting.failures
      const delay = Math.min(RETRY_MOST_MS, RETRY_FIRST_MS * 2 ** (failures - 1))
      waiting.again = true
      // the 1st, 2nd, 4th, 8th… failure in a row: a store that stays broken is not a line every 10 s per client
      if ((failures & (failures - 1)) === 0) this.#log.warn({ err, clientId: client.id, failures, retryInMs: delay }, 'catch-up could not read the session queue; reading it again')
      // one retry waits at a time, however many resyncs fail meanwhile
      if (!waiting.retrying) {
        waiting.retrying = true
        setTimeout(() => {
          waiting.retrying = false
          void this.#catchUp(client, waiting)
        }, delay).unref()
      }
    } finally {
      waiting.reading = false
    }
  }
}
