/**
 * What a P2P message carries besides its topic and payload (docs/behaviour.md
 * §9): who sent it, when it expires, and the sender's MQTT 5 properties. The
 * target gets them only if it speaks MQTT 5; a 3.1.1 target gets the message
 * as before, but a message past its sender's expiry reaches nobody.
 *
 * Topic alias and subscription identifier belong to one connection and are
 * never carried; the message expiry is carried as an absolute time, so a
 * queued message counts down; `p2p-sender` is the broker's to write.
 */
import type { IPublishPacket } from 'mqtt-packet'

/** The largest message expiry interval MQTT 5 can carry, in seconds. */
const MAX_EXPIRY = 0xFFFFFFFF

/** The user property that names the authenticated sender to an MQTT 5 target. */
export const SENDER_PROPERTY = 'p2p-sender'

/** A PUBLISH's MQTT 5 properties, as mqtt-packet reads and writes them. */
export type PublishProperties = NonNullable<IPublishPacket['properties']>

/** The properties a P2P message carries from its sender, expiry aside. */
type Carried = Pick<PublishProperties, 'payloadFormatIndicator' | 'contentType' | 'responseTopic' | 'correlationData' | 'userProperties'>

export interface MessageHeaders {
  /** the client id of the sender: its connection's, or its will's owner's; '' for server code */
  readonly sender: string
  /** the sender's properties, or what the store kept of them; undefined when it sent none */
  readonly properties: Readonly<PublishProperties> | undefined
  /** ms since the epoch when the sender's message expiry runs out; 0 for never */
  readonly expiresAt: number
}

/** The headers of a message from `sender` with these properties, as it arrives now. */
export function headersOf (sender: string, properties: PublishProperties | null | undefined): MessageHeaders {
  // a packet read back from Redis has null where it had nothing
  if (properties === null || properties === undefined) return { sender, properties: undefined, expiresAt: 0 }
  const interval = properties.messageExpiryInterval
  return { sender, properties, expiresAt: typeof interval === 'number' && interval > 0 ? Date.now() + interval * 1000 : 0 }
}

/**
 * What holding a message weighs, in bytes: its payload, and the strings and
 * bytes of what its sender put beside it (MQTT 5 lets that be as large as
 * the payload). A bound on what waits counts it, so properties cannot
 * carry more past the bound than the payload could.
 */
export function weightOf (payload: Buffer, headers: MessageHeaders): number {
  return payload.length + MESSAGE_OVERHEAD + propertiesWeight(headers.properties)
}

/** What a PUBLISH's properties weigh in memory, in bytes (see weightOf). */
export function propertiesWeight (p: Readonly<PublishProperties> | null | undefined): number {
  if (p === undefined || p === null) return 0
  let weight = (p.contentType?.length ?? 0) + (p.responseTopic?.length ?? 0) + (p.correlationData?.length ?? 0)
  const user = p.userProperties
  if (user !== undefined) {
    for (const key of Object.keys(user)) {
      const value = user[key] as string | string[]
      weight += ENTRY_OVERHEAD + key.length
      if (typeof value === 'string') weight += value.length
      else for (const one of value) weight += ENTRY_OVERHEAD + one.length
    }
  }
  return weight
}

/**
 * What a message, and each user property in it, costs in memory beyond its
 * characters: so that many empty ones weigh what they hold, not nothing.
 */
const MESSAGE_OVERHEAD = 64
const ENTRY_OVERHEAD = 32

/** The most bytes an MQTT string holds. */
const MQTT_STRING = 65535

/**
 * True when every string a message carries fits an MQTT string once in
 * UTF-8. One read from the wire fits as it came, but invalid UTF-8 is read
 * as U+FFFD, three bytes each, so it may not fit when it is written again;
 * and the envelope keeps the topic and the sender in MQTT's 2-byte lengths.
 */
