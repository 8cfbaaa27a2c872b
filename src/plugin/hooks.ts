/**
 * How the plugin sits in Aedes. Each hook is a single slot, so the plugin
 * wraps what is already there and calls it; the user's hooks keep running, in
 * the order they were installed.
 *
 * - `publish` is wrapped. The host's `authorizePublish` has already run on the
 *   original `p2p/B/x` packet by then, and the sender's PUBACK/PUBREC flow is
 *   the host's, so a dropped message still completes it.
 * - `authorizePublish` is wrapped: once the host's own allows a QoS 1 P2P
 *   message, it is routed there, because Aedes writes the PUBACK before it
 *   publishes, and a message is acknowledged only once it is kept.
 * - `authenticate` is wrapped (owners.ts) so that a client id held by one
 *   user is not taken over by another.
 * - `preConnect` is wrapped to bound what the client's subscriptions may
 *   leave unsent on its socket (pending.ts) before it has any.
 * - `authorizeSubscribe` is wrapped to refuse filters into the channels'
 *   namespace, including a session's own channel subscription as Aedes
 *   restores it.
 * - `authorizeForward` is wrapped to turn a queued P2P message back into the
 *   delivered one when Aedes replays a persistent session.
 * - A persistent session, and the user a connection belongs to, are
 *   recorded before its CONNACK (host.ts, beforeConnack).
 */
import type { Aedes, Client } from 'aedes'
import { isChannel } from './channel.js'
import type { Delivery } from './delivery.js'
import type { Pending } from './pending.js'
import { beforeConnack, replacePublish } from './host.js'
import type { Owners } from './owners.js'
import type { Router } from './routing.js'
import type { Sessions } from './sessions.js'

export interface Hooked {
  router: Router
  owners: Owners
  sessions: Sessions
  delivery: Delivery
  pending: Pending
  /** the host's authorizeForward, as it was before the plugin */
  hostForward: Aedes['authorizeForward']
}

export function installHooks (broker: Aedes, { router, owners, sessions, delivery, pending, hostForward }: Hooked): void {
  beforeConnack(broker, async (client) => {
    // a client that closed while connecting has nothing to be found by
    if (client.closed) return
    if (client.clean) await owners.recordConnection(client)
    else await sessions.mark(client, owners.sessionRecord(client))
    await owners.settle(client)
  })
  replacePublish(broker, router)

  const hostAuthorizePublish = broker.authorizePublish
  broker.authorizePublish = (client, packet, callback) => {
    // the hot path: only a client's QoS 1 publish needs anything more
    if (client === null || packet.qos !== 1) {
      hostAuthorizePublish.call(broker, client, packet, callback)
      return
    }
    hostAuthorizePublish.call(broker, client, packet, (err) => {
      if (err !== undefined && err !== null) callback(err)
      else router.beforeAck(packet, client, callback)
    })
  }

  const hostPreConnect = broker.preConnect
  broker.preConnect = (client, packet, callback) => {
    pending.guard(client)
    hostPreConnect.call(broker, client, packet, callback)
  }

  const hostSubscribe = broker.authorizeSubscribe
  broker.authorizeSubscribe = (client, sub, callback) => {
    if (isChannel(sub.topic)) {
      // granted 0x80; also how a restored session's channel subscription stays out of the emitter
      callback(null, null)
      return
    }
    hostSubscribe.call(broker, client, sub, callback)
  }

  broker.authorizeForward = (client, packet) => {
    if (!isChannel(packet.topic)) return hostForward.call(broker, client, packet)
    return delivery.unwrapQueued(client, packet)
  }

  broker.on('unsubscribe', (topics: string[], client: Client) => {
    // a session's channel subscription and its owner are not the client's to drop
    if (topics.some(isChannel)) {
      if (!client.clean) void sessions.mark(client, owners.sessionRecord(client))
      else void owners.recordConnection(client).catch(() => {})
    }
  })
}
