/**
 * What a hostile client sends: bytes poured into a connection as fast as it
 * takes them, until a bound in bytes or in time is reached, or the broker
 * hangs up. What the kernel has not taken stays in the attacker's own
 * buffers for at most one chunk, so a broker that stops reading holds the
 * attacker up rather than the attacker's memory growing.
 */
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'

/** At most `bytes` and `ms`, whichever comes first. */
export interface Bound { bytes: number, ms: number }

/** What an attacker got into its connections. */
export interface Sent {
  bytes: number
  /** MQTT packets, whole or begun */
  messages: number
  seconds: number
}

export interface Pouring {
  /** written once, first: a packet's start, or nothing */
  head?: Buffer
  /** written again and again */
  body: Buffer
  /** packets in one `body` */
  packetsPerBody: number
}

/** Pours into `conn` until the bound, or until it closes; never throws. */
export async function pour (conn: Duplex, { head, body, packetsPerBody }: Pouring, bound: Bound): Promise<Sent> {
  const started = performance.now()
  const deadline = started + bound.ms
  let bytes = 0
  let messages = 0
  let closed = false
  // a broker that hangs up mid-write is an outcome here, not an error
  conn.on('error', () => {})
  const over = new Promise<void>((resolve) => {
    conn.once('close', () => {
      closed = true
      resolve()
    })
  })
  const write = async (chunk: Buffer): Promise<void> => {
    bytes += chunk.length
    if (conn.write(chunk)) return
    let timer: NodeJS.Timeout | undefined
    let drained = (): void => {}
    await Promise.race([
      over,
      new Promise<void>((resolve) => {
        drained = resolve
        conn.once('drain', resolve)
        timer = setTimeout(resolve, Math.max(0, deadline - performance.now()))
      })
    ])
    clearTimeout(timer)
    conn.removeListener('drain', drained)
  }
  if (head !== undefined) {
    await write(head)
    messages++
  }
  while (!closed && !conn.destroyed && bytes + body.length <= bound.bytes && performance.now() < deadline) {
    await write(body)
    messages += packetsPerBody
  }
  return { bytes, messages, seconds: Math.round(performance.now() - started) / 1000 }
}

/**
 * About `bytes` of PUBLISH packets of `payloadBytes` each, back to back, as
 * one body to pour; at QoS 1 with packet ids 1, 2, … (a broker keeps no
 * record of a sender's QoS 1 ids, so reusing them costs it nothing more).
 */
export function publishBody (topic: string, payloadBytes: number, qos: 0 | 1, bytes = 256 * 1024): Pouring {
  const count = Math.max(1, Math.round(bytes / payloadBytes))
  const payload = Buffer.alloc(payloadBytes)
  const packets = Array.from({ length: count }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...(qos === 1 ? { messageId: i + 1 } : {}) }))
  return { body: Buffer.concat(packets), packetsPerBody: count }
}
