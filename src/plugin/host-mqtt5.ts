/**
 * What the plugin relies on in Aedes 2 for MQTT 5, beyond its typed API,
 * each as a function (the rest of the host is in host.ts). Aedes 1.2 never
 * has an MQTT 5 client, so none of these matter there.
 */
import type { AedesPublishPacket, Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { writePacket } from './host.js'

/** A client as Aedes 2 keeps one: what its MQTT 5 CONNECT asked for. */
interface Mqtt5Client extends Client {
  /** the largest packet the client accepts; undefined when it set none */
  maximumPacketSize?: number
  /** false when the client asked for no reason strings (Request Problem Information) */
  _requestProblemInformation?: boolean
  /** Aedes 2: the CONNECT's Clean Start, where `clean` says whether the session ends with the connection */
  _cleanStart?: boolean
}

const V5 = Object.freeze({ protocolVersion: 5 })

/** True for a connection that started its session afresh: Aedes 2 keeps MQTT 5's Clean Start apart from whether the session outlives the connection. */
export function startsClean (client: Client): boolean {
  return (client as Mqtt5Client)._cleanStart ?? client.clean
}

/** True for a client that connected with MQTT 5 (which only Aedes 2 accepts). */
export function speaksMqtt5 (client: Client): boolean {
  return client.version === 5
}

/**
 * A client id Aedes 2 cannot hold: 2.0.0-beta.1 keeps its clients in a plain
 * object, and an id that names one of its inherited properties (`toString`,
 * `__proto__`) ends the process as the client registers. Aedes 1.2 holds
 * any id, but refuses these too: a cluster node on Aedes 1.2 announces its
 * clients to the others, and a node on Aedes 2 among them would end.
 */
export function unsafeClientId (clientId: string): boolean {
  return clientId in Object.prototype
}

/**
 * True when `packet`, written to `client`, would pass the Maximum Packet
 * Size the client's MQTT 5 CONNECT asked for: the broker must not send it
 * (MQTT 5 §3.1.2.11.4). Aedes 2.0.0-beta.1 keeps the value on the client but
 * does not enforce it. The packet is encoded to be measured only when a
 * generous bound says it might not fit.
 */
export function tooLargeFor (client: Client, packet: AedesPublishPacket): boolean {
  const max = (client as Mqtt5Client).maximumPacketSize
  if (typeof max !== 'number' || client.version !== 5) return false
  const payload = packet.payload
  const properties = (packet as { properties?: object }).properties
  // UTF-8 takes at most 3 bytes per UTF-16 unit; headers, lengths and ids take less than 64
  const bound = 64 + 3 * packet.topic.length + (typeof payload === 'string' ? 3 * payload.length : payload.length) + (properties === undefined ? 0 : 3 * JSON.stringify(properties).length)
  if (bound <= max) return false
  try {
    return mqttPacket.generate(packet, V5).length > max
  } catch {
    return true
  }
}

/** The MQTT 5 reason codes the plugin answers a PUBLISH with (MQTT 5 §3.4.2.1). */
export const enum Reason {
  success = 0x00,
  noMatchingSubscribers = 0x10,
  unspecifiedError = 0x80,
  notAuthorized = 0x87,
  topicNameInvalid = 0x90,
  quotaExceeded = 0x97
}

/**
 * Answers an MQTT 5 client's QoS 1/2 PUBLISH with a PUBACK/PUBREC carrying
 * `reason`, and tells Aedes 2 it is answered: its publish handler then
 * neither acknowledges nor publishes the packet. That is the flag Aedes 2
 * sets itself after it answers a refused publish with 0x87
 * (lib/handlers/publish.js, `_notAuthorized`); it is the only way to give a
 * sender a reason code other than 0x87. `done` runs once the answer is
 * written (or the connection is gone).
 */
export function answerPublish (client: Client, packet: { messageId?: number, qos: number }, reason: Reason, why: string | undefined, done: () => void): void {
  const c = client as Mqtt5Client
  ;(packet as { _notAuthorized?: boolean })._notAuthorized = true
  const ack: { cmd: 'puback' | 'pubrec', messageId: number | undefined, reasonCode: number, properties?: { reasonString: string } } =
    { cmd: packet.qos === 1 ? 'puback' : 'pubrec', messageId: packet.messageId, reasonCode: reason }
  // a reason string only for a client that did not ask to go without (MQTT 5 §3.1.2.11.7)
  if (why !== undefined && c._requestProblemInformation !== false) ack.properties = { reasonString: why }
  writePacket(client, ack as unknown as AedesPublishPacket, () => { done() })
}
