/**
 * Nodes that share their emitter and persistence (mqemitter-redis and
 * aedes-persistence-redis, or any pair that behaves alike). Each node listens
 * on the channel of every client connected to it, and a message for a target
 * not connected here is sent on that channel only. The channels ride on the
 * shared emitter (with Redis, an exact-channel PUBLISH, which Redis hands to
 * the one node holding the target), or on a transport of their own, such as
 * Redis Cluster's sharded pub/sub (sharded.ts), which keeps each message on
 * the one shard that holds the channel.
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

/** How the nodes reach each other's client channels. */
export interface ChannelTransport {
  /**
   * Hears `channel`; `subscribed` runs once the subscription is in place,
   * with false when it could not be made now (the transport keeps trying).
   */
  listen (channel: string, arrive: (packet: AedesPublishPacket) => void, subscribed: (made: boolean) => void): void
  unlisten (channel: string): void
  /** Sends on the packet's channel; resolves with how many listeners it reached, when the transport can tell. */
  send (packet: AedesPublishPacket): Promise<number | undefined>
  /** Calls `then` each time the channels are heard again after the transport lost them, where it can tell. */
  heardAgain? (then: () => void): void
}

/** `limits` bound what a node holds while the emitter or the store is away (Redis down). */
export function emitterCluster (limits: Partial<ClusterLimits> = {}, receivers?: ReceiverCount): Cluster {
  return channelCluster(limits, (broker) => emitterChannels(broker, receivers))
}

/**
 * Nodes that reach each other's client channels through `transport`, made
 * for the broker the strategy serves; `hasSession` for nodes that keep the
 * session channels out of their index (Cluster.hasSession).
 */
export function channelCluster (limits: Partial<ClusterLimits>, transport: (broker: Aedes) => ChannelTransport, hasSession?: (clientId: string) => Promise<boolean>): Cluster {
  if (!isTable(limits)) throw new ConfigError('emitterCluster() limits must be an object', 'cluster')
  rejectUnknownKeys(limits, Object.keys(CLUSTER_LIMIT_DEFAULTS), 'emitterCluster() limits', 'cluster')
  const checked = { ...CLUSTER_LIMIT_DEFAULTS }
  for (const key of Object.keys(checked) as Array<keyof ClusterLimits>) {
    const value = limits[key]
    if (value !== undefined) checked[key] = wholeNumber(value, `cluster.${key}`, `cluster.${key}`, 1)
  }
  return new ChannelCluster(checked, transport, hasSession)
}

/** The channels on the broker's own emitter, which the nodes share. */
export function emitterChannels (broker: Aedes, receivers: ReceiverCount | undefined): ChannelTransport {
  const listening = new Map<string, (packet: AedesPublishPacket, cb: () => void) => void>()
  return {
    listen (channel, arrive, subscribed) {
      const listener = (packet: AedesPublishPacket, cb: () => void): void => {
        cb()
        arrive(packet)
      }
      listening.set(channel, listener)
      broker.subscribe(channel, listener, () => { subscribed(true) })
    },
    unlisten (channel) {
      const listener = listening.get(channel)
      if (listener === undefined) return
      listening.delete(channel)
      broker.unsubscribe(channel, listener, () => {})
    },
    async send (packet) {
      return new Promise((resolve, reject) => {
        let slot: { count: number | undefined } | undefined
        const emit = (): void => {
          emitPacket(broker, packet, (err) => {
            if (err !== undefined && err !== null) reject(err)
            else resolve(slot?.count)
          })
        }
        if (receivers === undefined) emit()
        else slot = receivers.counting(emit)
      })
    }
  }
}

/**
 * A channel this node listens on, for the connections with its client id:
 * during a takeover the new one arrives before the old one leaves, and the
 * newest gets what comes.
 */
interface Held {
  clients: Client[]
  /** whether the transport's subscription is in place */
  ready: boolean
  /** connections waiting for it */
  waiting: Array<() => void>
}

