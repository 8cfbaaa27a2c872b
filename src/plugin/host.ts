/**
 * Every reliance on Aedes beyond its typed, documented API, each as a
 * function. The plugin and the cluster strategies reach into the broker only
 * through here, so an Aedes upgrade is checked in this file — and by the
 * integration tests, which all run against the real broker.
 *
 * Documented API (hooks, events, `subscribe`/`unsubscribe`, the typed client
 * fields) is used directly elsewhere; everything below is not in Aedes's
 * typings or docs.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { P2PError } from './errors.js'

/** Keep in step with peerDependencies.aedes in package.json. */
export const SUPPORTED_AEDES = '^1.2.0'

export interface StoredSubscription {
  clientId: string
  topic: string
  qos: number
}

export type PublishDone = (err?: Error | null) => void
/** Aedes's publish as it really is: with the publishing client, null for server code. */
export type PublishFn = (packet: AedesPublishPacket, client: Client | null, done: PublishDone) => void

/** The aedes-persistence contract (memory and Redis) as far as we use it. */
interface Persistence {
  subscriptionsByTopic (topic: string): Promise<StoredSubscription[]>
  subscriptionsByClient (client: { id: string }): Promise<Array<{ topic: string, qos: number }>>
  addSubscriptions (client: { id: string }, subs: Array<{ topic: string, qos: number }>): Promise<void>
  outgoingEnqueueCombi (subs: StoredSubscription[], packet: AedesPublishPacket): Promise<void>
  outgoingUpdate (client: { id: string }, packet: AedesPublishPacket): Promise<unknown>
  delWill (client: { id: string }): Promise<unknown>
  destroy (): Promise<void> | void
}

interface Emitter {
  emit (packet: AedesPublishPacket, done?: (err?: Error) => void): void
}

interface Broker extends Aedes {
  readonly version: string
  clients: Record<string, Client | undefined>
  persistence: Persistence
  mq: Emitter
}

interface BrokerClient extends Client {
  broker: Aedes
  errored?: boolean
  /** the next outgoing packet identifier; shared so ours never collide with the broker's */
  _nextId: number
  waitForDrain (cb: (err?: Error | null) => void): void
}

const internals = (aedes: Aedes): Broker => aedes as Broker

/** The broker, if it is an Aedes this package supports; else an error with a code. */
export function checkHost (aedes: unknown): Aedes {
  const b = aedes as Partial<Broker> | null
  if (typeof b !== 'object' || b === null || typeof b.publish !== 'function' || typeof b.handle !== 'function' ||
      typeof b.persistence?.delWill !== 'function' || b.mq === undefined || b.clients === undefined) {
    throw new P2PError('ERR_P2P_NOT_AEDES', 'register() needs an Aedes broker instance (from Aedes.createBroker())')
  }
  const version = String(b.version)
  const [major, minor] = version.split('.').map(Number)
  if (major !== 1 || minor === undefined || minor < 2) {
    throw new P2PError('ERR_P2P_AEDES_VERSION', `aedes-p2p-messaging needs Aedes ${SUPPORTED_AEDES}; this broker is Aedes ${version}`)
  }
  return aedes as Aedes
}

/** The client connected to this broker with that id, if any. */
export function connectedClient (broker: Aedes, clientId: string): Client | undefined {
  const client = internals(broker).clients[clientId]
  return client === undefined || client.closed ? undefined : client
}

/** Aedes's publish as it is now, typed as it really is called. */
export function publishOf (broker: Aedes): PublishFn {
  return broker.publish as unknown as PublishFn
}

const noop = (): void => {}

/**
 * Routes Aedes's publish to `target.publish`. Like Aedes's own, it also takes
 * (packet, done) and (packet) from server code.
 */
export function replacePublish (broker: Aedes, target: { publish: PublishFn }): void {
  broker.publish = ((packet: AedesPublishPacket, client?: Client | null | PublishDone, done?: PublishDone) => {
    if (typeof client === 'function') target.publish(packet, null, client)
    else target.publish(packet, client ?? null, done ?? noop)
  }) as unknown as Aedes['publish']
}

