/** A real Aedes broker with the plugin, on a free loopback port. */
import { once } from 'node:events'
import { afterEach } from 'node:test'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { Aedes, type AedesOptions } from 'aedes'
import { Aedes as Aedes2 } from 'aedes2'
import mqtt, { type ErrorWithReasonCode, type IClientOptions, type MqttClient } from 'mqtt'
import { register, type Logger, type P2PHandle, type P2POptions } from '../../src/index.js'
import { onBrokerError } from '../../src/plugin/host.js'
import { collect, type Received } from './messages.js'
import { protocol } from './protocol.js'

/** Aedes for the file's protocol; Aedes 2's typings differ from 1.2's only where the plugin does not look. */
export async function createAedes (options?: AedesOptions): Promise<Aedes> {
  if (protocol.version === 5) return await Aedes2.createBroker(options as object) as unknown as Aedes
  return await Aedes.createBroker(options)
}

export interface TestBroker {
  broker: Aedes
  plugin: P2PHandle
  port: number
  log: CapturedLog
  connect (clientId: string, options?: IClientOptions): Promise<MqttClient>
  /** Connects and collects messages from before CONNACK, as a restored session's queue follows it at once. */
  connectCollecting (clientId: string, options?: IClientOptions): Promise<Session>
  close (): Promise<void>
}

export interface Session { client: MqttClient, got: Received[], sessionPresent: boolean }

export interface LogLine { level: string, obj: object, msg: string }
export interface CapturedLog extends Logger { lines: LogLine[] }

export function captureLog (): CapturedLog {
  const lines: LogLine[] = []
  const at = (level: string) => (obj: object, msg: string): void => { lines.push({ level, obj, msg }) }
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
}

export interface StartOptions {
  plugin?: P2POptions | false
  aedes?: AedesOptions
  /** runs before register(), to install the user's own hooks first */
  setup?: (broker: Aedes) => void
  /** runs after the broker has closed, e.g. to close a persistence Aedes does not own */
  teardown?: (broker: Aedes) => Promise<void>
}

export async function startBroker (opts: StartOptions = {}): Promise<TestBroker> {
  const broker = await createAedes(opts.aedes)
  opts.setup?.(broker)
  const log = captureLog()
  const plugin = opts.plugin === false
    ? (undefined as unknown as P2PHandle)
    : await register(broker, { logger: log, ...opts.plugin })
  const server: Server = createServer(broker.handle)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const clients: MqttClient[] = []
  return {
    broker,
    plugin,
    port,
    log,
    async connect (clientId, options = {}) {
      const client = await connectClient(port, clientId, options)
      clients.push(client)
      return client
    },
    async connectCollecting (clientId, options = {}) {
      const session = await connectCollectingAt(port, clientId, options)
      clients.push(session.client)
      return session
    },
    async close () {
      // Aedes 2 wipes an ended MQTT 5 session as its connection closes; a wipe still under way when the
      // emitter closes is reported as a broker error, which nobody would hear and so would end the test
      onBrokerError(broker, () => {})
      await Promise.all(clients.map(async (c) => { await c.endAsync(true) }))
      // let the broker finish with the connections that just closed (it
      // publishes their $SYS notices) before its emitter goes away
      const deadline = Date.now() + 2000
      while (broker.connectedClients > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
      await new Promise((resolve) => setImmediate(resolve))
      await new Promise<void>((resolve) => { broker.close(() => { resolve() }) })
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      await opts.teardown?.(broker)
    }
  }
}

export async function connectClient (port: number, clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(clientOptions(port, clientId, options))
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('error', reject)
    client.once('close', () => { reject(new Error(`${clientId}: connection closed before CONNACK`)) })
  })
  return client
}

/** Connects and collects messages from before CONNACK, as a restored session's queue follows it at once. */
export async function connectCollectingAt (port: number, clientId: string, options: IClientOptions = {}): Promise<Session> {
  const client = mqtt.connect(clientOptions(port, clientId, options))
  const got = collect(client)
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
    client.once('close', () => { reject(new Error(`${clientId}: connection closed before CONNACK`)) })
  })
  return { client, got, sessionPresent: connack.sessionPresent }
}

/** The CONNACK code a CONNECT gets (0 when let in), or 'closed' for a connection closed without one. */
export async function connackCode (port: number, clientId: string, options: IClientOptions = {}): Promise<number | 'closed'> {
  const client = mqtt.connect(clientOptions(port, clientId, options))
  try {
    return await new Promise((resolve) => {
      client.once('connect', () => { resolve(0) })
      client.once('error', (err) => { resolve((err as ErrorWithReasonCode).code ?? -1) })
      client.once('close', () => { resolve('closed') })
    })
  } finally {
    client.end(true)
  }
}

function clientOptions (port: number, clientId: string, options: IClientOptions): IClientOptions {
  const v5 = protocol.version === 5
  // MQTT 5: a session outlives its connection only with a session expiry
  const persistent = v5 && options.clean === false ? { properties: { sessionExpiryInterval: 3600, ...options.properties } } : {}
  return { host: '127.0.0.1', port, clientId, protocolVersion: protocol.version, reconnectPeriod: 0, connectTimeout: 5000, ...options, ...persistent }
}

/** For a test file: a fresh broker per test, closed after the test. */
export function brokerPerTest (): (opts?: StartOptions) => Promise<TestBroker> {
  let current: TestBroker | undefined
  afterEach(async () => {
    await current?.close()
    current = undefined
  })
  return async (opts) => {
    current = await startBroker(opts)
    return current
  }
}
