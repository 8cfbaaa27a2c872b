/**
 * Every reliance on Aedes beyond its typed, documented API, each as a
 * function. The plugin and the cluster strategies reach into the broker only
 * through here, so an Aedes upgrade is checked in this file — and by the
 * integration tests, which all run against the real broker.
 *
 * Documented API (hooks, events, `subscribe`/`unsubscribe`, the typed client
 * fields) is used directly elsewhere; everything below is not in Aedes's
 * typings or docs.
 */
import type { Aedes, AedesPublishPacket, AuthenticateError, Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { P2PError } from './errors.js'
import type { Persistence } from './host-store.js'

/** Keep in step with peerDependencies.aedes in package.json. */
export const SUPPORTED_AEDES = '^1.2.0 || >=2.0.0-beta.1 <3'

export type PublishDone = (err?: Error | null) => void
/** Aedes's publish as it really is: with the publishing client, null for server code. */
export type PublishFn = (packet: AedesPublishPacket, client: Client | null, done: PublishDone) => void

interface Emitter {
  emit (packet: AedesPublishPacket, done?: (err?: Error) => void): void
}

interface Broker extends Aedes {
  readonly version: string
  readonly opts: { heartbeatInterval: number }
  clients: Record<string, Client | undefined>
  persistence: Persistence
  mq: Emitter
}

interface BrokerClient extends Client {
  broker: Aedes
  connackSent: boolean
  errored?: boolean
  /** the next outgoing packet identifier; shared so ours never collide with the broker's */
  _nextId: number
  waitForDrain (cb: (err?: Error | null) => void): void
}

const internals = (aedes: Aedes): Broker => aedes as Broker

// frozen, so that a write allocates no options object; Aedes 1.2 writes 3.1 clients as 3.1.1, and so do we
const V4 = Object.freeze({ protocolVersion: 4 })
const V5 = Object.freeze({ protocolVersion: 5 })

/** The broker, if it is an Aedes this package supports; else an error with a code. */
export function checkHost (aedes: unknown): Aedes {
  const b = aedes as Partial<Broker> | null
  if (typeof b !== 'object' || b === null || typeof b.publish !== 'function' || typeof b.handle !== 'function' ||
      typeof b.persistence?.delWill !== 'function' || b.mq === undefined || b.clients === undefined) {
    throw new P2PError('ERR_P2P_NOT_AEDES', 'register() needs an Aedes broker instance (from Aedes.createBroker())')
  }
  const version = String(b.version)
  if (!supportedVersion(version)) {
    throw new P2PError('ERR_P2P_AEDES_VERSION', `aedes-p2p-messaging needs Aedes ${SUPPORTED_AEDES}; this broker is Aedes ${version}`)
  }
  return aedes as Aedes
}

/** `^1.2.0 || >=2.0.0-beta.1 <3`, for the version strings Aedes has published. */
function supportedVersion (version: string): boolean {
  const match = /^(\d+)\.(\d+)\.(\d+)(?:-([a-z]+)\.(\d+))?$/.exec(version)
  if (match === null) return false
  const [major, minor] = [Number(match[1]), Number(match[2])]
  const pre = match[4]
  if (major === 1) return minor >= 2 && pre === undefined
  if (major !== 2) return false
  // of the 2.0.0 prereleases, beta.1 is the first that speaks MQTT 5 as this plugin needs
  return pre === undefined || minor > 0 || Number(match[3]) > 0 || pre === 'rc' || (pre === 'beta' && Number(match[5]) >= 1)
}

/**
 * The client connected to this broker with that id, if any. Aedes 2 keeps
 * its clients in a plain object, so an id such as `toString` names something
 * inherited, never a client.
 */
export function connectedClient (broker: Aedes, clientId: string): Client | undefined {
  const clients = internals(broker).clients
  const client = clients[clientId]
  return client === undefined || client.closed || !Object.hasOwn(clients, clientId) ? undefined : client
}

/**
 * Whether the broker with that id, sharing this one's emitter, is alive:
 * heard from within three heartbeats, as Aedes judges it for the wills of
 * brokers that died. Undefined while this broker has not been up that long
 * itself, so it cannot tell a broker it has not yet heard from a dead one.
 */
export function brokerAlive (broker: Aedes, brokerId: string, upSince: number): boolean | undefined {
  const b = internals(broker)
  if (brokerId === b.id) return true
  const window = 3 * b.opts.heartbeatInterval
  // when it was last heard from by its heartbeat; none from a broker not heard from at all
  const seen = b.brokers[brokerId] as number | undefined
  if (seen !== undefined && seen + window >= Date.now()) return true
  return Date.now() - upSince < window ? undefined : false
}

/** How a step after authentication answers for its client: a refusal, or null to let it in. */
export type Admit = (refusal: AuthenticateError | null) => void

/**
 * Runs `step` for each client the broker's `authenticate`, as it is now,
 * lets in and that is still connected; the step then answers for it. A
 * client that hung up during a slow check is done: Aedes drops the answer,
 * and nothing may be left for it. Returns what takes the step out again.
 */
export function afterAuthenticate (broker: Aedes, step: (client: Client, username: string | undefined, admit: Admit) => void): () => void {
  const hostAuthenticate = broker.authenticate
  broker.authenticate = (client, username, password, callback) => {
    hostAuthenticate.call(broker, client, username, password, (err, success) => {
      if (err !== null || success !== true || client.closed) {
        callback(err, success)
        return
      }
      step(client, username, (refusal) => {
        if (refusal === null) callback(null, true)
        else callback(refusal, null)
      })
    })
  }
  return () => { broker.authenticate = hostAuthenticate }
}

/** Every client connected to this broker. */
export function connectedClients (broker: Aedes): Client[] {
  return Object.values(internals(broker).clients).filter((client): client is Client => client !== undefined && !client.closed)
}

/** Aedes's publish as it is now, typed as it really is called. */
export function publishOf (broker: Aedes): PublishFn {
  return broker.publish as unknown as PublishFn
}

const noop = (): void => {}

/**
 * Routes Aedes's publish to `target.publish`. Like Aedes's own, it also takes
 * (packet, done) and (packet) from server code.
 */
export function replacePublish (broker: Aedes, target: { publish: PublishFn }): void {
  broker.publish = ((packet: AedesPublishPacket, client?: Client | null | PublishDone, done?: PublishDone) => {
    if (typeof client === 'function') target.publish(packet, null, client)
    else target.publish(packet, client ?? null, done ?? noop)
  }) as unknown as Aedes['publish']
}

/** Claims a packet identifier exactly as Aedes's own QoSPacket does. */
export function nextMessageId (client: Client): number {
  const c = client as BrokerClient
  const id = c._nextId
  c._nextId = id >= 65535 ? 1 : id + 1
  return id
}


const uncork = (conn: { uncork (): void }): void => { conn.uncork() }

/**
 * Writes a packet the way Aedes's lib/write.js does: honour socket
 * backpressure, and report a closed connection instead of throwing.
 */
export function writePacket (client: Client, packet: AedesPublishPacket, done: (err: Error | null) => void): void {
  const c = client as BrokerClient
  if (!c.connecting && !c.connected) {
    setImmediate(done, new Error('connection closed'))
    return
  }
  // encoded whole before any byte is written: a packet that cannot be
  // encoded (a string too long once in UTF-8) leaves the stream as it was;
  // and the socket's own answer says when to wait, for every kind of packet
  let bytes: Buffer
  try {
    bytes = mqttPacket.generate(packet, c.version === 5 ? V5 : V4)
  } catch {
    setImmediate(done, new Error('packet could not be encoded'))
    return
  }
  const conn = c.conn
  // as mqtt-packet corks a stream it writes to: what is written in one tick goes out in one write
  conn.cork()
  process.nextTick(uncork, conn)
  const flushed = conn.write(bytes)
  if (!flushed && c.errored !== true) {
    c.waitForDrain((err) => { done(err ?? null) })
    return
  }
  setImmediate(done, null)
}

/**
 * Runs `step` for each client connecting to this broker after Aedes has read
 * its stored session — so the CONNACK's session-present flag is already
 * decided — and before it registers the client and writes the CONNACK.
 * Aedes has no hook there. Its connect sequence (lib/handlers/connect.js,
 * storeWill) calls persistence.delWill with the connecting client at that
 * point, and nothing else calls it with a client that is still connecting;
 * so the step runs inside that call. A failing step is the step's to report:
 * the connect goes on.
 */
export function beforeConnack (broker: Aedes, step: (client: Client) => Promise<void>): void {
  const persistence = internals(broker).persistence
  const delWill = persistence.delWill.bind(persistence)
  persistence.delWill = async (client) => {
    const connecting = client as Partial<BrokerClient>
    // a persistence shared by several brokers carries each one's step
    if (connecting.connecting === true && connecting.broker === broker) await step(client as Client).catch(() => {})
    return delWill(client)
  }
}

/**
 * Takes a closed client out of the broker's table, as Aedes does for one
 * that closes after it was registered: Aedes 1.2 registers a client that
 * closed while it was connecting, and then never unregisters it.
 */
export function unregisterClosed (broker: Aedes, client: Client): void {
  const b = internals(broker) as Broker & { unregisterClient (client: Client): void }
  if (client.closed && b.clients[client.id] === client) b.unregisterClient(client)
}

/** How Aedes hands a message to one client's subscriptions: `cb` lets the emitter go on. */
export type Deliver = (packet: AedesPublishPacket, cb: () => void) => void
export interface Deliveries { deliver0: Deliver, deliverQoS: Deliver }

/**
 * Replaces the functions a client's subscriptions deliver through: Aedes's
 * Client sets `deliver0` and `deliverQoS` in its constructor, and each
 * subscription takes the one it needs when it is made (lib/handlers/
 * subscribe.js), as do retained messages and `client.publish()`. Replaced
 * before the client's first subscription, they serve every one.
 */
export function replaceDeliveries (client: Client, wrap: (host: Deliveries) => Deliveries): void {
  const c = client as unknown as Deliveries
  const wrapped = wrap({ deliver0: c.deliver0, deliverQoS: c.deliverQoS })
  c.deliver0 = wrapped.deliver0
  c.deliverQoS = wrapped.deliverQoS
}

/** True once the client's CONNACK is written (Aedes sets `connackSent` right after). */
export function hasConnack (client: Client): boolean {
  return (client as BrokerClient).connackSent
}

/** Hands a packet to the broker's emitter as is, past the publish pipeline. */
export function emitPacket (broker: Aedes, packet: AedesPublishPacket, done: (err?: Error) => void): void {
  internals(broker).mq.emit(packet, done)
}

/** Aedes reports persistence failures as an 'error' event its typings leave out; unheard, one would end the process. */
export function onBrokerError (broker: Aedes, listener: (err: Error) => void): void {
  (broker as unknown as { on (event: 'error', l: (err: Error) => void): void }).on('error', listener)
}
