/**
 * Writing P2P messages to a connected target: live ones straight to its
 * socket, and the internal form turned back into the delivered message when
 * it comes off a session queue or a channel.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import { channelOf, unwrapPayload } from './channel.js'
import type { Counters } from './counters.js'
import { nextMessageId, recordSending, writePacket } from './host.js'
import type { Logger } from './log.js'

export class Delivery {
  readonly #broker: Aedes
  readonly #hostForward: Aedes['authorizeForward']
  readonly #counters: Counters
  readonly #log: Logger

  constructor (broker: Aedes, hostForward: Aedes['authorizeForward'], counters: Counters, log: Logger) {
    this.#broker = broker
    this.#hostForward = hostForward
    this.#counters = counters
    this.#log = log
  }

  /**
   * Writes straight to a connected target. Aedes's own deliverQoS would lower
   * the QoS to that of any subscription the target holds on the delivered
   * topic, which docs/behaviour.md §2 rules out; `stored` is the queued copy of
   * a message for a persistent session, whose packet id must be recorded
   * before writing.
   */
  deliver (client: Client, topic: string, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): void {
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

  /** A channel packet for a client connected here, which has had its CONNACK. */
  arrive (client: Client, packet: AedesPublishPacket): void {
    if (client.closed) return
    const inner = unwrapPayload(packet.payload)
    if (inner === null) return
    this.deliver(client, inner.topic, inner.payload, packet.qos, this.isQueued(client, packet) ? packet : undefined)
  }

  /** A message at QoS 1/2 for a persistent session was queued before it was sent on. */
  isQueued (client: Client, packet: AedesPublishPacket): boolean {
    return !client.clean && packet.qos > 0
  }

  /**
   * Aedes replays a persistent session's queue through authorizeForward and
   * writes the very packet it passed in, so the rewrite happens in place.
   */
  unwrapQueued (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic !== channelOf(client.id)) return null
    const inner = unwrapPayload(packet.payload)
    if (inner === null) return null
    packet.topic = inner.topic
    packet.payload = inner.payload
    packet.retain = false
    const forwarded = this.#hostForward.call(this.#broker, client, packet)
    if (forwarded === null || forwarded === undefined) return null
    this.#counters.delivered++
    return packet
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
}
