/**
 * Writing P2P messages to a connected target: live ones straight to its
 * socket, and the internal form turned back into the delivered message when
 * it comes off a session queue or a channel. What may not be written yet
 * waits as pending.ts says, within max_pending_bytes (docs/behaviour.md §7).
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import { channelOf, unwrapPayload, type Unwrapped } from './channel.js'
import type { Counters } from './counters.js'
import { expired, propertiesFor, weightOf, type MessageHeaders, type PublishProperties } from './headers.js'
import { nextMessageId, writePacket } from './host.js'
import { speaksMqtt5, tooLargeFor } from './host-mqtt5.js'
import { recordSending, removeQueued } from './host-store.js'
import type { PluginLimits } from './limits.js'
import type { Logger } from './log.js'
import type { Pending } from './pending.js'

/** A PUBLISH as Aedes's typings lack it: with MQTT 5 properties. */
type Publish = AedesPublishPacket & { properties?: PublishProperties }

export class Delivery {
  readonly #broker: Aedes
  readonly #hostForward: Aedes['authorizeForward']
  readonly #counters: Counters
  readonly #limits: PluginLimits
  readonly #pending: Pending
  readonly #log: Logger

  constructor (broker: Aedes, hostForward: Aedes['authorizeForward'], counters: Counters, limits: PluginLimits, pending: Pending, log: Logger) {
    this.#broker = broker
    this.#hostForward = hostForward
    this.#counters = counters
    this.#limits = limits
    this.#pending = pending
    this.#log = log
    pending.sendP2P = (client, packet) => this.#sendQueued(client, packet)
  }

  /**
   * A message for `client`, a client of this broker. `stored` is its copy in
   * the client's session queue, for a message at QoS 1/2 to a persistent
   * session. The sender is never held up by its target. False when the
   * target did not take it (closed, or not reading: `slow_consumer`); a
   * message dropped as the host's authorizeForward, its expiry or the
   * target's Maximum Packet Size says counts as taken, as in Aedes.
   */
  deliver (client: Client, topic: string, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined, headers: MessageHeaders): boolean {
    if (client.closed) return false
    if (stored !== undefined) {
      if (!this.#pending.isQueuedAway(client, stored)) this.#send(client, topic, payload, qos, stored, headers)
      return true
    }
    if (!client.connected) {
      if (this.#pending.hold(client, weightOf(payload, headers), () => { this.deliver(client, topic, payload, qos, undefined, headers) })) return true
      this.#slow(client, topic)
      return false
    }
    if (this.#pending.dropsLive(client, topic)) {
      this.#counters.dropped.slow_consumer++
      return false
    }
    this.#send(client, topic, payload, qos, undefined, headers)
    return true
  }

  /** A channel packet for a client connected here. */
  arrive (client: Client, packet: AedesPublishPacket): void {
    if (client.closed) return
    const inner = unwrapPayload(packet.payload)
    if (inner === null) return
    // a message at QoS 1/2 for a persistent session was queued before it was sent on
    const queued = !client.clean && packet.qos > 0
    this.deliver(client, inner.topic, inner.payload, packet.qos, queued ? packet : undefined, inner.headers)
  }

  /**
   * Aedes replays a persistent session's queue through authorizeForward and
   * writes the very packet it passed in, so the rewrite happens in place. A
   * message older than message_expiry, or past its sender's expiry, is
   * refused here, and Aedes then removes it from the queue.
   */
  unwrapQueued (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic !== channelOf(client.id)) return null
    const inner = unwrapPayload(packet.payload)
    if (inner === null) return null
    const now = Date.now()
    if (this.#expired(client, inner, now)) return null
    packet.topic = inner.topic
    packet.payload = inner.payload
    packet.retain = false
    ;(packet as Publish).properties = speaksMqtt5(client) ? propertiesFor(inner.headers, now) : undefined
    const forwarded = this.#hostForward.call(this.#broker, client, packet)
    if (forwarded === null || forwarded === undefined) return null
    // sent at every reconnect, it would close the connection every time
    if (this.#tooLarge(client, forwarded)) return null
    this.#counters.delivered++
    return packet
  }

  /** A queued packet the catch-up found: sent if it is a P2P one. */
  #sendQueued (client: Client, packet: AedesPublishPacket): boolean {
    if (packet.topic !== channelOf(client.id)) return false
    const inner = unwrapPayload(packet.payload)
    if (inner === null) return true
    if (this.#expired(client, inner, Date.now())) {
      this.#unqueue(client, packet)
      return true
    }
    this.#send(client, inner.topic, inner.payload, packet.qos, packet, inner.headers)
    return true
  }

  /**
   * Writes straight to the target. Aedes's own deliverQoS would lower the QoS
   * to that of any subscription the target holds on the delivered topic,
   * which docs/behaviour.md §2 rules out. A queued message's packet id is
   * recorded in the queue before it is written. An MQTT 5 target gets the
   * sender's properties, and who the sender is.
   */
  #send (client: Client, topic: string, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined, headers: MessageHeaders): void {
    const now = headers.expiresAt === 0 ? 0 : Date.now()
    if (now !== 0 && expired(headers, now)) {
      this.#counters.dropped.expired++
      if (stored !== undefined) this.#unqueue(client, stored)
      return
    }
    const packet: Publish = {
      cmd: 'publish',
      topic,
      payload,
      qos,
      retain: false,
      dup: false,
      messageId: qos > 0 ? nextMessageId(client) : undefined,
      brokerId: stored?.brokerId,
      brokerCounter: stored?.brokerCounter,
      properties: speaksMqtt5(client) ? propertiesFor(headers, now) : undefined
    } as Publish
    const forwarded = this.#hostForward.call(this.#broker, client, packet)
    if (forwarded === null || forwarded === undefined) {
      this.#log.debug({ clientId: client.id, topic }, 'P2P delivery refused by authorizeForward')
      return
    }
    if (this.#tooLarge(client, forwarded)) {
      // a queued copy goes too: it would be too large at every reconnect
      if (stored !== undefined) this.#unqueue(client, stored)
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

  /** A message past the Maximum Packet Size an MQTT 5 target asked for is dropped, as MQTT 5 says: counted `too_large`. */
  #tooLarge (client: Client, packet: AedesPublishPacket): boolean {
    if (!tooLargeFor(client, packet)) return false
    this.#counters.dropped.too_large++
    this.#counters.limits.hit('maximum_packet_size', { clientId: client.id, topic: packet.topic })
    return true
  }

  #unqueue (client: Client, packet: AedesPublishPacket): void {
    removeQueued(this.#broker, client.id, packet, nextMessageId(client)).catch((err: unknown) => {
      this.#log.debug({ err, clientId: client.id }, 'P2P message already gone from the queue')
    })
  }

  #slow (client: Client, topic: string): void {
    this.#pending.hit(client, topic)
    this.#counters.dropped.slow_consumer++
  }

  /** A queued message past message_expiry or its sender's own expiry, counted as dropped. */
  #expired (client: Client, { sentAt, topic, headers }: Unwrapped, now: number): boolean {
    if (expired(headers, now)) {
      this.#counters.dropped.expired++
      return true
    }
    const expiry = this.#limits.message_expiry
    if (expiry === 0 || sentAt === undefined || now - sentAt <= expiry * 1000) return false
    this.#counters.dropped.expired++
    this.#counters.limits.hit('message_expiry', { clientId: client.id, topic })
    return true
  }
}
