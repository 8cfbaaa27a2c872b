/**
 * The broker under test, in its own process: Aedes on a loopback port, with
 * or without the plugin and nothing else, so the two differ only by it.
 *
 *   node --expose-gc build/bench/broker.js [--plugin] [--guarded] [--ws] [--mqtt5]
 *
 * --guarded hands each connection to the broker's connection checks
 * (src/broker/connections.ts: max_connections, and max_packet_size read from
 * every fixed header), with the CLI's defaults, instead of to Aedes's own
 * `handle`: the cost the CLI broker adds to every packet besides the plugin.
 * --ws listens for MQTT over WebSocket too, as a plain Aedes is commonly
 * put behind `ws` with its defaults (a message of up to 100 MiB).
 * --mqtt5 runs on Aedes 2 (the package's `aedes2` dependency, 2.0.0-beta.1),
 * which speaks MQTT 5 besides 3.1.1, instead of Aedes 1.2.
 *
 * Tells its parent the ports over IPC; answers `gc` with the heap in use
 * after a full collection, so that memory is read once garbage is gone.
 */
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { Aedes } from 'aedes'
import { createWebSocketStream, WebSocketServer } from 'ws'
import { Connections } from '../src/broker/connections.js'
import { register } from '../src/index.js'
import { LimitHits } from '../src/plugin/limits.js'

export interface BrokerReady { port: number, wsPort?: number }
/** the answer to `gc`: the JavaScript heap in use once collected */
export interface Collected { heapUsed: number }

// warnings only: a benchmark must not pay for logging it does not read
const quiet = { error: console.error, warn: console.error, info: () => undefined, debug: () => undefined }
const broker = process.argv.includes('--mqtt5') ? await createAedes2() : await Aedes.createBroker()
if (process.argv.includes('--plugin')) await register(broker, { logger: quiet })
const handle: (conn: Duplex) => void = process.argv.includes('--guarded')
  ? new Connections(broker, { max_packet_size: 1024 * 1024, max_connections: 100_000 }, new LimitHits(quiet), quiet).handle
  : broker.handle
const server = createServer(handle)
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const ready: BrokerReady = { port: (server.address() as AddressInfo).port }
if (process.argv.includes('--ws')) {
  const http = createHttpServer()
  new WebSocketServer({ server: http }).on('connection', (socket) => { handle(createWebSocketStream(socket)) })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  ready.wsPort = (http.address() as AddressInfo).port
}
process.send?.(ready)

process.on('message', (message) => {
  if (message !== 'gc') return
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  process.send?.({ heapUsed: process.memoryUsage().heapUsed } satisfies Collected)
})
// the parent going away is the signal to stop
process.on('disconnect', () => { process.exit(0) })

/**
 * Aedes 2, loaded only when asked for, so that a 3.1.1 bench loads Aedes 1.2
 * alone; its typings differ from 1.2's only where this broker does not look
 * (as in src/broker/server.ts).
 */
async function createAedes2 (): Promise<Aedes> {
  const { Aedes: Aedes2 } = await import('aedes2')
  return await Aedes2.createBroker() as unknown as Aedes
}
