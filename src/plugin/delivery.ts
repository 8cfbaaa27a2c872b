/**
 * Writing P2P messages to a connected target: live ones straight to its
 * socket, and the internal form turned back into the delivered message when
 * it comes off a session queue or a channel.
 *
 * What may not be written yet waits, and what waits is bounded
 * (docs/behaviour.md §7):
 * - Nothing is written before the target's CONNACK, and nothing overtakes the
 *   replay of its session queue that follows it: live messages are held
 *   until the client is ready, up to max_pending_bytes; queued ones stay in
 *   the queue, and the replay, or a catch-up right after it, sends them.
 * - A target that does not read holds at most max_pending_bytes unsent on
 *   its socket. Past that, a live message is dropped (`slow_consumer`) and a
 *   queued one stays in the queue; once the socket drains, a catch-up reads
 *   the queue and sends, in order, what the connection has not been sent.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import { channelOf, unwrapPayload } from './channel.js'
import type { Counters } from './counters.js'
import { hasConnack, nextMessageId, queuedPackets, recordSending, removeQueued, writePacket } from './host.js'
import type { PluginLimits } from './limits.js'
import type { Logger } from './log.js'

// How soon a catch-up looks again at a socket that is over the bound but
// asked for no 'drain' (a max_pending_bytes below its high-water mark).
const RECHECK_MS = 20

interface Held { topic: string, payload: Buffer, qos: 0 | 1 | 2 }

/** A connection with something waiting; only such connections have one. */
interface Waiting {
  /** live messages that came before the client was ready, in order */
  held: Held[] | undefined
  heldBytes: number
  /** queued messages wait in the queue for a catch-up to send them */
  lagging: boolean
  /** a catch-up is reading the queue */
  reading: boolean
  /** a queued message came while it read: it reads again */
  again: boolean
  /** queued messages a catch-up has sent, so that neither a second read nor the live path sends one twice */
  sent: Set<string>
}

const keyOf = (packet: AedesPublishPacket): string => `${packet.brokerId}:${packet.brokerCounter}`

export class Delivery {
  readonly #broker: Aedes
  readonly #hostForward: Aedes['authorizeForward']
  readonly #counters: Counters
  readonly #limits: PluginLimits
  readonly #log: Logger
  readonly #waiting = new WeakMap<Client, Waiting>()

  constructor (broker: Aedes, hostForward: Aedes['authorizeForward'], counters: Counters, limits: PluginLimits, log: Logger) {
    this.#broker = broker
    this.#hostForward = hostForward
    this.#counters = counters
    this.#limits = limits
    this.#log = log
  }

  /**
   * A message for `client`, a client of this broker. `stored` is its copy in
   * the client's session queue, for a message at QoS 1/2 to a persistent
   * session. The sender is never held up by its target.
   */
  deliver (client: Client, topic: string, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): void {
    if (client.closed) return
    if (stored !== undefined) {
      this.#deliverQueued(client, topic, payload, qos, stored)
      return
    }
    if (!client.connected) {
      this.#hold(client, topic, payload, qos)
      return
    }
    if (this.#overBound(client)) {
      this.#counters.limits.hit('max_pending_bytes', { clientId: client.id, topic })
      this.#counters.dropped.slow_consumer++
      return
    }
    this.#send(client, topic, payload, qos, undefined)
  }

  /** A channel packet for a client connected here. */
  arrive (client: Client, packet: AedesPublishPacket): void {
    if (client.closed) return
    const inner = unwrapPayload(packet.payload)
    if (inner === null) return
    // a message at QoS 1/2 for a persistent session was queued before it was sent on
    const queued = !client.clean && packet.qos > 0
    this.deliver(client, inner.topic, inner.payload, packet.qos, queued ? packet : undefined)
  }

  /**
   * Aedes replays a persistent session's queue through authorizeForward and
   * writes the very packet it passed in, so the rewrite happens in place. A
   * message older than message_expiry is refused here, and Aedes then
   * removes it from the queue.
   */
  unwrapQueued (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic !== channelOf(client.id)) return null
    const inner = unwrapPayload(packet.payload)
    if (inner === null) return null
    if (this.#expired(client, inner.sentAt, inner.topic)) return null
    packet.topic = inner.topic
    packet.payload = inner.payload
    packet.retain = false
    const forwarded = this.#hostForward.call(this.#broker, client, packet)
    if (forwarded === null || forwarded === undefined) return null
    this.#counters.delivered++
    return packet
  }

