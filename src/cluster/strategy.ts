/**
 * How a P2P message reaches a target that is not connected to this node: the
 * strategy the plugin is handed (docs/behaviour.md §5). `standalone()` knows
 * there is no other node; `emitterCluster()` routes through an emitter and a
 * persistence the nodes share. The plugin itself has no cluster branches.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { Logger } from '../plugin/log.js'

/** What the plugin gives its strategy when it is registered. */
export interface ClusterNode {
  readonly broker: Aedes
  readonly log: Logger
  /** The internal form of a message: on the target's channel, the topic in an envelope. */
  pack (target: string, topic: string, payload: Buffer, qos: 0 | 1 | 2): AedesPublishPacket
  /** Delivers a channel packet to `client`, a client of this node that has had its CONNACK. */
  arrive (client: Client, packet: AedesPublishPacket): void
  /** True when the packet is a copy of one in the client's session queue, which Aedes replays after CONNACK. */
  isQueued (client: Client, packet: AedesPublishPacket): boolean
}

/** Where a P2P message goes: the target's client id, and the topic it receives it on. */
export interface Addressed {
  readonly target: string
  readonly topic: string
}

/** What became of a message handed to `elsewhere()`, for the counters. */
export type Outcome = 'forwarded' | 'queued' | 'no_session'

export interface Cluster {
  /**
   * Called once, by register(): makes this node reachable for messages to
   * its clients from other nodes. A strategy serves one broker.
   */
  attach (node: ClusterNode): void
  /**
   * A message whose target is not connected to this node. `stored` is its
   * channel packet when it already waits in the target's session queue.
   */
  elsewhere (p2p: Addressed, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): Outcome
  /**
   * True when this node's copy of the persistence's topic index may lag
   * behind sessions opened on other nodes, so that a target missing from it
   * is looked up in its own record before it counts as having no session.
   */
  readonly indexMayLag: boolean
}
