/**
 * What an MQTT 5 sender is told about its QoS 1/2 P2P message
 * (docs/behaviour.md §9): its PUBACK/PUBREC carries 0x87 when it was refused,
 * 0x10 when its target has neither a connection nor a session anywhere,
 * 0x97 when the target's queue (or what the node may hold for the cluster)
 * is full, and 0x00 once the message is kept; the connection stays up. An
 * MQTT 3.1.1 sender has no reason codes: a message that cannot be kept
 * closes its connection unacknowledged, as before.
 */
import type { Client, PublishPacket } from 'aedes'
import { P2PError } from './errors.js'
import { answerPublish, Reason } from './host-mqtt5.js'

/**
 * How the router answers for a message: an error leaves it unacknowledged
 * (MQTT 3.1.1 closes the sender's connection). Otherwise `reason`, with
 * `why` as its reason string, is what an MQTT 5 sender is told; left out,
 * it is success. Aedes's own callbacks take the first argument only.
 */
export type Answer = (err?: Error | null, reason?: Reason, why?: string) => void

/**
 * The router's answer for an MQTT 5 client's publish, turned into the
 * acknowledgement it gets; `callback` is Aedes's authorizePublish callback.
 * Success goes on through Aedes, which acknowledges and finds the packet
 * already routed; any other reason is written here, and `notKept` told.
 */
export function answerFor (client: Client, packet: PublishPacket, callback: (err?: Error | null) => void, notKept?: () => void): Answer {
  return (err, reason, why) => {
    if ((err !== undefined && err !== null) || (reason !== undefined && reason !== Reason.success)) notKept?.()
    if (err !== undefined && err !== null) {
      // a store that failed: not kept, and the sender is told so rather than disconnected
      const code = err instanceof P2PError ? err.code : undefined
      const [told, because] = code === 'ERR_P2P_QUEUE_FULL'
        ? [Reason.quotaExceeded, 'the target\'s queue is full']
        : code === 'ERR_P2P_UNAVAILABLE'
          ? [Reason.quotaExceeded, 'too many messages wait for the cluster']
          : [Reason.unspecifiedError, 'the message could not be stored']
      answerPublish(client, packet, told, because, () => { callback(null) })
      return
    }
    if (reason === undefined || reason === Reason.success) callback(null)
    else answerPublish(client, packet, reason, why, () => { callback(null) })
  }
}
