/**
 * A QoS 1 sender that keeps to what it was told, for the failover tests:
 * one message at a time, each sent again on a new connection until it is
 * acknowledged, and given up on after ATTEMPT_MS without an answer (sent
 * again too: QoS 1 is at least once). What it was acknowledged is `acked`,
 * which is what the broker must then deliver.
 */
import type { MqttClient } from 'mqtt'
import { connectClient } from './broker.js'

const ATTEMPT_MS = 5000
const ATTEMPTS = 60
const RETRY_PAUSE_MS = 200

export interface CarefulSender {
  /** payloads acknowledged, in the order they were */
  readonly acked: string[]
  send (payload: string): Promise<void>
  end (): void
}

export async function carefulSender (port: number, clientId: string, topic: string): Promise<CarefulSender> {
  let client: MqttClient = await connectClient(port, clientId)
  const acked: string[] = []
  const attempt = async (payload: string): Promise<void> => {
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        client.publishAsync(topic, payload, { qos: 1 }),
        new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('no PUBACK in time')) }, ATTEMPT_MS) })
      ])
    } finally {
      clearTimeout(timer)
    }
  }
  return {
    acked,
    async send (payload) {
      for (let i = 0; i < ATTEMPTS; i++) {
        try {
          await attempt(payload)
          acked.push(payload)
          return
        } catch {
          client.end(true)
          await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS))
          client = await connectClient(port, clientId).catch(() => client)
        }
      }
      throw new Error(`${payload} never acknowledged`)
    },
    end () { client.end(true) }
  }
}
