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
/**
 * Every persistent session also holds a subscription to the namespace's root,
 * `$p2p`, on which nothing is ever published: the persistence's client list
 * for that topic is the list of P2P sessions, so a broker started again
 * knows which sessions it holds.
 */
export const SESSIONS_TOPIC = CHANNEL_ROOT
// version 1 had no time; messages it queued are still read
const ENVELOPE_V1 = 1
const ENVELOPE_VERSION = 2
const TIME_BYTES = 6

/**
 * Escaping makes the channel a single, literal level: an id holding `/`, `+`,
 * `#` (or `*`, a Redis pattern character) can neither add levels nor act as a
 * wildcard, so it can never match anybody else's channel.
 */
export function channelOf (clientId: string): string {
  return CHANNEL_PREFIX + escapeLevel(clientId)
}

/**
 * Who owns a client id, kept beside its session in the store as a
 * subscription nothing is published on (docs/behaviour.md §8):
 * `<channel>/<escaped username>` for a persistent session, lasting as long
 * as the session; `<channel>/<escaped username>/<escaped broker id>` for a
 * clean session's connection to that broker, so that other nodes see it.
 */
export function ownerMarker (clientId: string, username: string, brokerId?: string): string {
  const owner = channelOf(clientId) + '/' + escapeLevel(username)
  return brokerId === undefined ? owner : owner + '/' + escapeLevel(brokerId)
}

/** The owner a stored subscription of `clientId` names; null for any other subscription. */
export function ownerOf (clientId: string, topic: string): { username: string, brokerId: string | undefined } | null {
  const channel = channelOf(clientId)
  if (!topic.startsWith(channel + '/')) return null
  const [username, brokerId, more] = topic.slice(channel.length + 1).split('/')
  if (username === undefined || more !== undefined) return null
  try {
    return { username: decodeURIComponent(username), brokerId: brokerId === undefined ? undefined : decodeURIComponent(brokerId) }
  } catch {
    return null
  }
}

function escapeLevel (text: string): string {
  const escaped = encodeURIComponent(text)
  return escaped.includes('*') ? escaped.replaceAll('*', '%2A') : escaped
}

/** True for a channel, and for any filter reaching into the channels' namespace. */
export function isChannel (topic: string): boolean {
  return topic.charCodeAt(0) === 36 && (topic.startsWith(CHANNEL_PREFIX) || topic === CHANNEL_ROOT)
}

/**
 * The envelope: a version byte, when the message was sent (ms since the
 * epoch, 6 bytes: message_expiry is counted from it), the topic's length
 * (2 bytes) and the topic, then the payload as it came.
 */
export function wrapPayload (topic: string, payload: Buffer | string, sentAt = Date.now()): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const topicLength = Buffer.byteLength(topic)
  const head = 1 + TIME_BYTES + 2
  const out = Buffer.allocUnsafe(head + topicLength + body.length)
  out[0] = ENVELOPE_VERSION
  out.writeUIntBE(sentAt, 1, TIME_BYTES)
  out.writeUInt16BE(topicLength, 1 + TIME_BYTES)
  out.write(topic, head, topicLength, 'utf8')
  body.copy(out, head + topicLength)
  return out
}

export interface Unwrapped {
  topic: string
  payload: Buffer
  /** ms since the epoch; undefined for an envelope from before it was kept */
  sentAt: number | undefined
}

/** null when the bytes are not an envelope this version can read. */
export function unwrapPayload (envelope: Buffer | Uint8Array | string): Unwrapped | null {
  if (typeof envelope === 'string') return null
  const buf = Buffer.isBuffer(envelope) ? envelope : Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength)
  let at: number
  let sentAt: number | undefined
  if (buf[0] === ENVELOPE_VERSION && buf.length >= 3 + TIME_BYTES) {
    sentAt = buf.readUIntBE(1, TIME_BYTES)
    at = 1 + TIME_BYTES
  } else if (buf[0] === ENVELOPE_V1 && buf.length >= 3) {
    at = 1
  } else {
    return null
  }
  const end = at + 2 + buf.readUInt16BE(at)
  if (end > buf.length) return null
  return { topic: buf.toString('utf8', at + 2, end), payload: buf.subarray(end), sentAt }
}

/**
 * Makes channel packets. They get an id space of their own for persistence
 * keys, apart from the broker's counter: Aedes drops a packet whose counter is
 * not above the last one a client saw from that id, and P2P and ordinary
 * traffic finish their persistence writes in different orders. The counter
 * starts from the clock, so it keeps rising across restarts of a broker with
 * a fixed id: aedes-persistence-level keys and replays queues by it.
 */
export class ChannelPackets {
  readonly #source: string
  #counter = firstCounter()

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

/**
 * A packet counter that a restarted broker starts above any its previous
 * run reached: a thousand counts per millisecond of uptime is more than any
 * broker publishes, and it stays a safe integer past the year 2200.
 */
export function firstCounter (): number {
  return Date.now() * 1000
}
