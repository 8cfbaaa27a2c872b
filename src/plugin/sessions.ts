/**
 * Which targets have a persistent session to queue in. A client with one
 * holds a subscription to its own channel in the persistence, stored beside
 * its other subscriptions: restored, cleaned and shared between nodes exactly
 * like them, so the plugin keeps no session table of its own.
 */
import type { Aedes, Client } from 'aedes'
import type { Cluster } from '../cluster/strategy.js'
import { CHANNEL_QOS, channelOf, SESSIONS_TOPIC } from './channel.js'
import { addSubscriptions, subscriptionsByTopic, subscriptionsOf, type StoredSubscription } from './host-store.js'
import type { Logger } from './log.js'
import { LATE, within } from './within.js'

// How long a persistent client's CONNACK may wait for its session to be recorded.
const RECORD_WAIT_MS = 2000

export class Sessions {
  readonly #broker: Aedes
  // one write per client id at a time; an entry lives while its write does
  readonly #recording = new Map<string, Promise<void>>()
  readonly #indexMayLag: boolean
  readonly #recorded: ((clientId: string) => Promise<boolean>) | undefined
  readonly #log: Logger

  constructor (broker: Aedes, cluster: Pick<Cluster, 'indexMayLag' | 'hasSession'>, log: Logger) {
    this.#broker = broker
    this.#indexMayLag = cluster.indexMayLag
    this.#recorded = cluster.hasSession
    this.#log = log
  }

  /**
   * Records that a client has a persistent session, and `owner`, the
   * record of the user it belongs to (owners.ts), if it has one. Awaited before its
   * CONNACK, so a sender on any node finds the session from the moment the
   * client is told it is connected, however soon it leaves again; but for
   * at most RECORD_WAIT_MS, after which the write goes on without holding
   * the client up. Connects with one id share the write under way: a second
   * write of the same subscription would stop the first from ever finishing
   * (aedes-persistence-redis waits for each write's broadcast by client id
   * and topic, one at a time).
   */
  async mark (client: Client, owner: { topic: string, qos: number } | undefined): Promise<void> {
    const id = client.id
    let recording = this.#recording.get(id)
    if (recording === undefined) {
      const subs = [{ topic: channelOf(id), qos: CHANNEL_QOS }, { topic: SESSIONS_TOPIC, qos: 1 }]
      if (owner !== undefined) subs.push(owner)
      recording = addSubscriptions(this.#broker, id, subs)
        .catch((err: unknown) => { this.#log.error({ err, clientId: id }, 'cannot record P2P session') })
        .finally(() => { this.#recording.delete(id) })
      this.#recording.set(id, recording)
    }
    if (await within(recording, RECORD_WAIT_MS) === LATE) {
      this.#log.warn({ clientId: id }, 'P2P session not recorded in time; the client is connected meanwhile')
    }
  }

  /**
   * The target's channel subscription, if it has a persistent session. A
   * target connected here with one has it by definition (it was recorded
   * before its CONNACK); otherwise the cluster (Cluster.hasSession) or the
   * store's index is asked.
   */
  async find (target: string, connectedHere: boolean): Promise<StoredSubscription | null> {
    const topic = channelOf(target)
    if (connectedHere) return { clientId: target, topic, qos: CHANNEL_QOS }
    if (this.#recorded !== undefined) return await this.#recorded(target) ? { clientId: target, topic, qos: CHANNEL_QOS } : null
    for (const sub of await subscriptionsByTopic(this.#broker, topic)) {
      // `#` subscribers match the channel too; only the target's own subscription counts
      if (sub.clientId === target && sub.topic === topic) return sub
    }
    if (!this.#indexMayLag) return null
    // The topic index is each node's copy, updated by broadcast after the
    // subscription is written; a session opened a moment ago on another node
    // may not be in it yet. The client's own record in the store is not late.
    const own = await subscriptionsOf(this.#broker, target)
    return own.some((sub) => sub.topic === topic) ? { clientId: target, topic, qos: CHANNEL_QOS } : null
  }
}
