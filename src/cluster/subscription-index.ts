/**
 * What each node holds of the sessions in Redis (docs/cluster.md, "Start-up
 * cost"). aedes-persistence-redis keeps, on every node, an index of every
 * stored subscription, built at start from the store and kept current by a
 * broadcast on each change. The plugin's own records, a session's channel
 * and its owner, are subscriptions too; indexed, they were one or two of
 * the three or four entries per P2P session on every node. They stay out
 * of it here: whether a target has a session is asked of the store (one
 * HEXISTS), as is its owner already. What remains indexed is the client's
 * own subscriptions, and the one marker that lists the P2P sessions.
 *
 * The index is built by reading the client set, then each client's
 * subscriptions, one HGETALL at a time, each waiting for the last: 100,000
 * sessions were 100,000 round trips, about 16 s before the node listened.
 * Those reads go through the connection this node hands the persistence, so
 * that connection reads ahead during that one pass.
 */
import { Redis, type Cluster as RedisCluster } from 'ioredis'
import type { AedesPublishPacket } from 'aedes'
import { CHANNEL_ROOT, channelOf } from '../plugin/channel.js'

// aedes-persistence-redis's keys: the set of clients, and each client's subscriptions
const CLIENTS_KEY = 'clients'
const subscriptionsKey = (clientId: string): string => 'client:' + encodeURIComponent(clientId)
// and its broadcasts of changed subscriptions
const SUBSCRIPTION_CHANGES = '$SYS/sub/+'
const SUBSCRIPTIONS_ADDED = '$SYS/sub/add'

/** A session's channel and its owner records; the root, which lists the sessions, is not one of them. */
const RECORD_PREFIX = CHANNEL_ROOT + '/'
const isRecord = (topic: unknown): boolean => typeof topic === 'string' && topic.startsWith(RECORD_PREFIX)

/**
 * Reads in flight ahead of the persistence at start: enough to keep the
 * connection busy across a round trip, few enough that what they hold stays
 * small (one client's subscriptions each).
 */
const AHEAD = 512

/** Whether `clientId` has a persistent session: its channel is in its record in the store. */
export function sessionRecorded (store: Redis | RedisCluster): (clientId: string) => Promise<boolean> {
  return async (clientId) => await store.hexists(subscriptionsKey(clientId), channelOf(clientId)) === 1
}

type Subscriptions = Record<string, Buffer>
interface Reads {
  smembers: (key: string) => Promise<string[]>
  hgetallBuffer: (key: string) => Promise<Subscriptions>
}

/**
 * Makes `store`'s first SMEMBERS of the client set, the persistence's
 * setup() at start, read every client's subscriptions ahead, AHEAD at a
 * time and batched where Redis takes batches, for the HGETALLs that follow,
 * with the plugin's records left out. Each read ahead is handed out once, to
 * the call for its key; any other call goes to Redis as it is. Nothing else
 * reads the store during that pass: the broker serves nobody until its
 * persistence is set up. Both methods are the connection's own again once
 * the pass is over or a read of it failed, or at once if the first
 * SMEMBERS is of another set.
 */
export function loadAhead (store: Redis | RedisCluster): void {
  const reads = store as unknown as Reads
  const smembers = reads.smembers.bind(store)
  const hgetall = reads.hgetallBuffer.bind(store)
  reads.smembers = async (key) => {
    // the wrapper is an own property over the prototype's method: deleting it restores that
    delete (reads as Partial<Reads>).smembers
    const ids = await smembers(key)
    if (key !== CLIENTS_KEY || ids.length === 0) return ids
    const ahead = new Map<string, Promise<Subscriptions>>()
    let next = 0
    const refill = (): void => {
      if (ahead.size > AHEAD / 2 || next >= ids.length) return
      // a Redis Cluster takes no batch across slots: there each read is a command of its own, still in flight together
      const batch = store instanceof Redis ? store.pipeline() : undefined
      while (ahead.size < AHEAD && next < ids.length) {
        const subsKey = subscriptionsKey(ids[next++] as string)
        const read = batch === undefined
          ? hgetall(subsKey)
          : new Promise<Subscriptions>((resolve, reject) => {
            batch.hgetallBuffer(subsKey, (err, subs) => { if (err != null) reject(err); else resolve(subs as Subscriptions) })
          })
        // a read nobody ends up asking for must not be an unhandled rejection
        read.catch(() => {})
        ahead.set(subsKey, read)
      }
      // each read settles through its own callback
      batch?.exec().catch(() => {})
    }
    const over = (): void => {
      next = ids.length
      ahead.clear()
      delete (reads as Partial<Reads>).hgetallBuffer
    }
    refill()
    reads.hgetallBuffer = async (subsKey) => {
      const read = ahead.get(subsKey)
      if (read === undefined) return await hgetall(subsKey)
      ahead.delete(subsKey)
      refill()
      if (ahead.size === 0) over()
      try {
        return Object.fromEntries(Object.entries(await read).filter(([topic]) => !isRecord(topic)))
      } catch (err) {
        // the pass fails with it (the node does not start): nothing is read ahead or left out any more
        over()
        throw err
      }
    }
    return ids
  }
}

type Notify = (packet: AedesPublishPacket, cb: () => void) => void
interface Listeners {
  on: (topic: string, notify: Notify, done?: () => void) => unknown
  removeListener: (topic: string, notify: Notify, done?: () => void) => unknown
}

/**
 * Makes the persistence's listener for subscription changes, on `mq`, see
 * the plugin's records added as QoS 0: a QoS 0 subscription is one it keeps
 * out of its index (offline clients are sent no QoS 0 messages). The store
 * holds them as written; other nodes get the broadcast as it was sent.
 */
export function unindexedRecords (mq: unknown): void {
  const listeners = mq as Listeners
  const on = listeners.on.bind(mq)
  const removeListener = listeners.removeListener.bind(mq)
  const wrapped = new WeakMap<Notify, Notify>()
  listeners.on = (topic, notify, done) => {
    if (topic !== SUBSCRIPTION_CHANGES) return on(topic, notify, done)
    const filtered: Notify = (packet, cb) => { notify(packet.topic === SUBSCRIPTIONS_ADDED ? withoutRecords(packet) : packet, cb) }
    wrapped.set(notify, filtered)
    return on(topic, filtered, done)
  }
  listeners.removeListener = (topic, notify, done) => removeListener(topic, wrapped.get(notify) ?? notify, done)
}

function withoutRecords (packet: AedesPublishPacket): AedesPublishPacket {
  let added: { subs?: unknown } | null
  try {
    added = JSON.parse(packet.payload.toString()) as { subs?: unknown } | null
  } catch {
    // not ours to judge: the persistence sees it as it came
    return packet
  }
  const subs = typeof added === 'object' && added !== null && Array.isArray(added.subs) ? added.subs as unknown[] : []
  const records = subs.filter((sub): sub is { topic: string, qos: number } => typeof sub === 'object' && sub !== null && isRecord((sub as { topic?: unknown }).topic))
  if (!records.some((sub) => sub.qos > 0)) return packet
  for (const sub of records) sub.qos = 0
  return { ...packet, payload: Buffer.from(JSON.stringify(added)) }
}
