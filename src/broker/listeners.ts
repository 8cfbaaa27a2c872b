/** The MQTT listeners: TCP, TLS over TCP and WebSocket, each optional. */
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net'
import type { Duplex } from 'node:stream'
import { createSecureContext, createServer as createTlsServer } from 'node:tls'
import { createWebSocketStream, WebSocketServer } from 'ws'
import type { Settings } from './settings.js'
import { ConfigError } from '../plugin/errors.js'

export interface Listener {
  name: 'mqtt' | 'mqtts' | 'ws' | 'admin'
  server: Server | HttpServer
  host: string
  port: number
}

/** The TLS listener's certificate and key, read and checked. */
export interface TlsFiles { cert: Buffer, key: Buffer }

/**
 * Reads and checks the TLS files, if the TLS listener is on: done before the
 * broker is made, so a bad file is refused at once, even while Redis is away.
 */
export async function readTls (settings: Settings['listeners']): Promise<TlsFiles | undefined> {
  if (settings.tls_port === undefined) return undefined
  // one after the other: when both are unreadable, the error names the certificate every time
  const cert = await readPem(settings.tls_cert, 'tls_cert')
  const key = await readPem(settings.tls_key, 'tls_key')
  const unusable = (what: string, err: unknown, setting: string): ConfigError =>
    new ConfigError(`TLS ${what} unusable: ${(err as Error).message}`, setting)
  try {
    new X509Certificate(cert)
  } catch (err) {
    throw unusable('certificate', err, 'listeners.tls_cert')
  }
  try {
    createPrivateKey(key)
  } catch (err) {
    throw unusable('key', err, 'listeners.tls_key')
  }
  try {
    createSecureContext({ cert, key })
  } catch (err) {
    // each is fine alone: the key is not the certificate's
    throw unusable('key', err, 'listeners.tls_key')
  }
  return { cert, key }
}

/** What takes each new connection: Aedes's `handle`, or what guards it. */
export type Handle = (conn: Duplex, req?: IncomingMessage) => void

/** What the listeners report to the broker's counters. */
export interface ListenerEvents {
  /** a WebSocket message was larger than the largest packet */
  oversized (): void
  /** a WebSocket upgrade came from a page whose origin is not allowed */
  originRefused (origin: string, req: IncomingMessage): void
}

/**
 * Builds every configured listener without binding yet. A WebSocket message
 * larger than `maxPacketSize` closes its connection before it is buffered
 * (ws's maxPayload); the MQTT packets inside are checked by `handle`.
 */
export function createListeners (handle: Handle, settings: Settings['listeners'], tls: TlsFiles | undefined, maxPacketSize: number, events: ListenerEvents): Listener[] {
  const listeners: Listener[] = []
  const { host } = settings
  if (settings.port !== false) {
    listeners.push({ name: 'mqtt', server: createTcpServer((socket) => { handle(socket) }), host, port: settings.port })
  }
  if (settings.tls_port !== undefined && tls !== undefined) {
    listeners.push({ name: 'mqtts', server: createTlsServer(tls, (socket) => { handle(socket) }), host, port: settings.tls_port })
  }
  if (settings.ws_port !== undefined) {
    const http = createHttpServer((_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain' })
      res.end(`MQTT over WebSocket lives at ${settings.ws_path}\n`)
    })
    const allowed = settings.ws_origins
    const wss = new WebSocketServer({
      server: http,
      path: settings.ws_path,
      maxPayload: maxPacketSize,
      // Any web page a user opens can try a WebSocket to a broker it can
      // reach (one on their own machine or LAN included), and the browser
      // says which page in Origin: refuse the pages not listed before the
      // connection can send a CONNECT.
      verifyClient: (info, done) => {
        // ws's types say string; it is undefined when the header is absent
        const origin = info.origin as string | undefined
        if (originAllowed(allowed, origin)) {
          done(true)
          return
        }
        events.originRefused(origin ?? '', info.req)
        done(false, 403, `origin ${JSON.stringify(origin)} is not allowed: [listeners] ws_origins lists the origins that are\n`, { 'Content-Type': 'text/plain; charset=utf-8' })
      }
    })
    wss.on('connection', (socket, req) => {
      socket.on('error', (err: Error & { code?: string }) => {
        // ws closes the connection itself (code 1009); the limit is counted here
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') events.oversized()
      })
      handle(createWebSocketStream(socket), req)
    })
    listeners.push({ name: 'ws', server: http, host, port: settings.ws_port })
  }
  return listeners
}

/**
 * A request without Origin is not from a browser page (MQTT.js in Node, a
 * device), so no page can be abusing it; one that has it must be listed.
 * The header is compared as `new URL().origin` writes it, as the setting is.
 */
export function originAllowed (allowed: readonly string[], header: string | undefined): boolean {
  if (header === undefined) return true
  if (allowed.includes('*')) return true
  let origin: string
  try {
    origin = new URL(header).origin
  } catch {
    return false
  }
  // "null" is what sandboxed frames and file: pages send: any page can be that
  return origin !== 'null' && allowed.includes(origin)
}

async function readPem (path: string | undefined, key: string): Promise<Buffer> {
  if (path === undefined) throw new ConfigError(`listeners.${key} is required for TLS`, `listeners.${key}`)
  try {
    return await readFile(path)
  } catch (err) {
    throw new ConfigError(`cannot read listeners.${key} ${path}: ${(err as Error).message}`, `listeners.${key}`)
  }
}

/** Binds one listener; the actual port replaces 0. */
export async function bind (listener: Listener): Promise<void> {
  const { server, host, port } = listener
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => { reject(new Error(`cannot listen for ${listener.name} on ${host}:${port}: ${err.message}`)) }
    server.once('error', failed)
    server.listen(port, host, () => {
      server.removeListener('error', failed)
      resolve()
    })
  })
  listener.port = (server.address() as AddressInfo).port
}

/** Stops accepting; open HTTP keep-alive connections would otherwise hold close() up. */
export async function unbind (listener: Listener): Promise<void> {
  const { server } = listener
  if (!server.listening) return
  const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  if ('closeAllConnections' in server) server.closeAllConnections()
  await closed
}
