/** Collecting what a real MQTT client receives, without sleeping in tests. */
import type { IClientPublishOptions, IPublishPacket, MqttClient, Packet } from 'mqtt'

export interface Received { topic: string, payload: Buffer, qos: number, retain: boolean, packet: IPublishPacket }

/** Everything `client` receives from now on, in arrival order. */
export function collect (client: MqttClient): Received[] {
  const got: Received[] = []
  client.on('message', (topic, payload, packet) => {
    got.push({ topic, payload, qos: packet.qos, retain: packet.retain, packet })
  })
  return got
}

/** Resolves once `list` holds `count` entries; rejects after `ms`. */
export async function waitFor<T> (list: T[], count: number, ms = 5000): Promise<T[]> {
  const deadline = Date.now() + ms
  while (list.length < count) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} messages, got ${list.length}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return list
}

/**
 * Proves a client got nothing it should not have: `sender` publishes a fence
 * on `fenceTopic`, which `watcher` subscribes to, after the message under test.
 * A broker handles one connection's publishes in order, so once the fence
 * arrives, anything the earlier message would have produced has arrived too.
 */
export async function fence (sender: MqttClient, watcher: MqttClient, got: Received[], fenceTopic = 'fence'): Promise<Received[]> {
  await watcher.subscribeAsync(fenceTopic, { qos: 1 })
  const before = got.length
  await sender.publishAsync(fenceTopic, 'fence', { qos: 1 })
  const deadline = Date.now() + 5000
  while (!got.slice(before).some((m) => m.topic === fenceTopic)) {
    if (Date.now() > deadline) throw new Error('fence did not arrive')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return got.filter((m) => m.topic !== fenceTopic)
}

/**
 * Resolves once `check` holds; rejects after `ms`. For what a client cannot
 * fence: Aedes 1.x writes a QoS 1 PUBACK before it publishes, so a counter
 * may move after the sender's publishAsync has resolved.
 */
export async function until (check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Resolves when `client`'s connection closes; rejects if it is still open after `ms`. */
export async function closed (client: MqttClient, ms = 5000): Promise<void> {
  if (client.disconnected) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${client.options.clientId ?? 'client'}: still connected after ${ms} ms`)) }, ms)
    client.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/**
 * Publishes, and resolves with the reason code of the PUBACK/PUBREC that
 * answers it: 0 for success, for QoS 0, and for an MQTT 3.1.1 client. MQTT.js
 * reports 0x10 as success, so the answer is read off the wire.
 */
export async function publishTold (client: MqttClient, topic: string, payload: string | Buffer, options: IClientPublishOptions): Promise<number> {
  let messageId: number | undefined
  let code = 0
  const sent = (packet: Packet): void => {
    if (packet.cmd === 'publish' && packet.topic === topic && messageId === undefined) messageId = packet.messageId
  }
  const received = (packet: Packet): void => {
    if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.messageId === messageId) code = packet.reasonCode ?? 0
  }
  client.on('packetsend', sent)
  client.on('packetreceive', received)
  try {
    await client.publishAsync(topic, payload, options).catch((err: unknown) => {
      // a reason code of 0x80 or more: MQTT.js rejects, with the code
      if (typeof (err as { code?: unknown }).code !== 'number') throw err
    })
  } finally {
    client.removeListener('packetsend', sent)
    client.removeListener('packetreceive', received)
  }
  return code
}
