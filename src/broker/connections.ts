/**
 * Every connection a listener accepts passes through here before Aedes sees
 * it (docs/behaviour.md §7):
 *
 * - max_connections: past it, a new connection is answered CONNACK 3
 *   (server unavailable) by a small reader of its own and closed; Aedes
 *   never sees it, and the clients it serves are untouched.
 * - max_packet_size: a packet whose fixed header announces more closes its
 *   connection before its body is read. Until its CONNACK, all a connection
 *   sends counts against one max_packet_size, so a client that is still
 *   being checked cannot pile packets up in the broker; and all connections
 *   still connecting together count against CONNECTING_PACKETS of them.
 *
 * Aedes reads a connection with read() on 'readable' (lib/client.js,
 * nextBatch); each chunk is looked at on its way out of read(), before
 * Aedes's parser buffers it.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { hasConnack } from '../plugin/host.js'
import type { LimitHits } from '../plugin/limits.js'
import type { Logger } from '../plugin/log.js'
import { FITS, PacketSizes } from './packet-sizes.js'

// MQTT CONNACK return code 3 (3.1.1) and reason code 0x88 (5.0): server unavailable
const SERVER_UNAVAILABLE = 3
const SERVER_UNAVAILABLE_V5 = 0x88
// A refused connection gets this long to send its CONNECT, in at most this many bytes...
const REFUSAL_WAIT_MS = 5000
const REFUSAL_MAX_BYTES = 64 * 1024
// ...and past this many refusals under way, new ones are closed without an answer
const MAX_REFUSING = 1000
// Until their CONNACK, connections together may hold this many times
// max_packet_size; past it, one holding more than SMALL_CONNECT is closed:
// clients still connecting cannot hold max_connections × max_packet_size,
// and an ordinary CONNECT (a few hundred bytes; a long token a few KiB)
// still gets through.
const CONNECTING_PACKETS = 64
const SMALL_CONNECT = 8 * 1024

/** Marks a connection once anything has been written to it: the first thing is its CONNACK. */
const WRITTEN = Symbol('written')
type Watched = Duplex & { [WRITTEN]?: true }

/**
 * True once anything was written to the connection. Nothing is written to
 * a client before its CONNACK (pending.ts holds what comes earlier), so
 * this is true from the moment a CONNACK is written, before Aedes marks it
 * sent on a later turn.
 */
export function written (conn: Duplex): boolean {
  return (conn as Watched)[WRITTEN] === true
}

/** Marks the connection at its first write, then gets out of the way. */
function watchFirstWrite (conn: Duplex): void {
  const write = conn.write
  conn.write = function (this: Watched, ...args: Parameters<Duplex['write']>): boolean {
    this[WRITTEN] = true
    conn.write = write
    return write.apply(this, args)
  } as Duplex['write']
}

/** The Aedes client reading a connection: Aedes sets it on the connection when it takes it. */
function clientOf (conn: Duplex): Parameters<typeof hasConnack>[0] | undefined {
  return (conn as Duplex & { client?: Parameters<typeof hasConnack>[0] }).client
}

/** A CONNACK that says: server unavailable, in the client's protocol version. */
export function serverUnavailable (protocolVersion: number | undefined): Buffer {
  const v5 = protocolVersion === 5
  const connack = v5
    ? { cmd: 'connack' as const, sessionPresent: false, reasonCode: SERVER_UNAVAILABLE_V5 }
    : { cmd: 'connack' as const, sessionPresent: false, returnCode: SERVER_UNAVAILABLE }
  return mqttPacket.generate(connack, { protocolVersion: v5 ? 5 : 4 })
}

export interface ConnectionLimits {
  max_packet_size: number
  max_connections: number
}

type Read = (size?: number) => unknown

