/**
 * Everything this package relies on inside Aedes 1.x that its typings do not
 * describe. Kept in one place so an Aedes upgrade is checked here, and covered
 * by the integration tests that run against the real broker.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import mqttPacket from 'mqtt-packet'

export interface StoredSubscription {
  clientId: string
  topic: string
  qos: number
}

/** The aedes-persistence contract (memory and Redis) as far as we use it. */
export interface Persistence {
  subscriptionsByTopic (topic: string): Promise<StoredSubscription[]>
  subscriptionsByClient (client: { id: string }): Promise<Array<{ topic: string, qos: number }>>
  addSubscriptions (client: { id: string }, subs: Array<{ topic: string, qos: number }>): Promise<void>
  outgoingEnqueueCombi (subs: StoredSubscription[], packet: AedesPublishPacket): Promise<void>
  outgoingUpdate (client: { id: string }, packet: AedesPublishPacket): Promise<unknown>
  /** flushes and closes; Aedes's close() leaves this to whoever made the persistence */
  destroy (): Promise<void> | void
}

export interface Emitter {
  on (topic: string, listener: (packet: AedesPublishPacket, cb: () => void) => void, done?: () => void): void
  removeListener (topic: string, listener: (packet: AedesPublishPacket, cb: () => void) => void, done?: () => void): void
  emit (packet: AedesPublishPacket, done?: (err?: Error) => void): void
}

export type PublishDone = (err?: Error | null) => void
export type PublishFn = (packet: AedesPublishPacket, client: Client | null, done: PublishDone) => void

export interface Broker extends Aedes {
  clients: Record<string, BrokerClient | undefined>
  persistence: Persistence
  mq: Emitter
}

export interface BrokerClient extends Client {
  broker: Broker
  errored?: boolean
  /** set once the CONNACK is on the wire; the session queue is flushed after it */
  connackSent: boolean
  /** the next outgoing packet identifier; shared so ours never collide with the broker's */
  _nextId: number
  waitForDrain (cb: (err?: Error | null) => void): void
}

export function asBroker (aedes: Aedes): Broker {
  const b = aedes as Partial<Broker>
  if (typeof b.publish !== 'function' || b.persistence === undefined || b.mq === undefined || b.clients === undefined) {
    throw new TypeError('register() needs an Aedes 1.x broker instance')
  }
  return aedes as Broker
}

/** Claims a packet identifier exactly as Aedes's own QoSPacket does. */
export function nextMessageId (client: BrokerClient): number {
  const id = client._nextId
  client._nextId = id >= 65535 ? 1 : id + 1
  return id
}

/**
 * Writes a packet the way Aedes's lib/write.js does: honour socket
 * backpressure, and report a closed connection instead of throwing.
 */
export function writePacket (client: BrokerClient, packet: AedesPublishPacket, done: (err: Error | null) => void): void {
  if (!client.connecting && !client.connected) {
    setImmediate(done, new Error('connection closed'))
    return
  }
  let flushed: boolean
  try {
    flushed = mqttPacket.writeToStream(packet, client.conn)
  } catch {
    setImmediate(done, new Error('packet could not be encoded'))
    return
  }
  if (!flushed && client.errored !== true) {
    client.waitForDrain((err) => { done(err ?? null) })
    return
  }
  setImmediate(done, null)
}