class ChannelCluster implements Cluster {
  readonly indexMayLag = true
  readonly hasSession: ((clientId: string) => Promise<boolean>) | undefined
  readonly maxBufferedMessages: number
  readonly maxBufferedBytes: number
  #node: ClusterNode | undefined
  #transport: ChannelTransport | undefined
  readonly #listening = new Map<string, Held>()
  readonly #makeTransport: (broker: Aedes) => ChannelTransport

  constructor (limits: ClusterLimits, transport: (broker: Aedes) => ChannelTransport, hasSession: ((clientId: string) => Promise<boolean>) | undefined) {
    this.hasSession = hasSession
    this.maxBufferedMessages = limits.max_buffered_messages
    this.maxBufferedBytes = limits.max_buffered_bytes
    this.#makeTransport = transport
  }

  attach (node: ClusterNode): void {
    if (this.#node !== undefined) throw new ConfigError('this cluster strategy already serves a broker: make one per broker', 'cluster')
    this.#node = node
    const broker = node.broker
    const transport = this.#transport = this.#makeTransport(broker)
    // The channel is subscribed before CONNACK: a client told it is
    // connected can be reached from every node at once.
    afterAuthenticate(broker, (client, _username, admit) => {
      this.#listen(transport, node, client, () => { admit(null) })
    })
    broker.on('clientDisconnect', (client) => { this.#unlisten(transport, client) })
    // what was sent on a channel while nobody heard it waits in its target's queue, if it has one
    transport.heardAgain?.(() => {
      for (const held of this.#listening.values()) for (const client of held.clients) node.resync(client)
    })
  }

  async elsewhere (p2p: Addressed, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined, headers: MessageHeaders): Promise<Outcome> {
    const node = this.#node
    const transport = this.#transport
    if (node === undefined || transport === undefined) throw new Error('emitterCluster: elsewhere() before attach()')
    // stored first (when there is a session), so a target on another node, or on none, loses nothing;
    // what waits is the transport's encoded copy, not this one
    const count = await transport.send(stored ?? node.pack(p2p.target, p2p.topic, payload, qos, headers))
    if (count !== 0) return 'forwarded'
    return stored === undefined ? 'no_session' : 'queued'
  }

  #listen (transport: ChannelTransport, node: ClusterNode, client: Client, subscribed: () => void): void {
    const channel = channelOf(client.id)
    let held = this.#listening.get(channel)
    if (held === undefined) {
      const fresh: Held = held = { clients: [], ready: false, waiting: [] }
      this.#listening.set(channel, fresh)
      // what may not be written yet (before the CONNACK, during the replay of
      // the session queue) is the plugin's to hold: it is handed over at once
      transport.listen(channel, (packet) => {
        const newest = fresh.clients[fresh.clients.length - 1]
        if (newest !== undefined) node.arrive(newest, packet)
      }, (made) => {
        // a connection waiting for a subscription that failed goes on without it; one that comes later waits again
        if (made) fresh.ready = true
        for (const proceed of fresh.waiting.splice(0)) proceed()
      })
    }
    held.clients.push(client)
    let waiting = true
    const proceed = (): void => {
      if (!waiting) return
      waiting = false
      clearTimeout(timer)
      subscribed()
    }
    const timer = setTimeout(proceed, SUBSCRIBE_WAIT_MS)
    if (held.ready) proceed()
    else held.waiting.push(proceed)
    // a connection that ends before Aedes registers it never gets 'clientDisconnect'
    client.conn.once('close', () => { this.#unlisten(transport, client) })
    if (client.conn.destroyed) this.#unlisten(transport, client)
  }

  #unlisten (transport: ChannelTransport, client: Client): void {
    const channel = channelOf(client.id)
    const held = this.#listening.get(channel)
    const at = held?.clients.indexOf(client) ?? -1
    if (held === undefined || at === -1) return
    held.clients.splice(at, 1)
    if (held.clients.length > 0) return
    this.#listening.delete(channel)
    transport.unlisten(channel)
  }
}