  #deliverQueued (client: Client, topic: string, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket): void {
    // before the CONNACK: the replay that follows it sends what the queue holds, this message included
    if (!hasConnack(client)) return
    const waiting = this.#waiting.get(client)
    if (waiting?.sent.delete(keyOf(stored)) === true) return
    if (waiting?.lagging === true) {
      waiting.again = true
      this.#counters.queued++
      return
    }
    if (!client.connected) {
      // the replay is running and may have read the queue before this message came: catch up after it
      this.#lag(client)
      return
    }
    if (this.#overBound(client)) {
      this.#counters.limits.hit('max_pending_bytes', { clientId: client.id, topic })
      this.#counters.queued++
      this.#lag(client)
      return
    }
    this.#send(client, topic, payload, qos, stored)
  }

  /**
   * Writes straight to the target. Aedes's own deliverQoS would lower the QoS
   * to that of any subscription the target holds on the delivered topic,
   * which docs/behaviour.md §2 rules out. A queued message's packet id is
   * recorded in the queue before it is written.
   */
  #send (client: Client, topic: string, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): void {
    const packet = {
      cmd: 'publish',
      topic,
      payload,
      qos,
      retain: false,
      dup: false,
      messageId: qos > 0 ? nextMessageId(client) : undefined,
      brokerId: stored?.brokerId,
      brokerCounter: stored?.brokerCounter
    } as AedesPublishPacket
    const forwarded = this.#hostForward.call(this.#broker, client, packet)
    if (forwarded === null || forwarded === undefined) {
      this.#log.debug({ clientId: client.id, topic }, 'P2P delivery refused by authorizeForward')
      return
    }
    if (stored === undefined) {
      this.#write(client, forwarded)
      return
    }
    recordSending(this.#broker, client, packet).then(() => { this.#write(client, forwarded) }, (err: unknown) => {
      // the session was taken over or cleaned meanwhile: its queue is gone, so is this copy
      this.#log.debug({ err, clientId: client.id }, 'P2P message no longer queued; not delivered')
    })
  }

  #write (client: Client, packet: AedesPublishPacket): void {
    writePacket(client, packet, (err) => {
      if (err === null) {
        this.#counters.delivered++
      } else {
        this.#log.debug({ err, clientId: client.id }, 'P2P delivery failed; a persistent session keeps it queued')
      }
    })
  }

  /** Bytes written to the connection that its socket has not taken yet, past the bound. */
  #overBound (client: Client): boolean {
    return client.conn.writableLength > this.#limits.max_pending_bytes
  }

  #expired (client: Client, sentAt: number | undefined, topic: string): boolean {
    const expiry = this.#limits.message_expiry
    if (expiry === 0 || sentAt === undefined || Date.now() - sentAt <= expiry * 1000) return false
    this.#counters.dropped.expired++
    this.#counters.limits.hit('message_expiry', { clientId: client.id, topic })
    return true
  }

  #waitingOf (client: Client): Waiting {
    let waiting = this.#waiting.get(client)
    if (waiting === undefined) {
      const created: Waiting = waiting = { held: undefined, heldBytes: 0, lagging: false, reading: false, again: false, sent: new Set() }
      this.#waiting.set(client, created)
      // 'connected' comes once the client has had its CONNACK and its queue replayed
      if (!client.connected) client.once('connected', () => { this.#ready(client, created) })
    }
    return waiting
  }

  #hold (client: Client, topic: string, payload: Buffer, qos: 0 | 1 | 2): void {
    const waiting = this.#waitingOf(client)
    if (waiting.heldBytes + payload.length > this.#limits.max_pending_bytes) {
      this.#counters.limits.hit('max_pending_bytes', { clientId: client.id, topic })
      this.#counters.dropped.slow_consumer++
      return
    }
    waiting.heldBytes += payload.length
    ;(waiting.held ??= []).push({ topic, payload, qos })
  }

  /** The client has had its CONNACK and its queue replayed. */
  #ready (client: Client, waiting: Waiting): void {
    const held = waiting.held
    waiting.held = undefined
    waiting.heldBytes = 0
    if (held !== undefined) for (const m of held) this.deliver(client, m.topic, m.payload, m.qos, undefined)
    if (waiting.lagging) void this.#catchUp(client, waiting)
  }

  /** Queued messages for `client` wait in its queue until a catch-up sends them. */
  #lag (client: Client): void {
    const waiting = this.#waitingOf(client)
    // what an earlier catch-up sent is long acknowledged or in flight: its record can go
    if (!waiting.lagging) waiting.sent.clear()
    waiting.lagging = true
    waiting.again = true
    // a client not yet ready is caught up by #ready()
    if (client.connected) this.#afterDrain(client, waiting)
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
    if (!waiting.lagging || waiting.reading || client.closed) return
    waiting.reading = true
    const channel = channelOf(client.id)
    try {
      while (waiting.again) {
        waiting.again = false
        for await (const packet of queuedPackets(this.#broker, client.id)) {
          if (client.closed) return
          if (packet.cmd !== 'publish' || packet.topic !== channel || packet.messageId !== undefined && packet.messageId !== null) continue
          const key = keyOf(packet)
          if (waiting.sent.has(key)) continue
          const inner = unwrapPayload(packet.payload)
          if (inner === null) continue
          if (this.#expired(client, inner.sentAt, inner.topic)) {
            await removeQueued(this.#broker, client.id, packet, nextMessageId(client))
            continue
          }
          if (this.#overBound(client)) {
            // still behind: look again once the socket drains
            waiting.again = true
            waiting.reading = false
            this.#afterDrain(client, waiting)
            return
          }
          waiting.sent.add(key)
          this.#send(client, inner.topic, inner.payload, packet.qos, packet)
        }
      }
      waiting.lagging = false
    } catch (err) {
      // it stays behind: the session's queue is replayed when it next connects
      this.#log.warn({ err, clientId: client.id }, 'P2P catch-up could not read the session queue; it is replayed at the next connect')
    } finally {
      waiting.reading = false
    }
  }
}
