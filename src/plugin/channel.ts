/**
 * A client's channel: `$p2p/<escaped client id>`, the one topic its P2P
 * messages travel on inside the brokers, and the envelope that carries the
 * delivered topic in front of the payload. A message in this form moves
 * through Aedes's emitter and waits in its persistence queues; it becomes the
 * delivered message again only on the way out to its target.
 *
 * A client with a persistent session also holds a subscription to its own
 * channel in the persistence: that is how a target with a session to queue
 * in is found, on this node or any other (docs/architecture.md).
 */
import type { AedesPublishPacket } from 'aedes'

export const CHANNEL_ROOT = '$p2p'
const CHANNEL_PREFIX = CHANNEL_ROOT + '/'
/** the QoS of a session's subscription to its own channel: the highest, so Aedes never lowers a queued message's */
export const CHANNEL_QOS = 2
const ENVELOPE_VERSION = 1

/**
 * Escaping makes the channel a single, literal level: an id holding `/`, `+`,
 * `#` (or `*`, a Redis pattern character) can neither add levels nor act as a
 * wildcard, so it can never match anybody else's channel.
 */
export function channelOf (clientId: string): string {
  let escaped = encodeURIComponent(clientId)
  if (escaped.includes('*')) escaped = escaped.replaceAll('*', '%2A')
  return CHANNEL_PREFIX + escaped
}

/** True for a channel, and for any filter reaching into the channels' namespace. */
export function isChannel (topic: string): boolean {
  return topic.charCodeAt(0) === 36 && (topic.startsWith(CHANNEL_PREFIX) || topic === CHANNEL_ROOT)
}

export function wrapPayload (topic: string, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const topicLength = Buffer.byteLength(topic)
  const out = Buffer.allocUnsafe(3 + topicLength + body.length)
  out[0] = ENVELOPE_VERSION
  out.writeUInt16BE(topicLength, 1)
  out.write(topic, 3, topicLength, 'utf8')
  body.copy(out, 3 + topicLength)
  return out
}

export interface Unwrapped { topic: string, payload: Buffer }

/** null when the bytes are not an envelope this version wrote. */
export function unwrapPayload (envelope: Buffer | Uint8Array | string): Unwrapped | null {
  if (typeof envelope === 'string') return null
  const buf = Buffer.isBuffer(envelope) ? envelope : Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength)
  if (buf.length < 3 || buf[0] !== ENVELOPE_VERSION) return null
  const end = 3 + buf.readUInt16BE(1)
  if (end > buf.length) return null
  return { topic: buf.toString('utf8', 3, end), payload: buf.subarray(end) }
}

/**
 * Makes channel packets. They get an id space of their own for persistence
 * keys, apart from the broker's counter: Aedes drops a packet whose counter is
 * not above the last one a client saw from that id, and P2P and ordinary
 * traffic finish their persistence writes in different orders.
 */
export class ChannelPackets {
  readonly #source: string
  #counter = 0

  constructor (brokerId: string) {
    this.#source = brokerId + '-p2p'
  }

  pack (target: string, topic: string, payload: Buffer, qos: 0 | 1 | 2): AedesPublishPacket {
    return {
      cmd: 'publish',
      topic: channelOf(target),
      payload: wrapPayload(topic, payload),
      qos,
      retain: false,
      dup: false,
      brokerId: this.#source,
      brokerCounter: ++this.#counter
    } as AedesPublishPacket
  }
}
