/**
 * Every reliance on Aedes's persistence beyond what Aedes documents, each as
 * a function: the aedes-persistence contract, which the in-memory, Redis and
 * level persistences all keep (their shared abstract tests). An upgrade of
 * any of them is checked here, and by the tests, which run on each.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'

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
  removeSubscriptions (client: { id: string }, topics: string[]): Promise<unknown>
  outgoingEnqueue (sub: { clientId: string }, packet: AedesPublishPacket): Promise<void>
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: AedesPublishPacket): Promise<void>
  outgoingUpdate (client: { id: string }, packet: AedesPublishPacket): Promise<unknown>
  outgoingClearMessageId (client: { id: string }, packet: { messageId?: number }): Promise<AedesPublishPacket | undefined>
  outgoingStream (client: { id: string }): AsyncIterable<AedesPublishPacket>
  cleanSubscriptions (client: { id: string }): Promise<void>
  getClientList (topic: string): AsyncIterable<string>
  delWill (client: { id: string }): Promise<unknown>
  incomingGetPacket (client: { id: string }, packet: { messageId?: number }): Promise<unknown>
  incomingStorePacket (client: { id: string }, packet: { messageId?: number }): Promise<unknown>
  incomingDelPacket (client: { id: string }, packet: { messageId?: number }): Promise<unknown>
  destroy (): Promise<void> | void
}

const persistenceOf = (broker: Aedes): Persistence => (broker as unknown as { persistence: Persistence }).persistence

export async function addSubscriptions (broker: Aedes, clientId: string, subs: Array<{ topic: string, qos: number }>): Promise<void> {
  await persistenceOf(broker).addSubscriptions({ id: clientId }, subs)
}

export async function removeSubscriptions (broker: Aedes, clientId: string, topics: string[]): Promise<void> {
  await persistenceOf(broker).removeSubscriptions({ id: clientId }, topics)
}

/** The ids of the clients with a stored subscription to exactly `topic`. */
export function clientsSubscribedTo (broker: Aedes, topic: string): AsyncIterable<string> {
  return persistenceOf(broker).getClientList(topic)
}

/** The persistence's topic index: every stored subscription matching `topic`. */
export async function subscriptionsByTopic (broker: Aedes, topic: string): Promise<StoredSubscription[]> {
  return persistenceOf(broker).subscriptionsByTopic(topic)
}

/** One client's stored subscriptions, read from its own record. */
export async function subscriptionsOf (broker: Aedes, clientId: string): Promise<Array<{ topic: string, qos: number }>> {
  return persistenceOf(broker).subscriptionsByClient({ id: clientId })
}

/**
 * Whether the broker holds `packet`, a client's QoS 2 PUBLISH, as received
 * and not yet released (its PUBREL not come): Aedes keeps it so that one
 * sent again is not published twice. The persistences reject when they hold
 * none; a store that cannot be read counts as holding none.
 */
export async function incomingStored (broker: Aedes, client: Client, packet: { messageId?: number }): Promise<boolean> {
  return persistenceOf(broker).incomingGetPacket(client, packet).then((found) => found !== undefined && found !== null, () => false)
}

/** What watchIncoming() asks and tells its watcher about a client's QoS 2 messages awaiting PUBREL. */
export interface IncomingWatch {
  /** Whether the store may keep another one of `client`'s; a refusal rejects the store, and Aedes closes the connection. */
  admit (client: { id: string }, messageId: number): boolean
  /** One is kept no more: released by its PUBREL, or not stored after all. */
  released (client: { id: string }, messageId: number): void
}

/**
 * Puts `watch` in front of the store of a client's QoS 2 messages that wait
 * for their PUBREL (Aedes's incomingStorePacket and incomingDelPacket).
 */
export function watchIncoming (broker: Aedes, watch: IncomingWatch): void {
  const persistence = persistenceOf(broker)
  const store = persistence.incomingStorePacket.bind(persistence)
  const release = persistence.incomingDelPacket.bind(persistence)
  persistence.incomingStorePacket = async (client, packet) => {
    const id = packet.messageId ?? 0
    if (!watch.admit(client, id)) throw new Error('too many QoS 2 messages await their PUBREL')
    try {
      return await store(client, packet)
    } catch (err) {
      watch.released(client, id)
      throw err
    }
  }
  persistence.incomingDelPacket = async (client, packet) => {
    watch.released(client, packet.messageId ?? 0)
    return release(client, packet)
  }
}

