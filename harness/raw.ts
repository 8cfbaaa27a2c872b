/**
 * MQTT by hand over a raw connection, for clients that misbehave on purpose:
 * they stop reading, send what no library would, or hang up at the worst
 * moment. Packets are built and read with mqtt-packet. Shared by the tests
 * and the bench's hostile part.
 */
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { createWebSocketStream, WebSocket } from 'ws'

export interface RawClient {
  conn: Duplex
  /** every packet received, in order */
  packets: Packet[]
  /** resolves when the connection has closed, whoever closed it */
  closed: Promise<void>
  isClosed (): boolean
  send (packet: Packet | Buffer): void
  /** the first packet of that kind received (now or later) */
  next (cmd: Packet['cmd'], ms?: number): Promise<Packet>
  /** stops reading: what the broker writes piles up in its buffers */
  stopReading (): void
  startReading (): void
  /** reads on but keeps nothing: a sender flooding the broker has no use for its acknowledgements */
  discardIncoming (): void
  destroy (): void
}

/** `from`: the loopback address to connect from (127.0.0.2 and so on), as a client elsewhere would */
export type Transport = { tcp: number, from?: string } | { tls: number, ca: Buffer } | { ws: string }

/** `protocolVersion`: how packets are read and written; 5 for MQTT 5's reason codes and properties */
export async function rawClient (to: Transport, protocolVersion: 4 | 5 = 4): Promise<RawClient> {
  let conn: Duplex
  // a WebSocket stream ends when the socket closes but is not closed until both sides end: the socket's close is what counts
  let closes: { once (event: 'close', listener: () => void): unknown }
  if ('tcp' in to) {
    const socket: Socket = connect({ port: to.tcp, host: '127.0.0.1', localAddress: to.from })
    await once(socket, 'connect')
    conn = closes = socket
  } else if ('tls' in to) {
    const socket = tlsConnect({ port: to.tls, host: '127.0.0.1', ca: to.ca })
    await once(socket, 'secureConnect')
    conn = closes = socket
  } else {
    const ws = new WebSocket(to.ws, 'mqtt')
    await once(ws, 'open')
    conn = createWebSocketStream(ws)
    closes = ws
  }
  const packets: Packet[] = []
  const parser = mqttPacket.parser({ protocolVersion })
  parser.on('packet', (packet: Packet) => { packets.push(packet) })
  // what the peer sends may be refused mid-packet: a parse error is no test failure
  parser.on('error', () => {})
  let keeping = true
  conn.on('data', (chunk: Buffer) => { if (keeping) parser.parse(chunk) })
  conn.on('error', () => {})
  let isClosed = false
  const closed = new Promise<void>((resolve) => {
    closes.once('close', () => {
      isClosed = true
      resolve()
    })
  })
  return {
    conn,
    packets,
    closed,
    isClosed: () => isClosed,
    send (packet) {
      conn.write(Buffer.isBuffer(packet) ? packet : mqttPacket.generate(packet, { protocolVersion }))
    },
    async next (cmd, ms = 5000) {
      const deadline = Date.now() + ms
      for (;;) {
        const found = packets.find((p) => p.cmd === cmd)
        if (found !== undefined) return found
        if (Date.now() > deadline) throw new Error(`no ${cmd} within ${ms} ms (closed: ${isClosed})`)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    },
    stopReading () { conn.pause() },
    startReading () { conn.resume() },
    discardIncoming () { keeping = false },
    destroy () { conn.destroy() }
  }
}

export interface ConnectOptions {
  clientId: string
  clean?: boolean
  username?: string
  password?: string
  protocolVersion?: 4 | 5
}

export function connectPacket ({ clientId, clean = true, username, password, protocolVersion = 4 }: ConnectOptions): Packet {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion,
    clientId,
    clean,
    keepalive: 0,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password: Buffer.from(password) })
  } as Packet
}

/** Connects by hand and waits for the CONNACK; rejects on any other answer. */
export async function rawSession (to: Transport, options: ConnectOptions): Promise<RawClient> {
  const client = await rawClient(to, options.protocolVersion)
  client.send(connectPacket(options))
  const connack = await client.next('connack') as mqttPacket.IConnackPacket
  if ((connack.returnCode ?? connack.reasonCode ?? 0) !== 0) throw new Error(`${options.clientId}: CONNACK ${connack.returnCode ?? connack.reasonCode}`)
  return client
}

export interface Answer {
  /** the CONNACK's return code (3.1.1) or reason code (5.0); null when the connection closed, or `ms` passed, without one */
  code: number | null
  /** from the start of the connection to the answer, or to giving up: what a client waits to be let in */
  ms: number
}

/**
 * Connects by hand and times the broker's answer to a CONNECT; the
 * connection is closed after it. A connection refused is no answer.
 */
export async function answerTo (to: Transport, options: ConnectOptions, ms = 5000): Promise<Answer> {
  const started = performance.now()
  let client: RawClient
  try {
    client = await rawClient(to, options.protocolVersion)
  } catch {
    return { code: null, ms: performance.now() - started }
  }
  client.send(connectPacket(options))
  const code = await new Promise<number | null>((resolve) => {
    const parser = mqttPacket.parser({ protocolVersion: options.protocolVersion ?? 4 })
    const timer = setTimeout(() => { resolve(null) }, ms)
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd !== 'connack') return
      clearTimeout(timer)
      resolve(packet.returnCode ?? packet.reasonCode ?? 0)
    })
    parser.on('error', () => {})
    client.conn.on('data', (chunk: Buffer) => { parser.parse(chunk) })
    void client.closed.then(() => {
      clearTimeout(timer)
      resolve(null)
    })
  })
  const answer = { code, ms: performance.now() - started }
  client.destroy()
  return answer
}

/** A fixed header announcing `remaining` bytes after it, and nothing more. */
export function announcing (type: number, remaining: number): Buffer {
  const bytes = [type << 4]
  let n = remaining
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    bytes.push(byte)
  } while (n > 0)
  return Buffer.from(bytes)
}