/** Claims a packet identifier exactly as Aedes's own QoSPacket does. */
export function nextMessageId (client: Client): number {
  const c = client as BrokerClient
  const id = c._nextId
  c._nextId = id >= 65535 ? 1 : id + 1
  return id
}

/**
 * Writes a packet the way Aedes's lib/write.js does: honour socket
 * backpressure, and report a closed connection instead of throwing.
 */
export function writePacket (client: Client, packet: AedesPublishPacket, done: (err: Error | null) => void): void {
  const c = client as BrokerClient
  if (!c.connecting && !c.connected) {
    setImmediate(done, new Error('connection closed'))
    return
  }
  let flushed: boolean
  try {
    flushed = mqttPacket.writeToStream(packet, c.conn)
  } catch {
    setImmediate(done, new Error('packet could not be encoded'))
    return
  }
  if (!flushed && c.errored !== true) {
    c.waitForDrain((err) => { done(err ?? null) })
    return
  }
  setImmediate(done, null)
}

/**
 * Runs `step` for each client connecting to this broker after Aedes has read
 * its stored session — so the CONNACK's session-present flag is already
 * decided — and before it registers the client and writes the CONNACK.
 * Aedes has no hook there. Its connect sequence (lib/handlers/connect.js,
 * storeWill) calls persistence.delWill with the connecting client at that
 * point, and nothing else calls it with a client that is still connecting;
 * so the step runs inside that call. A failing step is the step's to report:
 * the connect goes on.
 */
export function beforeConnack (broker: Aedes, step: (client: Client) => Promise<void>): void {
  const persistence = internals(broker).persistence
  const delWill = persistence.delWill.bind(persistence)
  persistence.delWill = async (client) => {
    const connecting = client as Partial<BrokerClient>
    // a persistence shared by several brokers carries each one's step
    if (connecting.connecting === true && connecting.broker === broker) await step(client as Client).catch(() => {})
    return delWill(client)
  }
}

/** Hands a packet to the broker's emitter as is, past the publish pipeline. */
export function emitPacket (broker: Aedes, packet: AedesPublishPacket, done: (err?: Error) => void): void {
  internals(broker).mq.emit(packet, done)
}

export async function addSubscription (broker: Aedes, clientId: string, topic: string, qos: number): Promise<void> {
  await internals(broker).persistence.addSubscriptions({ id: clientId }, [{ topic, qos }])
}

/** The persistence's topic index: every stored subscription matching `topic`. */
export async function subscriptionsByTopic (broker: Aedes, topic: string): Promise<StoredSubscription[]> {
  return internals(broker).persistence.subscriptionsByTopic(topic)
}

/** One client's stored subscriptions, read from its own record. */
export async function subscriptionsOf (broker: Aedes, clientId: string): Promise<Array<{ topic: string, qos: number }>> {
  return internals(broker).persistence.subscriptionsByClient({ id: clientId })
}

/** Appends to a session's queue, from where Aedes replays it on reconnect. */
export async function enqueue (broker: Aedes, subscription: StoredSubscription, packet: AedesPublishPacket): Promise<void> {
  await internals(broker).persistence.outgoingEnqueueCombi([subscription], packet)
}

/** Records the packet id a queued packet is sent with; rejects when it is no longer queued. */
export async function recordSending (broker: Aedes, client: Client, packet: AedesPublishPacket): Promise<void> {
  await internals(broker).persistence.outgoingUpdate(client, packet)
}

/** Aedes reports persistence failures as an 'error' event its typings leave out; unheard, one would end the process. */
export function onBrokerError (broker: Aedes, listener: (err: Error) => void): void {
  (broker as unknown as { on (event: 'error', l: (err: Error) => void): void }).on('error', listener)
}

/** Flushes and closes the persistence, which Aedes's close() leaves to whoever made it. */
export async function destroyPersistence (broker: Aedes): Promise<void> {
  await internals(broker).persistence.destroy()
}