/** Removes a client id's QoS 2 messages awaiting PUBREL from the store, as a PUBREL for each would. */
export async function releaseIncoming (broker: Aedes, clientId: string, messageIds: number[]): Promise<void> {
  const persistence = persistenceOf(broker)
  await Promise.all(messageIds.map(async (messageId) => persistence.incomingDelPacket({ id: clientId }, { messageId }).catch(() => {})))
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
  const persistence = persistenceOf(broker)
  const one = persistence.outgoingEnqueue.bind(persistence)
  const combi = persistence.outgoingEnqueueCombi.bind(persistence)
  const clear = persistence.outgoingClearMessageId.bind(persistence)
  const passing = new WeakSet<AedesPublishPacket>()
  const past = async (enqueue: Promise<void>, packet: AedesPublishPacket): Promise<void> => {
    try {
      await enqueue
    } finally {
      passing.delete(packet)
    }
  }
  // plain functions, not async ones: Aedes calls outgoingEnqueueCombi for
  // every QoS 1 publish, nearly always with no session to queue for
  const admitThen = (subs: Array<{ clientId: string }>, packet: AedesPublishPacket, enqueue: (taking: Array<{ clientId: string }>) => Promise<void>): Promise<void> => {
    const taken = (ids: string[]): Promise<void> => {
      const taking = ids.length === subs.length ? subs : subs.filter((sub) => ids.includes(sub.clientId))
      if (taking.length === 0) return Promise.resolve()
      passing.add(packet)
      return past(enqueue(taking), packet)
    }
    const ids = watch.admit(subs.map((sub) => sub.clientId), packet)
    return ids instanceof Promise ? ids.then(taken) : taken(ids)
  }
  persistence.outgoingEnqueue = (sub, packet) => {
    if (passing.has(packet)) return one(sub, packet)
    return admitThen([sub], packet, async () => { await one(sub, packet) })
  }
  persistence.outgoingEnqueueCombi = (subs, packet) => {
    if (subs.length === 0 || passing.has(packet)) return combi(subs, packet)
    return admitThen(subs, packet, async (taking) => { await combi(taking, packet) })
  }
  persistence.outgoingClearMessageId = (client, packet) => clear(client, packet).then((removed) => {
    if (removed !== undefined && removed !== null) watch.cleared(client.id, removed)
    return removed
  })
  return async (clientId, packet) => { await combi([{ clientId }], packet) }
}

/** A session's queue as the persistence holds it now, oldest first. */
export function queuedPackets (broker: Aedes, clientId: string): AsyncIterable<AedesPublishPacket> {
  return persistenceOf(broker).outgoingStream({ id: clientId })
}

/**
 * Takes one packet out of a session's queue the way Aedes takes a message
 * it may not forward: record it with a packet id, then clear by that id (the
 * queue is keyed by packet id for removal).
 */
export async function removeQueued (broker: Aedes, clientId: string, packet: AedesPublishPacket, messageId: number): Promise<void> {
  const persistence = persistenceOf(broker)
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
  for await (const packet of persistenceOf(broker).outgoingStream({ id: clientId })) {
    await removeQueued(broker, clientId, packet, (removed % 65535) + 1)
    removed++
  }
  return removed
}

/** Ends an offline session: its subscriptions go, and with them its place in the topic index. */
export async function endSession (broker: Aedes, clientId: string): Promise<void> {
  await persistenceOf(broker).cleanSubscriptions({ id: clientId })
}

/** Records the packet id a queued packet is sent with; rejects when it is no longer queued. */
export async function recordSending (broker: Aedes, client: Client, packet: AedesPublishPacket): Promise<void> {
  await persistenceOf(broker).outgoingUpdate(client, packet)
}

/** Flushes and closes the persistence, which Aedes's close() leaves to whoever made it. */
export async function destroyPersistence (broker: Aedes): Promise<void> {
  await persistenceOf(broker).destroy()
}

