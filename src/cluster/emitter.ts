/**
 * Nodes that share their emitter and persistence (mqemitter-redis and
 * aedes-persistence-redis, or any pair that behaves alike). Each node listens
 * on the channel of every client connected to it, and a message for a target
 * not connected here is emitted on that channel only: with Redis, that is an
 * exact-channel PUBLISH, which Redis hands to the one node holding the target.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import { channelOf } from '../plugin/channel.js'
import { ConfigError } from '../plugin/errors.js'
import { afterAuthenticate, emitPacket } from '../plugin/host.js'
import { wholeNumber } from '../plugin/limits.js'
import { isTable, rejectUnknownKeys } from '../plugin/table.js'
import type { MessageHeaders } from '../plugin/headers.js'
import { CLUSTER_LIMIT_DEFAULTS, type Addressed, type Cluster, type ClusterLimits, type ClusterNode, type Outcome } from './strategy.js'

// How long a connecting client may wait for its channel to be subscribed;
// during an outage the subscription completes later and the client is
// served locally meanwhile.
const SUBSCRIBE_WAIT_MS = 500

/** A client's subscription to its own channel. */
type Listener = (packet: AedesPublishPacket, cb: () => void) => void

/**
 * How many subscribers a message this node emits reaches, where the emitter
 * can tell (Redis answers each PUBLISH with its receiver count). Channels are
 * exact and per client, so 0 means no node holds the target; more may still
 * be only pattern subscribers of other topics, so it is read only as "maybe".
 */
export interface ReceiverCount {
  /** Runs `emit`; the slot is filled with the count of the one publish it makes, before the emit's callback runs. */
  counting (emit: () => void): { count: number | undefined }
}

/** `limits` bound what a node holds while the emitter or the store is away (Redis down). */
export function emitterCluster (limits: Partial<ClusterLimits> = {}, receivers?: ReceiverCount): Cluster {
  if (!isTable(limits)) throw new ConfigError('emitterCluster() limits must be an object', 'cluster')
  rejectUnknownKeys(limits, Object.keys(CLUSTER_LIMIT_DEFAULTS), 'emitterCluster() limits', 'cluster')
  const checked = { ...CLUSTER_LIMIT_DEFAULTS }
  for (const key of Object.keys(checked) as Array<keyof ClusterLimits>) {
    const value = limits[key]
    if (value !== undefined) checked[key] = wholeNumber(value, `cluster.${key}`, `cluster.${key}`, 1)
  }
  return new EmitterCluster(checked, receivers)
}

class EmitterCluster implements Cluster {
  readonly indexMayLag = true
  readonly maxBufferedMessages: number
  readonly maxBufferedBytes: number
  #node: ClusterNode | undefined
  readonly #listening = new Map<Client, Listener>()
  readonly #receivers: ReceiverCount | undefined

  constructor (limits: ClusterLimits, receivers: ReceiverCount | undefined) {
    this.maxBufferedMessages = limits.max_buffered_messages
    this.maxBufferedBytes = limits.max_buffered_bytes
    this.#receivers = receivers
  }

  attach (node: ClusterNode): void {
    if (this.#node !== undefined) throw new ConfigError('this cluster strategy already serves a broker: make one per broker', 'cluster')
    this.#node = node
    const broker = node.broker
    // The channel is subscribed before CONNACK: a client told it is
    // connected can be reached from every node at once.
    afterAuthenticate(broker, (client, _username, admit) => {
      this.#listen(broker, node, client, () => { admit(null) })
    })
    broker.on('clientDisconnect', (client) => { this.#unlisten(broker, client) })
  }

  elsewhere (p2p: Addressed, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined, headers: MessageHeaders): Promise<Outcome> {
    const node = this.#node
    if (node === undefined) throw new Error('emitterCluster: elsewhere() before attach()')
    // the callback holds nothing of the message: while it waits for Redis, the emitter's encoded copy is the only one
    return new Promise((resolve, reject) => {
      // stored first (when there is a session), so a target on another node, or on none, loses nothing
      const packet = stored ?? node.pack(p2p.target, p2p.topic, payload, qos, headers)
      let slot: { count: number | undefined } | undefined
      const emit = (): void => {
        emitPacket(node.broker, packet, (err) => {
          if (err !== undefined && err !== null) reject(err)
          else if (slot?.count !== 0) resolve('forwarded')
          else resolve(stored === undefined ? 'no_session' : 'queued')
        })
      }
      if (this.#receivers === undefined) emit()
      else slot = this.#receivers.counting(emit)
    })
  }

  #listen (broker: Aedes, node: ClusterNode, client: Client, subscribed: () => void): void {
    // what may not be written yet (before the CONNACK, during the replay of
    // the session queue) is the plugin's to hold: it is handed over at once
    const listening: Listener = (packet, cb) => {
      cb()
      node.arrive(client, packet)
    }
    this.#listening.set(client, listening)
    let waiting = true
    const proceed = (): void => {
      if (!waiting) return
      waiting = false
      clearTimeout(timer)
      subscribed()
    }
    const timer = setTimeout(proceed, SUBSCRIBE_WAIT_MS)
    broker.subscribe(channelOf(client.id), listening, proceed)
    // a connection that ends before Aedes registers it never gets 'clientDisconnect'
    client.conn.once('close', () => { this.#unlisten(broker, client) })
    if (client.conn.destroyed) this.#unlisten(broker, client)
  }

  #unlisten (broker: Aedes, client: Client): void {
    const listening = this.#listening.get(client)
    if (listening === undefined) return
    this.#listening.delete(client)
    broker.unsubscribe(channelOf(client.id), listening, () => {})
  }
}
