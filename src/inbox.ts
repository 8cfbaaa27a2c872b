/**
 * The broker-internal form of a P2P message: an exact per-client channel
 * (`$p2p/<escaped client id>`) and a payload envelope that carries the
 * delivered topic. This is what travels through Aedes's emitter and sits in
 * its persistence queues; it is turned back into the delivered message only
 * on the way out to the target.
 */

export const INBOX_ROOT = '$p2p'
const INBOX_PREFIX = INBOX_ROOT + '/'
const ENVELOPE_VERSION = 1

/**
 * Escaping makes the channel a single, literal level: an id holding `/`, `+`,
 * `#` (or `*`, a Redis pattern character) can neither add levels nor act as a
 * wildcard, so it can never match anybody else's channel.
 */
export function inboxTopic (clientId: string): string {
  let escaped = encodeURIComponent(clientId)
  if (escaped.includes('*')) escaped = escaped.replaceAll('*', '%2A')
  return INBOX_PREFIX + escaped
}

/** True for the internal namespace, and for any filter reaching into it. */
export function isInternalTopic (topic: string): boolean {
  return topic.charCodeAt(0) === 36 && (topic.startsWith(INBOX_PREFIX) || topic === INBOX_ROOT)
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
export function unwrapPayload (envelope: Buffer | Uint8Array): Unwrapped | null {
  const buf = Buffer.isBuffer(envelope) ? envelope : Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength)
  if (buf.length < 3 || buf[0] !== ENVELOPE_VERSION) return null
  const end = 3 + buf.readUInt16BE(1)
  if (end > buf.length) return null
  return { topic: buf.toString('utf8', 3, end), payload: buf.subarray(end) }
}
