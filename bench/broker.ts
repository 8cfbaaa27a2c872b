/**
 * The broker under test, in its own process: Aedes on a loopback port, with
 * or without the plugin and nothing else, so the two differ only by it.
 *
 *   node --expose-gc build/bench/broker.js [--plugin]
 *
 * Tells its parent the port over IPC; answers `gc` with the heap in use
 * after a full collection, so that memory is read once garbage is gone.
 */
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import { register } from '../src/index.js'

export interface BrokerReady { port: number }
/** the answer to `gc`: the JavaScript heap in use once collected */
export interface Collected { heapUsed: number }

const broker = await Aedes.createBroker()
if (process.argv.includes('--plugin')) {
  // warnings only: a benchmark must not pay for logging it does not read
  const quiet = { error: console.error, warn: console.error, info: () => undefined, debug: () => undefined }
  await register(broker, { logger: quiet })
}
const server = createServer(broker.handle)
server.listen(0, '127.0.0.1')
await once(server, 'listening')
process.send?.({ port: (server.address() as AddressInfo).port } satisfies BrokerReady)

process.on('message', (message) => {
  if (message !== 'gc') return
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  process.send?.({ heapUsed: process.memoryUsage().heapUsed } satisfies Collected)
})
// the parent going away is the signal to stop
process.on('disconnect', () => { process.exit(0) })
