/**
 * The load generator: sender→receiver pairs of real MQTT clients, each pair
 * with a bounded window of messages sent and not yet received. The send time
 * travels in the payload, so latency is measured on one clock.
 */
import { performance } from 'node:perf_hooks'
import mqtt, { type MqttClient } from 'mqtt'
import { round } from './stats.js'

export type Route = 'pubsub' | 'p2p'

export interface PairsOptions {
  /** senders connect here; receivers too unless receiverPort is set */
  port: number
  receiverPort?: number
  pairs: number
  route: Route
  qos: 0 | 1
  prefix: string
  /** the clients speak MQTT 5 rather than 3.1.1 (the broker must be Aedes 2) */
  mqtt5?: boolean
}

export interface TrafficOptions {
  payloadBytes: number
  /** messages a pair may have sent and not yet received */
  window: number
  durationMs: number
  /**
   * traffic that flows before the measured part, so that a broker idle a
   * moment ago is measured at speed (default none)
   */
  prerollMs?: number
}

export interface TrafficResult {
  /** over the whole run, preroll included */
  sent: number
  /** in the measured part */
  received: number
  lost: number
  duplicates: number
  seconds: number
  messagesPerSecond: number
  latencyMs: { p50: number, p99: number }
}

interface Pair {
  sender: MqttClient
  receiver: MqttClient
  topic: string
  sent: number
  received: number
  duplicates: number
}

/**
 * How every benchmark client connects: no reconnects, and a keepalive long
 * enough that no PINGREQ lands inside a measured run. MQTT 3.1.1 (protocol
 * level 4), or MQTT 5 for a bench of Aedes 2 (`--mqtt5`).
 */
export function benchClient (port: number, clientId: string, mqtt5 = false): Promise<MqttClient> {
  return mqtt.connectAsync({ host: '127.0.0.1', port, clientId, reconnectPeriod: 0, keepalive: 600, protocolVersion: mqtt5 ? 5 : 4 })
}

// payload layout: send time (f64), sequence number (u32), run number (u32),
// then padding; a straggler from an earlier run must not count in this one
const HEADER = 16

export class Pairs {
  readonly #pairs: Pair[] = []
  readonly #qos: 0 | 1
  #runs = 0
  #onReceive: (pair: Pair, payload: Buffer) => void = () => undefined

  private constructor (qos: 0 | 1) { this.#qos = qos }

  static async connect (options: PairsOptions): Promise<Pairs> {
    const pairs = new Pairs(options.qos)
    await Promise.all(Array.from({ length: options.pairs }, async (_, i) => {
      const receiverId = `${options.prefix}r${i}`
      const [sender, receiver] = await Promise.all([
        benchClient(options.port, `${options.prefix}s${i}`, options.mqtt5),
        benchClient(options.receiverPort ?? options.port, receiverId, options.mqtt5)
      ])
      // the prefix keeps sets of pairs on one broker apart
      let topic = `bench/${options.prefix}${i}`
      if (options.route === 'p2p') {
        topic = `p2p/${receiverId}/${topic}`
      } else {
        await receiver.subscribeAsync(topic, { qos: options.qos })
      }
      const pair: Pair = { sender, receiver, topic, sent: 0, received: 0, duplicates: 0 }
      receiver.on('message', (_topic, payload) => { pairs.#onReceive(pair, payload) })
      pairs.#pairs.push(pair)
    }))
    return pairs
  }

  /**
   * Runs traffic for a while, then waits for what is still in flight.
   * `measuring` is called when the measured part begins, after the preroll.
   */
  async run ({ payloadBytes, window, durationMs, prerollMs = 0 }: TrafficOptions, measuring?: () => void): Promise<TrafficResult> {
    const qos = this.#qos
    const run = ++this.#runs
    const latencies: number[] = []
    let measured = false
    let sending = true
    let inFlight = 0
    let drained: () => void = () => undefined
    const send = (pair: Pair): void => {
      const payload = Buffer.alloc(Math.max(payloadBytes, HEADER))
      payload.writeDoubleLE(performance.now(), 0)
      payload.writeUInt32LE(pair.sent++, 8)
      payload.writeUInt32LE(run, 12)
      inFlight++
      pair.sender.publish(pair.topic, payload, { qos })
    }
    this.#onReceive = (pair, payload) => {
      const now = performance.now()
      if (payload.readUInt32LE(12) !== run) return
      // a redelivered copy carries a sequence number already seen
      if (payload.readUInt32LE(8) < pair.received) {
        pair.duplicates++
        return
      }
      pair.received++
      inFlight--
      if (measured) latencies.push(now - payload.readDoubleLE(0))
      if (sending) {
        send(pair)
      } else if (inFlight === 0) {
        drained()
      }
    }
    for (const pair of this.#pairs) {
      pair.sent = pair.received = pair.duplicates = 0
    }
    for (const pair of this.#pairs) {
      for (let i = 0; i < window; i++) send(pair)
    }
    if (prerollMs > 0) await sleep(prerollMs)
    const receivedBefore = this.#total('received')
    measured = true
    measuring?.()
    const started = performance.now()
    await sleep(durationMs)
    sending = false
    // what has not arrived a few seconds after the last send is lost
    await new Promise<void>((resolve) => {
      drained = resolve
      if (inFlight === 0) resolve()
      setTimeout(resolve, 3000)
    })
    const seconds = (performance.now() - started) / 1000
    this.#onReceive = () => undefined
    const sent = this.#total('sent')
    const received = this.#total('received')
    latencies.sort((a, b) => a - b)
    const at = (q: number): number => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN, 2)
    return {
      sent,
      received: received - receivedBefore,
      lost: sent - received,
      duplicates: this.#total('duplicates'),
      seconds: round(seconds, 3),
      messagesPerSecond: Math.round((received - receivedBefore) / seconds),
      latencyMs: { p50: at(0.5), p99: at(0.99) }
    }
  }

  #total (field: 'sent' | 'received' | 'duplicates'): number {
    let sum = 0
    for (const pair of this.#pairs) sum += pair[field]
    return sum
  }

  async close (): Promise<void> {
    await Promise.all(this.#pairs.flatMap((pair) => [pair.sender.endAsync(true), pair.receiver.endAsync(true)]))
  }
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
