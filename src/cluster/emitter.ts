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
import { emitPacket } from '../plugin/host.js'
import type { Addressed, Cluster, ClusterNode } from './strategy.js'

// How long a connecting client may wait for its channel to be subscribed;
// during an outage the subscription completes later and the client is
// served locally meanwhile.
const SUBSCRIBE_WAIT_MS = 500

type Listener = (packet: AedesPublishPacket, cb: () => void) => void

interface Listening {
  readonly listener: Listener
  /** set when its CONNACK is written: from then on, queued copies go straight to it */
  connacked: boolean
  /** set once Aedes has replayed its session queue: from then on, every message goes straight to it */
  ready: boolean
  /** live messages that came before it was ready, in order, written once it is */
  held: AedesPublishPacket[] | undefined
}

export function emitterCluster (): Cluster {
  return new EmitterCluster()
}

class EmitterCluster implements Cluster {
  readonly indexMayLag = true
  #node: ClusterNode | undefined
  readonly #listening = new Map<Client, Listening>()

  attach (node: ClusterNode): void {
    if (this.#node !== undefined) throw new ConfigError('this cluster strategy already serves a broker: make one per broker', 'cluster')
    this.#node = node
    const broker = node.broker
    // The channel is subscribed before CONNACK: a client told it is
    // connected can be reached from every node at once.
    const hostAuthenticate = broker.authenticate
    broker.authenticate = (client, username, password, callback) => {
      hostAuthenticate.call(broker, client, username, password, (err, success) => {
        // a client that hung up during a slow check is done: Aedes drops the answer, and nothing may be left for it
        if (err !== null || success !== true || client.closed) {
          callback(err, success)
          return
        }
        this.#listen(broker, node, client, () => { callback(null, true) })
      })
    }
    broker.on('connackSent', (_packet, client) => {
      const listening = this.#listening.get(client)
      if (listening !== undefined) listening.connacked = true
    })
    broker.on('clientReady', (client) => {
      const listening = this.#listening.get(client)
      if (listening === undefined) return
      listening.ready = true
      const held = listening.held
      listening.held = undefined
      if (held !== undefined) for (const packet of held) node.arrive(client, packet)
    })
    broker.on('clientDisconnect', (client) => { this.#unlisten(broker, client) })
  }

  elsewhere (p2p: Addressed, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): 'forwarded' {
    const node = this.#node
    if (node === undefined) throw new Error('emitterCluster: elsewhere() before attach()')
    // stored first (when there is a session), so a target on another node, or on none, loses nothing
    const packet = stored ?? node.pack(p2p.target, p2p.topic, payload, qos)
    emitPacket(node.broker, packet, (err) => {
      if (err !== undefined && err !== null) node.log.error({ err: err.message, topic: packet.topic }, 'P2P message not forwarded to the cluster')
    })
    return 'forwarded'
  }

  #listen (broker: Aedes, node: ClusterNode, client: Client, subscribed: () => void): void {
    const listening: Listening = {
      connacked: false,
      ready: false,
      held: undefined,
      listener: (packet, cb) => {
        cb()
        if (client.closed) return
        if (listening.ready) {
          node.arrive(client, packet)
          return
        }
        // Nothing may be written before the CONNACK, and a live message
        // written while Aedes replays the session queue would overtake those
        // held before it: live ones wait until the replay is done. A queued
        // copy that came before the CONNACK is the replay's to send; one that
        // came after it may have missed the replay, so it goes now.
        if (!node.isQueued(client, packet)) (listening.held ??= []).push(packet)
        else if (listening.connacked) node.arrive(client, packet)
      }
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
    broker.subscribe(channelOf(client.id), listening.listener, proceed)
    // a connection that ends before Aedes registers it never gets 'clientDisconnect'
    client.conn.once('close', () => { this.#unlisten(broker, client) })
    if (client.conn.destroyed) this.#unlisten(broker, client)
  }

  #unlisten (broker: Aedes, client: Client): void {
    const listening = this.#listening.get(client)
    if (listening === undefined) return
    this.#listening.delete(client)
    broker.unsubscribe(channelOf(client.id), listening.listener, () => {})
  }
}
