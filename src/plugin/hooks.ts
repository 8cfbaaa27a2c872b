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
 *   publishes, and a message is acknowledged only once it is kept. An MQTT 5
 *   client's QoS 2 message is routed there too, so that its PUBREC can carry
 *   a reason code (answers.ts).
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
import type { InboundWindow } from './inbound.js'
import type { Pending } from './pending.js'
import { beforeConnack, replacePublish } from './host.js'
import { speaksMqtt5, startsClean } from './host-mqtt5.js'
import { incomingStored } from './host-store.js'
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
  /** the bound on QoS 2 messages awaiting PUBREL, on a host without one of its own */
  inbound: InboundWindow | undefined
}

export function installHooks (broker: Aedes, { router, owners, sessions, delivery, pending, hostForward, inbound }: Hooked): void {
  beforeConnack(broker, async (client) => {
    // a client that closed while connecting has nothing to be found by
    if (client.closed) return
    if (client.clean) await owners.recordConnection(client)
    else await sessions.mark(client, owners.sessionRecord(client))
    if (inbound !== undefined && startsClean(client)) await inbound.startClean(client)
    await owners.settle(client)
  })
  replacePublish(broker, router)

  const hostAuthorizePublish = broker.authorizePublish
  broker.authorizePublish = (client, packet, callback) => {
    // the hot path: only a client's QoS 1 publish, or an MQTT 5 client's QoS 2 one, needs anything more
    const v5 = client !== null && speaksMqtt5(client)
    if (client === null || packet.qos === 0 || (packet.qos === 2 && !v5)) {
      hostAuthorizePublish.call(broker, client, packet, callback)
      return
    }
    hostAuthorizePublish.call(broker, client, packet, (err) => {
      if (err !== undefined && err !== null) {
        callback(err)
        return
      }
      if (packet.qos === 1) {
        router.beforeAck(packet, client, callback, v5)
        return
      }
      // an MQTT 5 client's QoS 2 takes its place in the window at once, before it is routed: the
      // messages of one read are handled side by side. Not routed: one sent again before its PUBREL,
      // which Aedes answers from its store; one past the bound, which Aedes's store refuses, and
      // then Aedes closes the connection
      const id = packet.messageId ?? 0
      if (inbound?.holds(client, id) === true || inbound?.admit(client, id) === false) {
        callback(null)
        return
      }
      // answered other than 0x00, it is not stored, and no PUBREL will release it
      const notKept = inbound === undefined ? undefined : () => { inbound.released(client, id) }
      // sent again after a reconnect, perhaps to this node from another: Aedes has stored it, and answers it
      if (!packet.dup) {
        router.beforeAck(packet, client, callback, v5, notKept)
        return
      }
      void incomingStored(broker, client, packet).then((stored) => {
        if (stored) callback(null)
        else router.beforeAck(packet, client, callback, v5, notKept)
      })
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
