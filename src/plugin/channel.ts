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
import { decodeProperties, encodeProperties, type MessageHeaders } from './headers.js'

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
// version 1 had no time, version 2 no sender, expiry or properties; messages they queued are still read
const ENVELOPE_V1 = 1
const ENVELOPE_V2 = 2
const ENVELOPE_VERSION = 3
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
 * The envelope: a version byte; when the message was sent (ms since the
 * epoch, 6 bytes: message_expiry is counted from it) and when its sender's
 * expiry runs out (6 bytes, 0 for never); the topic (2-byte length, then
 * UTF-8); the sender's client id (the same); the carried MQTT 5 properties
 * (4-byte length, then headers.ts's encoding); then the payload as it came.
 */
export function wrapPayload (topic: string, payload: Buffer | string, headers: MessageHeaders, sentAt = Date.now()): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const properties = encodeProperties(headers.properties)
  const topicLength = Buffer.byteLength(topic)
  const senderLength = Buffer.byteLength(headers.sender)
  const propertiesLength = properties === null ? 0 : properties.length
  const out = Buffer.allocUnsafe(1 + 2 * TIME_BYTES + 2 + topicLength + 2 + senderLength + 4 + propertiesLength + body.length)
  out[0] = ENVELOPE_VERSION
  let at = out.writeUIntBE(sentAt, 1, TIME_BYTES)
  at = out.writeUIntBE(headers.expiresAt, at, TIME_BYTES)
  at = out.writeUInt16BE(topicLength, at)
  at += out.write(topic, at, topicLength, 'utf8')
  at = out.writeUInt16BE(senderLength, at)
  at += out.write(headers.sender, at, senderLength, 'utf8')
  at = out.writeUInt32BE(propertiesLength, at)
  if (properties !== null) at += properties.copy(out, at)
  body.copy(out, at)
  return out
}

export interface Unwrapped {
  topic: string
  payload: Buffer
  /** ms since the epoch; undefined for an envelope from before it was kept */
  sentAt: number | undefined
  /** none (no sender, no expiry) for an envelope from before they were kept */
  headers: MessageHeaders
}

const NO_HEADERS: MessageHeaders = Object.freeze({ sender: '', properties: undefined, expiresAt: 0 })

/** null when the bytes are not an envelope this version can read. */
export function unwrapPayload (envelope: Buffer | Uint8Array | string): Unwrapped | null {
  if (typeof envelope === 'string') return null
  const buf = Buffer.isBuffer(envelope) ? envelope : Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength)
  const version = buf[0]
  if (version === ENVELOPE_VERSION) return unwrapV3(buf)
  let at: number
  let sentAt: number | undefined
  if (version === ENVELOPE_V2 && buf.length >= 3 + TIME_BYTES) {
    sentAt = buf.readUIntBE(1, TIME_BYTES)
    at = 1 + TIME_BYTES
  } else if (version === ENVELOPE_V1 && buf.length >= 3) {
    at = 1
  } else {
    return null
  }
  const end = at + 2 + buf.readUInt16BE(at)
  if (end > buf.length) return null
  return { topic: buf.toString('utf8', at + 2, end), payload: buf.subarray(end), sentAt, headers: NO_HEADERS }
}

function unwrapV3 (buf: Buffer): Unwrapped | null {
  // a truncated envelope reads as none, never as a throw
  let at = 1 + 2 * TIME_BYTES
  if (buf.length < at + 2) return null
  const sentAt = buf.readUIntBE(1, TIME_BYTES)
  const expiresAt = buf.readUIntBE(1 + TIME_BYTES, TIME_BYTES)
  const topicEnd = at + 2 + buf.readUInt16BE(at)
  if (topicEnd + 2 > buf.length) return null
  const topic = buf.toString('utf8', at + 2, topicEnd)
  at = topicEnd
  const senderEnd = at + 2 + buf.readUInt16BE(at)
  if (senderEnd + 4 > buf.length) return null
  const sender = buf.toString('utf8', at + 2, senderEnd)
  at = senderEnd
  const propertiesEnd = at + 4 + buf.readUInt32BE(at)
  if (propertiesEnd > buf.length) return null
  const properties = propertiesEnd === at + 4 ? undefined : decodeProperties(buf.subarray(at + 4, propertiesEnd))
  return { topic, payload: buf.subarray(propertiesEnd), sentAt, headers: { sender, properties, expiresAt } }
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

  pack (target: string, topic: string, payload: Buffer, qos: 0 | 1 | 2, headers: MessageHeaders): AedesPublishPacket {
    return {
      cmd: 'publish',
      topic: channelOf(target),
      payload: wrapPayload(topic, payload, headers),
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
