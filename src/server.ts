/** A running broker: Aedes, the plugin, and its listeners, built from Settings. */
import { createServer, type AddressInfo, type Server } from 'node:net'
import { Aedes } from 'aedes'
import type { Logger as PinoLogger } from 'pino'
import { register, type P2PHandle } from './plugin.js'
import type { Settings } from './settings.js'

export interface RunningBroker {
  broker: Aedes
  plugin: P2PHandle
  /** where each listener ended up, e.g. { mqtt: { host, port } } */
  addresses: Record<string, { host: string, port: number }>
  close (): Promise<void>
}

export async function startServer (settings: Settings, log: PinoLogger): Promise<RunningBroker> {
  const broker = await Aedes.createBroker()
  const plugin = await register(broker, { ...settings.plugin, logger: log.child({ module: 'p2p' }) })
  observeClients(broker, log)

  const servers: Server[] = []
  const addresses: RunningBroker['addresses'] = {}
  try {
    const tcp = createServer(broker.handle)
    servers.push(tcp)
    addresses.mqtt = await listen(tcp, settings.listeners.host, settings.listeners.port)
  } catch (err) {
    await closeAll(broker, servers)
    throw err
  }
  for (const [name, address] of Object.entries(addresses)) {
    log.info({ listener: name, ...address }, `listening for ${name} on ${address.host}:${address.port}`)
  }

  let closing: Promise<void> | undefined
  return {
    broker,
    plugin,
    addresses,
    close: async () => {
      closing ??= closeAll(broker, servers)
      await closing
    }
  }
}

async function listen (server: Server, host: string, port: number): Promise<{ host: string, port: number }> {
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => { reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`)) }
    server.once('error', failed)
    server.listen(port, host, () => {
      server.removeListener('error', failed)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  return { host: address.address, port: address.port }
}

// Stop accepting first, then let Aedes close its clients and persistence.
async function closeAll (broker: Aedes, servers: Server[]): Promise<void> {
  const stopped = servers.filter((s) => s.listening).map(async (s) => new Promise<void>((resolve) => { s.close(() => { resolve() }) }))
  await new Promise<void>((resolve) => { broker.close(() => { resolve() }) })
  await Promise.all(stopped)
}

function observeClients (broker: Aedes, log: PinoLogger): void {
  broker.on('client', (client) => { log.debug({ clientId: client.id }, 'client connected') })
  broker.on('clientDisconnect', (client) => { log.debug({ clientId: client.id }, 'client disconnected') })
  broker.on('clientError', (client, err) => { log.debug({ clientId: client.id, err: err.message }, 'client error') })
}
