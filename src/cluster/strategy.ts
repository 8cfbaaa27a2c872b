/**
 * How a P2P message reaches a target that is not connected to this node: the
 * strategy the plugin is handed (docs/behaviour.md §5). `standalone()` knows
 * there is no other node; `emitterCluster()` routes through an emitter and a
 * persistence the nodes share. The plugin itself has no cluster branches.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { MessageHeaders } from '../plugin/headers.js'
import type { Logger } from '../plugin/log.js'

/** What the plugin gives its strategy when it is registered. */
export interface ClusterNode {
  readonly broker: Aedes
  readonly log: Logger
  /** The internal form of a message: on the target's channel, the topic and headers in an envelope. */
  pack (target: string, topic: string, payload: Buffer, qos: 0 | 1 | 2, headers: MessageHeaders): AedesPublishPacket
  /**
   * Delivers a channel packet to `client`, a client of this node, from the
   * moment it has been authenticated: what may not be written yet (before
   * its CONNACK, or while its session queue is replayed) the plugin holds.
   */
  arrive (client: Client, packet: AedesPublishPacket): void
  /**
   * Sends `client` what its session queue holds and it has not been sent:
   * for after its channel went unheard a while (the emitter lost Redis and
   * is back), when messages for it were queued but reached nobody live.
   */
  resync (client: Client): void
}

/** Where a P2P message goes: the target's client id, and the topic it receives it on. */
export interface Addressed {
  readonly target: string
  readonly topic: string
}

/** What became of a message handed to `elsewhere()`, for the counters. */
export type Outcome = 'forwarded' | 'queued' | 'no_session'

/** How much a node may hold waiting for the cluster (docs/behaviour.md §7). */
export interface ClusterLimits {
  /**
   * P2P messages a node holds while they wait on the shared store or
   * emitter (Redis away). Past it, QoS 0 messages are dropped
   * (`cluster_unavailable`) and QoS 1/2 ones are not acknowledged.
   * @default 10000
   */
  max_buffered_messages: number
  /**
   * The same bound on their payload bytes.
   * @default 67108864 (64 MiB)
   */
  max_buffered_bytes: number
}

export const CLUSTER_LIMIT_DEFAULTS: Readonly<ClusterLimits> = Object.freeze({ max_buffered_messages: 10000, max_buffered_bytes: 64 * 1024 * 1024 })

export interface Cluster {
  /**
   * Called once, by register(): makes this node reachable for messages to
   * its clients from other nodes. A strategy serves one broker.
   */
  attach (node: ClusterNode): void
  /**
   * A message whose target is not connected to this node. `stored` is its
   * channel packet when it already waits in the target's session queue.
   * A promise settles once the message is accepted by what the nodes share
   * (for QoS 1/2, the sender's acknowledgement waits for it); it rejects
   * when the message could not be handed on. `no_session` is an answer only
   * a strategy that knows no node holds the target gives (an MQTT 5 sender
   * is then told 0x10); one that cannot tell says `forwarded`.
   */
  elsewhere (p2p: Addressed, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined, headers: MessageHeaders): Outcome | Promise<Outcome>
  /**
   * True when this node's copy of the persistence's topic index may lag
   * behind sessions opened on other nodes, so that a target missing from it
   * is looked up in its own record before it counts as having no session.
   */
  readonly indexMayLag: boolean
  /**
   * Whether `clientId` has a persistent session, for a strategy whose nodes
   * keep sessions' channels out of the persistence's topic index, so that
   * what every node holds does not grow with the sessions: asked instead of
   * that index. Without it, the index is asked.
   */
  readonly hasSession?: (clientId: string) => Promise<boolean>
  /**
   * P2P messages this node may hold while they wait on the store or the
   * emitter (docs/behaviour.md §7); past it, QoS 0 is dropped
   * (`cluster_unavailable`) and QoS 1/2 is not acknowledged.
   * @default Infinity (a store of the node's own: what waits is bounded by its clients)
   */
  readonly maxBufferedMessages?: number
  /** The same bound on their payload bytes. @default Infinity */
  readonly maxBufferedBytes?: number
}