export function carriable (topic: string, headers: MessageHeaders): boolean {
  if (!fits(topic) || !fits(headers.sender)) return false
  const p = headers.properties
  if (p === undefined) return true
  if ((p.contentType !== undefined && !fits(p.contentType)) || (p.responseTopic !== undefined && !fits(p.responseTopic))) return false
  const user = p.userProperties
  if (user === undefined) return true
  for (const key of Object.keys(user)) {
    if (!fits(key)) return false
    const value = user[key] as string | string[]
    if (typeof value === 'string' ? !fits(value) : !value.every(fits)) return false
  }
  return true
}

// a string of up to a third of the bound fits whatever it holds; only a longer one is measured
const fits = (text: string): boolean => text.length * 3 <= MQTT_STRING || Buffer.byteLength(text) <= MQTT_STRING

export function expired (headers: MessageHeaders, now: number): boolean {
  return headers.expiresAt !== 0 && now >= headers.expiresAt
}

/**
 * The properties an MQTT 5 target receives (`now` is read only for a message that expires): the carried ones, the time left
 * before expiry (MQTT 5 §3.3.2.3.3: the receiver is told what remains), and
 * the sender stamped over whatever the sender itself put there.
 */
export function propertiesFor (headers: MessageHeaders, now: number): PublishProperties | undefined {
  const from = headers.properties
  const sender = headers.sender
  if (from === undefined && sender === '' && headers.expiresAt === 0) return undefined
  const out: PublishProperties = {}
  if (from !== undefined) {
    if (from.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = from.payloadFormatIndicator
    if (from.contentType !== undefined) out.contentType = from.contentType
    if (from.responseTopic !== undefined) out.responseTopic = from.responseTopic
    if (from.correlationData !== undefined) out.correlationData = from.correlationData
  }
  // at least 1 s, and at most what MQTT can say, however another node's clock stood
  if (headers.expiresAt !== 0) out.messageExpiryInterval = Math.min(MAX_EXPIRY, Math.max(1, Math.ceil((headers.expiresAt - now) / 1000)))
  const user = from?.userProperties
  if (user !== undefined || sender !== '') {
    // without a prototype, as MQTT.js reads them: a key named __proto__ stays a key
    const copy: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
    if (user !== undefined) {
      for (const key of Object.keys(user)) if (key !== SENDER_PROPERTY) copy[key] = user[key] as string | string[]
    }
    // a message from server code names nobody, and nobody may name a sender for it
    if (sender !== '') copy[SENDER_PROPERTY] = sender
    if (Object.keys(copy).length > 0) out.userProperties = copy
  }
  return out
}

/** The carried properties in the form a channel's envelope keeps them; null when there are none. */
export function encodeProperties (properties: Readonly<PublishProperties> | undefined): Buffer | null {
  if (properties === undefined) return null
  const kept: Record<string, unknown> = {}
  let any = false
  for (const key of CARRIED) {
    const value = properties[key]
    if (value === undefined) continue
    kept[key] = key === 'correlationData' ? (value as Buffer).toString('base64') : value
    any = true
  }
  return any ? Buffer.from(JSON.stringify(kept)) : null
}

/** The properties an envelope kept; undefined for none or for bytes that are not what encodeProperties() wrote. */
export function decodeProperties (bytes: Buffer): PublishProperties | undefined {
  let kept: unknown
  try {
    kept = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof kept !== 'object' || kept === null) return undefined
  const read = kept as Record<string, unknown>
  const out: Carried = {}
  if (typeof read.payloadFormatIndicator === 'boolean') out.payloadFormatIndicator = read.payloadFormatIndicator
  if (typeof read.contentType === 'string') out.contentType = read.contentType
  if (typeof read.responseTopic === 'string') out.responseTopic = read.responseTopic
  if (typeof read.correlationData === 'string') out.correlationData = Buffer.from(read.correlationData, 'base64')
  if (typeof read.userProperties === 'object' && read.userProperties !== null) out.userProperties = read.userProperties as Carried['userProperties']
  return out
}

const CARRIED: ReadonlyArray<keyof Carried> = ['payloadFormatIndicator', 'contentType', 'responseTopic', 'correlationData', 'userProperties']
