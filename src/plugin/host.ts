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
  outgoingEnqueue (sub: { clientId: string }, packet: AedesPublishPacket): Promise<void>
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: AedesPublishPacket): Promise<void>
  outgoingUpdate (client: { id: string }, packet: AedesPublishPacket): Promise<unknown>
  outgoingClearMessageId (client: { id: string }, packet: { messageId?: number }): Promise<AedesPublishPacket | undefined>
  outgoingStream (client: { id: string }): AsyncIterable<AedesPublishPacket>
  cleanSubscriptions (client: { id: string }): Promise<void>
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
  connackSent: boolean
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

/**
 * Takes a closed client out of the broker's table, as Aedes does for one
 * that closes after it was registered: Aedes 1.2 registers a client that
 * closed while it was connecting, and then never unregisters it.
 */
export function unregisterClosed (broker: Aedes, client: Client): void {
  const b = internals(broker) as Broker & { unregisterClient (client: Client): void }
  if (client.closed && b.clients[client.id] === client) b.unregisterClient(client)
}

/** True once the client's CONNACK is written (Aedes sets `connackSent` right after). */
export function hasConnack (client: Client): boolean {
  return (client as BrokerClient).connackSent
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

/** What watchQueues() tells its watcher about every session queue, ordinary and P2P alike. */
export interface QueueWatch {
  /** The sessions among `clientIds` whose queues may take `packet`; the others do not get it. */
  admit (clientIds: string[], packet: AedesPublishPacket): string[] | Promise<string[]>
  /** A packet left a session's queue (acknowledged, or dropped at replay). */
  cleared (clientId: string, packet: AedesPublishPacket): void
}

/** Appends to one session's queue, from where Aedes replays it on reconnect, past the watcher. */
export type Enqueue = (clientId: string, packet: AedesPublishPacket) => Promise<void>

/**
 * Puts `watch` in front of every write to and removal from a session queue:
 * Aedes's own (a persistent subscriber's copy, online or offline) and the
 * plugin's. Returns the persistence's own enqueue, for a caller that has
 * already been admitted. aedes-persistence-redis's outgoingEnqueue calls its
 * outgoingEnqueueCombi, so a packet on its way through one is not admitted
 * again by the other.
 */
export function watchQueues (broker: Aedes, watch: QueueWatch): Enqueue {
  const persistence = internals(broker).persistence
  const one = persistence.outgoingEnqueue.bind(persistence)
  const combi = persistence.outgoingEnqueueCombi.bind(persistence)
  const clear = persistence.outgoingClearMessageId.bind(persistence)
  const passing = new WeakSet<AedesPublishPacket>()
  const admitted = async (subs: Array<{ clientId: string }>, packet: AedesPublishPacket): Promise<Array<{ clientId: string }>> => {
    const ids = await watch.admit(subs.map((sub) => sub.clientId), packet)
    return ids.length === subs.length ? subs : subs.filter((sub) => ids.includes(sub.clientId))
  }
  const past = async (enqueue: () => Promise<void>, packet: AedesPublishPacket): Promise<void> => {
    passing.add(packet)
    try {
      await enqueue()
    } finally {
      passing.delete(packet)
    }
  }
  persistence.outgoingEnqueue = async (sub, packet) => {
    if (passing.has(packet)) return one(sub, packet)
    if ((await admitted([sub], packet)).length === 1) await past(async () => { await one(sub, packet) }, packet)
  }
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    if (passing.has(packet)) return combi(subs, packet)
    const taking = await admitted(subs, packet)
    if (taking.length > 0) await past(async () => { await combi(taking, packet) }, packet)
  }
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet)
    if (removed !== undefined && removed !== null) watch.cleared(client.id, removed)
    return removed
  }
  return async (clientId, packet) => { await combi([{ clientId }], packet) }
}

/** A session's queue as the persistence holds it now, oldest first. */
export function queuedPackets (broker: Aedes, clientId: string): AsyncIterable<AedesPublishPacket> {
  return internals(broker).persistence.outgoingStream({ id: clientId })
}

/**
 * Takes one packet out of a session's queue the way Aedes takes a message
 * it may not forward: record it with a packet id, then clear by that id (the
 * queue is keyed by packet id for removal).
 */
export async function removeQueued (broker: Aedes, clientId: string, packet: AedesPublishPacket, messageId: number): Promise<void> {
  const persistence = internals(broker).persistence
  const client = { id: clientId }
  packet.messageId = messageId
  await persistence.outgoingUpdate(client, packet)
  await persistence.outgoingClearMessageId(client, packet)
}

/**
 * Empties an offline session's queue, as Aedes empties a leftover one when
 * its client comes back with a clean session (memory and level persistence
 * keep a queue when its subscriptions go). Returns how many it removed.
 */
export async function dropQueue (broker: Aedes, clientId: string): Promise<number> {
  let removed = 0
  for await (const packet of internals(broker).persistence.outgoingStream({ id: clientId })) {
    await removeQueued(broker, clientId, packet, (removed % 65535) + 1)
    removed++
  }
  return removed
}

/** Ends an offline session: its subscriptions go, and with them its place in the topic index. */
export async function endSession (broker: Aedes, clientId: string): Promise<void> {
  await internals(broker).persistence.cleanSubscriptions({ id: clientId })
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
