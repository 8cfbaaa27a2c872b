/**
 * A P2P message from server code that wants to know what became of it: the
 * handle's send(), which the admin console's "send a P2P message" form uses.
 * It takes the same road as any P2P publish (rules, queues, the cluster)
 * and reads the answer a sender would get.
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { Answer } from './answers.js'
import { P2PError } from './errors.js'
import { connectedClient } from './host.js'
import { Reason } from './host-mqtt5.js'
import type { TopicParser } from './topic.js'

export interface SendOptions {
  /** @default 0 */
  qos?: 0 | 1 | 2
}

/**
 * - `accepted`: written to the target, stored in its queue, or taken by the
 *   cluster; at QoS 0, sent with no guarantee
 * - `no_session`: the target has neither a connection nor a session
 * - `refused`: a rule or the authorize hook refused it
 * - `not_taken`: the target is connected here but could not take it now
 *   (too slow a reader, or the message is larger than it accepts)
 * - `queue_full`: the target's queue is full
 * - `unavailable`: too much already waits for the cluster (Redis away)
 * - `failed`: the store failed
 */
export type SendOutcome = 'accepted' | 'no_session' | 'refused' | 'not_taken' | 'queue_full' | 'unavailable' | 'failed'

export interface SendResult {
  outcome: SendOutcome
  /** whether the target was connected to this node when the message was sent */
  connectedHere: boolean
  /** why, for any outcome but `accepted` */
  reason?: string
}

type Publish = (packet: AedesPublishPacket, client: null, done: Answer) => void

/**
 * Checks the message, then publishes it on the topic the running mode gives
 * it (the prefix form unless the mode is suffix). Rejects with
 * ERR_P2P_INVALID_MESSAGE for a target or topic no P2P topic can carry, and
 * with ERR_P2P_STOPPED while the plugin is stopped.
 */
export async function sendP2P (broker: Aedes, parser: TopicParser, publish: Publish, target: string, topic: string, payload: Buffer | string, options: SendOptions = {}): Promise<SendResult> {
  const qos = options.qos ?? 0
  if (qos !== 0 && qos !== 1 && qos !== 2) throw invalid(`qos must be 0, 1 or 2 (got ${JSON.stringify(qos)})`)
  checkLevel('target', target, true)
  checkLevel('topic', topic, false)
  if (topic.startsWith('$')) throw invalid('topic must not start with $: only the broker writes $-topics')
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  if (!Buffer.isBuffer(body)) throw invalid('payload must be a string or a Buffer')
  const full = parser.mode === 'suffix' ? `${topic}/${parser.keyword}/${target}` : `${parser.keyword}/${target}/${topic}`
  if (Buffer.byteLength(full) > 65535) throw invalid('target and topic together are longer than an MQTT topic may be')
  const packet = { cmd: 'publish', topic: full, payload: body, qos, retain: false, dup: false } as unknown as AedesPublishPacket
  const connectedHere = connectedClient(broker, target) !== undefined
  return new Promise((resolve) => {
    publish(packet, null, (err, reason, why) => {
      resolve(err !== undefined && err !== null ? failure(err, connectedHere) : answer(reason, why, connectedHere))
    })
  })
}

function answer (reason: Reason | undefined, why: string | undefined, connectedHere: boolean): SendResult {
  const outcome: SendOutcome | undefined = reason === undefined || reason === Reason.success
    ? 'accepted'
    : reason === Reason.noMatchingSubscribers
      ? 'no_session'
      : reason === Reason.notAuthorized
        ? 'refused'
        : reason === Reason.quotaExceeded ? 'not_taken' : undefined
  if (outcome === 'accepted') return { outcome, connectedHere }
  return { outcome: outcome ?? 'failed', connectedHere, reason: why ?? `reason code 0x${reason?.toString(16) ?? '80'}` }
}

function failure (err: Error, connectedHere: boolean): SendResult {
  const code = (err as { code?: unknown }).code
  const outcome = code === 'ERR_P2P_QUEUE_FULL' ? 'queue_full' : code === 'ERR_P2P_UNAVAILABLE' ? 'unavailable' : 'failed'
  return { outcome, connectedHere, reason: err.message }
}

/** One topic level (the target) or a topic name: non-empty, no wildcards, no NUL. */
function checkLevel (name: string, value: unknown, oneLevel: boolean): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`)
  const forbidden = oneLevel ? /[/+#\0]/ : /[+#\0]/
  if (forbidden.test(value)) throw invalid(`${name} must not hold ${oneLevel ? "'/', " : ''}'+', '#' or NUL (got ${JSON.stringify(value.slice(0, 100))})`)
}

function invalid (message: string): P2PError {
  return new P2PError('ERR_P2P_INVALID_MESSAGE', message)
}
