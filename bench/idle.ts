/**
 * Idle connected clients, in a process of their own so that holding them
 * costs the load generator nothing.
 *
 * The parent sends one IdleRequest; the reply is the number connected. They
 * stay connected until the parent disconnects, then the process exits.
 */
import type { MqttClient } from 'mqtt'
import { benchClient } from './load.js'

export interface IdleRequest {
  /** brokers to spread the clients over, round-robin */
  ports: number[]
  count: number
  prefix: string
  /** MQTT 5 clients, for a bench of Aedes 2 */
  mqtt5: boolean
}

// enough to keep a broker's accept queue busy without flooding it
const CONCURRENT_CONNECTS = 200

const clients: MqttClient[] = []

async function connectAll ({ ports, count, prefix, mqtt5 }: IdleRequest): Promise<number> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const port = ports[i % ports.length] as number
      clients.push(await benchClient(port, `${prefix}${i}`, mqtt5))
    }
  }
  await Promise.all(Array.from({ length: CONCURRENT_CONNECTS }, worker))
  return clients.length
}

process.once('message', (request: IdleRequest) => {
  connectAll(request).then((connected) => { process.send?.(connected) }, (err: unknown) => {
    console.error('idle clients could not connect:', err)
    process.exit(1)
  })
})
process.on('disconnect', () => { process.exit(0) })