export class Connections {
  readonly #broker: Aedes
  readonly #limits: ConnectionLimits
  readonly #hits: LimitHits
  readonly #log: Logger
  #open = 0
  #refusing = 0
  /** bytes read from connections that have not had their CONNACK yet, all together */
  #beforeConnack = 0
  /** every connection still open, handed to Aedes or being refused */
  readonly #sockets = new Set<Duplex>()

  constructor (broker: Aedes, limits: ConnectionLimits, hits: LimitHits, log: Logger) {
    this.#broker = broker
    this.#limits = limits
    this.#hits = hits
    this.#log = log
  }

  /** Connections handed to Aedes and still open. */
  get open (): number { return this.#open }

  /** What a listener hands each new connection, in place of Aedes's own `handle`. */
  readonly handle = (conn: Duplex, req?: IncomingMessage): void => {
    this.#sockets.add(conn)
    conn.once('close', () => { this.#sockets.delete(conn) })
    if (this.#open >= this.#limits.max_connections) {
      this.#hits.hit('max_connections', { open: this.#open })
      this.#refuse(conn)
      return
    }
    this.#open++
    conn.once('close', () => { this.#open-- })
    this.#watchSizes(conn)
    watchFirstWrite(conn)
    this.#broker.handle(conn, req)
  }

  /**
   * Ends every connection still open: for a shutdown, after Aedes has closed
   * its clients. What is left had not logged in (Aedes would wait for its
   * CONNECT until connectTimeout) or was being refused.
   */
  closeAll (): void {
    for (const conn of this.#sockets) conn.destroy()
  }

  #watchSizes (conn: Duplex): void {
    const max = this.#limits.max_packet_size
    const sizes = new PacketSizes(max)
    let beforeConnack = 0
    let released = false
    // what it held before its CONNACK is let go once it has one, or is gone
    const release = (): void => {
      if (released) return
      released = true
      this.#beforeConnack -= beforeConnack
    }
    conn.once('close', release)
    const read = conn.read as Read
    const guarded: Read = (size) => {
      const chunk = read.call(conn, size)
      if (chunk === null || conn.destroyed || typeof chunk === 'string') return chunk
      const bytes = chunk as Uint8Array
      let refused = sizes.scan(bytes)
      if (refused === FITS && !released) {
        const client = clientOf(conn)
        if (client !== undefined && hasConnack(client)) {
          release()
        } else {
          beforeConnack += bytes.length
          this.#beforeConnack += bytes.length
          if (beforeConnack > max) refused = beforeConnack
          else if (beforeConnack > SMALL_CONNECT && this.#beforeConnack > max * CONNECTING_PACKETS) refused = beforeConnack
        }
      }
      if (refused === FITS) return chunk
      this.#hits.hit('max_packet_size', { clientId: clientOf(conn)?.id ?? null, bytes: refused, max })
      conn.destroy()
      return null
    }
    conn.read = guarded as Duplex['read']
  }

  /** Answers CONNACK 3 to a connection over max_connections, then closes it. */
  #refuse (conn: Duplex): void {
    if (this.#refusing >= MAX_REFUSING) {
      conn.destroy()
      return
    }
    this.#refusing++
    const parser = mqttPacket.parser()
    let received = 0
    const done = (): void => {
      clearTimeout(timer)
      conn.removeAllListeners('data')
      conn.destroy()
    }
    const timer = setTimeout(done, REFUSAL_WAIT_MS)
    conn.once('close', () => {
      this.#refusing--
      clearTimeout(timer)
    })
    conn.on('error', () => {})
    parser.once('error', done)
    parser.once('packet', (packet: mqttPacket.Packet) => {
      if (packet.cmd !== 'connect') {
        done()
        return
      }
      conn.end(serverUnavailable(packet.protocolVersion))
      clearTimeout(timer)
      // a peer that does not close its side is closed for it
      setTimeout(done, 1000).unref()
      this.#log.debug({ clientId: packet.clientId }, 'connection refused: max_connections reached')
    })
    conn.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (received > REFUSAL_MAX_BYTES) done()
      else parser.parse(chunk)
    })
  }
}
