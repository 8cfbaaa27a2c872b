/**
 * Session queues in order on a Redis Cluster. On one Redis, commands are
 * answered in the order they were sent; on a cluster, commands on keys of
 * different shards are answered in any order, and aedes-persistence-redis
 * keeps the packets of one queue under keys spread over the shards. Two
 * places then reorder one session's messages:
 *
 * - queueing: a SET of the packet, then an RPUSH of its key; the second
 *   message's SET can be answered first and its RPUSH go first. So a
 *   message to a session starts queueing only once the one before it is in.
 * - sending from the queue: Aedes (and the plugin) record the packet id
 *   with outgoingUpdate, then write the packet once it is answered. So each
 *   session's updates are answered to their callers in the order they were
 *   asked (they still run at once); the writes follow in that order.
 *
 * Messages to other sessions never wait for each other.
 */

interface QueueStore {
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: unknown): Promise<void>
  outgoingUpdate (client: { id: string }, packet: unknown): Promise<void>
}

export function orderQueues<T extends QueueStore> (persistence: T): T {
  const enqueue = persistence.outgoingEnqueueCombi.bind(persistence)
  const update = persistence.outgoingUpdate.bind(persistence)
  /** the last enqueue of each session that is not finished yet */
  const enqueues = new Map<string, Promise<unknown>>()
  /** the last update of each session that is not answered yet */
  const updates = new Map<string, Promise<unknown>>()
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const before = subs.map((sub) => enqueues.get(sub.clientId))
    // a failed enqueue before this one is its caller's to report, not this one's
    const done = Promise.allSettled(before).then(async () => { await enqueue(subs, packet) })
    await settleInTurn(subs.map((sub) => sub.clientId), enqueues, done)
  }
  persistence.outgoingUpdate = async (client, packet) => {
    const before = updates.get(client.id)
    const asked = update(client, packet)
    // its caller hears of a failure below; until its turn comes, nobody else is waiting on it
    asked.catch(() => {})
    await settleInTurn([client.id], updates, Promise.allSettled([before]).then(async () => { await asked }))
  }
  return persistence
}

/** Waits for `done`, as the newest of each id's chain in `tails`, and unlinks it after. */
async function settleInTurn (ids: string[], tails: Map<string, Promise<unknown>>, done: Promise<void>): Promise<void> {
  for (const id of ids) tails.set(id, done)
  try {
    await done
  } finally {
    for (const id of ids) if (tails.get(id) === done) tails.delete(id)
  }
}
