/**
 * The plugin: recognises P2P publishes, routes each one to its single target
 * through the broker's own persistence, and keeps the internal form of those
 * messages away from every other client.
 *
 * How it sits in Aedes:
 * - `publish` is wrapped. The host's `authorizePublish` has already run on the
 *   original `p2p/B/x` packet by then, and the sender's PUBACK/PUBREC flow is
 *   the host's, so a dropped message still completes it.
 * - `authorizeSubscribe` is wrapped to refuse filters into the internal
 *   `$p2p/` namespace, including the session marker Aedes restores.
 * - `authorizeForward` is wrapped to turn a stored P2P message back into the
 *   delivered one when Aedes replays a persistent session's queue.
 * - In a cluster, `authenticate` is wrapped so that a client's own channel is
 *   subscribed in the shared emitter before its CONNACK is written.
 * The user's hooks keep running, in the order they were installed.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import { asBroker, nextMessageId, writePacket, type Broker, type BrokerClient, type PublishDone, type PublishFn, type StoredSubscription } from './aedes-internals.js'
import { ConfigError, loadPluginFile, pluginConfig, PLUGIN_KEYS, rejectUnknownKeys, type PluginConfig } from './config.js'
import { Counters, type CounterSnapshot, type DropReason } from './counters.js'
import { inboxTopic, isInternalTopic, unwrapPayload, wrapPayload } from './inbox.js'
import { Rules } from './rules.js'
import { defaultLogger, WarnLimiter, type Logger } from './log.js'
import { TopicParser, type P2PTopic } from './topic.js'

/** What a P2P authorization hook is asked about. */
export interface P2PMessage {
  /** the publishing client; null for messages published by server code */
  readonly sender: Client | null
  readonly senderId: string
  /** the username the sender connected with, if any */
  readonly username: string | undefined
  readonly target: string
  /** the topic the target would receive */
  readonly topic: string
  readonly qos: 0 | 1 | 2
  readonly payload: Buffer
}

/**
 * Decides whether `sender` may message `target`. Return false to drop the
 * message (counted as refused); a synchronous answer keeps the hot path cheap.
 */
export type AuthorizeP2P = (message: P2PMessage) => boolean | Promise<boolean>

export interface P2POptions extends Partial<PluginConfig> {
  /** a plugin-only TOML file (rmqtt's `rmqtt-p2p-messaging.toml` works as is) */
  configFile?: string
  /** extra checks after the config rules; see AuthorizeP2P */
  authorize?: AuthorizeP2P
  /** refuse stop() and reload() */
  immutable?: boolean
  /**
   * The broker shares its emitter and persistence with other nodes (e.g.
   * mqemitter-redis and aedes-persistence-redis): route messages for clients
   * that are not connected here through the emitter, on the target's own channel.
   */
  cluster?: boolean
  logger?: Logger
}

export interface P2PHandle {
  readonly config: Readonly<PluginConfig>
  readonly immutable: boolean
  readonly running: boolean
  readonly counters: CounterSnapshot
  /** New config from an object, a plugin-only TOML file, or the configured file. */
  reload (source?: Partial<PluginConfig> | string): Promise<Readonly<PluginConfig>>
  /** Resume P2P routing after stop(). */
  start (): void
  /**
   * Stop recognising P2P topics: they are then ordinary topics, as if the
   * plugin were not installed. Messages already queued are still delivered.
   */
  stop (): void
}

const REGISTERED = Symbol.for('aedes-p2p-messaging')
// A persistent session's marker in the persistence: the target's own inbox
// channel at QoS 2, so offline queueing never needs a table of our own.
const MARKER_QOS = 2
// How long a connecting client may wait for its channel to be subscribed in
// Redis; during an outage the subscription completes later and the client
// is served locally meanwhile.
const SUBSCRIBE_WAIT_MS = 500

class P2PPlugin implements P2PHandle {
  readonly immutable: boolean
  #config: PluginConfig
  #parser: TopicParser
  #rules: Rules
  #running = true
  // Aedes does not keep the CONNECT username on the client; rules need it
  readonly #usernames = new WeakMap<Client, string>()
  readonly #counters = new Counters()
  readonly #broker: Broker
  readonly #hostPublish: PublishFn
  readonly #hostForward: Broker['authorizeForward']
  readonly #authorize: AuthorizeP2P | undefined
  readonly #configFile: string | undefined
  readonly #cluster: boolean
  // in cluster mode, each local client's listener on its own channel
  readonly #inboxes = new Map<Client, (packet: AedesPublishPacket, cb: () => void) => void>()
  readonly #log: Logger
  readonly #clientWarnings: WarnLimiter
  // P2P packets get their own id space for persistence keys, apart from the
  // broker's counter: Aedes drops a packet whose counter is not above the last
  // one a client saw from that id, and P2P and ordinary traffic finish their
  // persistence writes in different orders.
  readonly #packetSource: string
  #packetCounter = 0

  constructor (broker: Broker, config: PluginConfig, options: P2POptions) {
    this.#broker = broker
    this.#config = config
    this.#parser = new TopicParser(config.mode, config.keyword)
    this.#rules = new Rules(config.rules)
    this.immutable = options.immutable === true
    this.#authorize = options.authorize
    this.#configFile = options.configFile
    this.#cluster = options.cluster === true
    this.#log = options.logger ?? defaultLogger()
    this.#clientWarnings = new WarnLimiter(this.#log)
    this.#packetSource = broker.id + '-p2p'
    this.#hostPublish = broker.publish as unknown as PublishFn
    this.#hostForward = broker.authorizeForward
    this.#install()
  }

  get config (): Readonly<PluginConfig> { return this.#config }
  get running (): boolean { return this.#running }
  get counters (): CounterSnapshot { return this.#counters.snapshot() }

  async reload (source?: Partial<PluginConfig> | string): Promise<Readonly<PluginConfig>> {
    if (this.immutable) throw new Error('aedes-p2p-messaging is immutable: reload refused')
    let next: PluginConfig
    if (source === undefined || typeof source === 'string') {
      const path = source ?? this.#configFile
      if (path === undefined) throw new ConfigError('reload() needs a config object or file: none was configured')
      next = await loadPluginFile(path)
    } else {
      rejectUnknownKeys(source, PLUGIN_KEYS, 'reload')
      next = pluginConfig(source)
    }
    // synchronous from here, so a PUBLISH sees either the old config or the new one
    this.#parser = new TopicParser(next.mode, next.keyword)
    this.#rules = new Rules(next.rules)
    this.#config = next
    this.#log.info({ config: next }, 'P2P config reloaded')
    return next
  }

  start (): void {
    this.#running = true
  }

  stop (): void {
    if (this.immutable) throw new Error('aedes-p2p-messaging is immutable: stop refused')
    this.#running = false
  }

  #install (): void {
    const broker = this.#broker
    const hostSubscribe = broker.authorizeSubscribe
    const hostPreConnect = broker.preConnect
    const hostPublish = this.#hostPublish

    const publish = (packet: AedesPublishPacket, client: Client | null | PublishDone, done: PublishDone): void => {
      if (typeof client === 'function') {
        done = client
        client = null
      }
      const topic = packet.topic
      if (isInternalTopic(topic)) {
        // a forged inbox message would bypass every check; nobody publishes here
        this.#drop('refused', client, topic, 'internal topic')
        done()
        return
      }
      const parsed = this.#running ? this.#parser.parse(topic) : null
      if (parsed === null) {
        hostPublish.call(broker, packet, client, done)
        return
      }
      this.#counters.received++
      if (parsed.kind === 'malformed') {
        this.#drop('malformed', client, topic, parsed.reason)
        done()
        return
      }
      this.#route(packet, client as BrokerClient | null, parsed, done)
    }
    broker.publish = publish as unknown as Aedes['publish']

    broker.preConnect = (client, packet, callback) => {
      if (typeof packet.username === 'string') this.#usernames.set(client, packet.username)
      hostPreConnect.call(broker, client, packet, callback)
    }

    broker.authorizeSubscribe = (client, sub, callback) => {
      if (isInternalTopic(sub.topic)) {
        // granted 0x80; also how a restored session's marker stays out of the emitter
        callback(null, null)
        return
      }
      hostSubscribe.call(broker, client, sub, callback)
    }

    broker.authorizeForward = (client, packet) => {
      if (!isInternalTopic(packet.topic)) return this.#hostForward.call(broker, client, packet)
      return this.#unwrapQueued(client, packet)
    }

    broker.on('client', (client: Client) => {
      if (!client.clean) this.#markSession(client as BrokerClient)
    })
    if (this.#cluster) {
      // The channel is subscribed before CONNACK: a client told it is
      // connected can be reached from every node at once.
      const hostAuthenticate = broker.authenticate
      broker.authenticate = (client, username, password, callback) => {
        hostAuthenticate.call(broker, client, username, password, (err, success) => {
          if (err !== null || success !== true) {
            callback(err, success)
            return
          }
          this.#listen(client as BrokerClient, () => { callback(null, true) })
        })
      }
      broker.on('clientDisconnect', (client: Client) => { this.#unlisten(client) })
    }
    broker.on('unsubscribe', (topics: string[], client: Client) => {
      // the marker is not the client's to drop: a persistent session keeps it
      if (!client.clean && topics.includes(inboxTopic(client.id))) this.#markSession(client as BrokerClient)
    })
  }

  #markSession (client: BrokerClient): void {
    this.#broker.persistence.addSubscriptions(client, [{ topic: inboxTopic(client.id), qos: MARKER_QOS }])
      .catch((err: unknown) => { this.#log.error({ err, clientId: client.id }, 'cannot record P2P session') })
  }

  #listen (client: BrokerClient, subscribed: () => void): void {
    const listener = (packet: AedesPublishPacket, cb: () => void): void => {
      cb()
      if (client.closed) return
      const stored = client.clean || packet.qos === 0 ? undefined : packet
      if (!client.connackSent) {
        // Between authentication and CONNACK nothing may be written. A stored
        // copy is the session queue's, which Aedes sends after CONNACK; a
        // live one waits until that queue has been sent.
        if (stored === undefined) client.once('connected', () => { this.#fromInbox(client, packet, undefined) })
        return
      }
      this.#fromInbox(client, packet, stored)
    }
    this.#inboxes.set(client, listener)
    let waiting = true
    const proceed = (): void => {
      if (!waiting) return
      waiting = false
      clearTimeout(timer)
      subscribed()
    }
    const timer = setTimeout(proceed, SUBSCRIBE_WAIT_MS)
    this.#broker.mq.on(inboxTopic(client.id), listener, proceed)
    // a connection that ends before Aedes registers it never gets 'clientDisconnect'
    client.conn.once('close', () => { this.#unlisten(client) })
  }

  #fromInbox (client: BrokerClient, packet: AedesPublishPacket, stored: AedesPublishPacket | undefined): void {
    if (client.closed) return
    const inner = unwrapPayload(packet.payload as Buffer)
    if (inner === null) return
    this.#deliver(client, inner.topic, inner.payload, packet.qos, stored)
  }

  #unlisten (client: Client): void {
    const listener = this.#inboxes.get(client)
    if (listener === undefined) return
    this.#inboxes.delete(client)
    this.#broker.mq.removeListener(inboxTopic(client.id), listener)
  }

  #route (packet: AedesPublishPacket, sender: BrokerClient | null, p2p: P2PTopic, done: PublishDone): void {
    const senderId = sender?.id ?? ''
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const username = sender === null ? undefined : this.#usernames.get(sender)
    if (this.#rules.size > 0 && !this.#rules.allows({ senderId, username, target: p2p.target })) {
      this.#drop('refused', sender, packet.topic, 'refused by rule')
      done()
      return
    }
    const authorize = this.#authorize
    if (authorize === undefined) {
      this.#send(packet, p2p, payload, done)
      return
    }
    const message: P2PMessage = { sender, senderId, username, target: p2p.target, topic: p2p.topic, qos: packet.qos, payload }
    let verdict: boolean | Promise<boolean>
    try {
      verdict = authorize(message)
    } catch (err) {
      verdict = Promise.reject(err)
    }
    const decide = (allowed: boolean): void => {
      if (allowed) {
        this.#send(packet, p2p, payload, done)
      } else {
        this.#drop('refused', sender, packet.topic, 'refused by authorize hook')
        done()
      }
    }
    if (!(verdict instanceof Promise)) {
      // anything but true refuses, including a hook that forgot to return
      decide(verdict === true)
    } else {
      verdict.then((allowed) => { decide(allowed === true) }, (err: unknown) => {
        this.#log.error({ err, clientId: senderId, topic: packet.topic }, 'P2P authorize hook failed; message refused')
        decide(false)
      })
    }
  }

  #send (packet: AedesPublishPacket, p2p: P2PTopic, payload: Buffer, done: PublishDone): void {
    const broker = this.#broker
    const target = p2p.target
    const qos = packet.qos
    const local = broker.clients[target]
    const online = local !== undefined && !local.closed

    if (qos === 0) {
      if (online) {
        this.#deliver(local, p2p.topic, payload, 0, undefined)
      } else {
        this.#notHere(p2p, payload, 0)
      }
      done()
      return
    }

    // a live copy to a clean session needs neither the envelope nor the store
    if (online && local.clean) {
      this.#deliver(local, p2p.topic, payload, qos, undefined)
      done()
      return
    }
    this.#findSession(target, online).then((session) => {
      if (session === null) {
        // not online here (a connected client here has a session or took the path above)
        this.#notHere(p2p, payload, qos)
        done()
        return
      }
      const stored = this.#internalPacket(target, p2p.topic, payload, qos)
      return broker.persistence.outgoingEnqueueCombi([session], stored).then(() => {
        const now = broker.clients[target]
        if (now !== undefined && !now.closed && !now.clean) {
          this.#deliver(now, p2p.topic, payload, qos, stored)
        } else if (this.#cluster) {
          // stored first, so a target on another node, or on none, loses nothing
          this.#forward(stored)
        } else {
          this.#counters.queued++
        }
        done()
      })
    }).catch((err: unknown) => {
      // as for ordinary traffic: a persistence failure is the sender's error
      done(err as Error)
    })
  }

  // Without a session to queue in: another node may hold the target (with a
  // clean session); a broker on its own knows nobody does.
  #notHere (p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2): void {
    if (this.#cluster) {
      this.#forward(this.#internalPacket(p2p.target, p2p.topic, payload, qos))
      return
    }
    this.#counters.dropped.no_session++
    this.#log.debug({ target: p2p.target, topic: p2p.topic }, 'P2P message dropped: target not connected and has no session')
  }

  // Redis delivers on the target's exact channel only to the node holding it.
  #forward (packet: AedesPublishPacket): void {
    this.#counters.forwarded++
    this.#broker.mq.emit(packet, (err) => {
      if (err !== undefined && err !== null) this.#log.error({ err: err.message, topic: packet.topic }, 'P2P message not forwarded to the cluster')
    })
  }

  // A connected persistent client has its session by definition, and its
  // marker may still be on its way into the store; otherwise ask the store.
  async #findSession (target: string, online: boolean): Promise<StoredSubscription | null> {
    const topic = inboxTopic(target)
    if (online) return { clientId: target, topic, qos: MARKER_QOS }
    const subs = await this.#broker.persistence.subscriptionsByTopic(topic)
    for (const sub of subs) {
      // `#` subscribers match the channel too; only the target's own marker counts
      if (sub.clientId === target && sub.topic === topic) return sub
    }
    if (!this.#cluster) return null
    // The topic index is each node's copy, updated by broadcast after the
    // marker is written; a session opened a moment ago on another node may
    // not be in it yet. The client's own record in the store is not late.
    const own = await this.#broker.persistence.subscriptionsByClient({ id: target })
    return own.some((sub) => sub.topic === topic) ? { clientId: target, topic, qos: MARKER_QOS } : null
  }

  #internalPacket (target: string, topic: string, payload: Buffer, qos: 0 | 1 | 2): AedesPublishPacket {
    return {
      cmd: 'publish',
      topic: inboxTopic(target),
      payload: wrapPayload(topic, payload),
      qos,
      retain: false,
      dup: false,
      brokerId: this.#packetSource,
      brokerCounter: ++this.#packetCounter
    } as AedesPublishPacket
  }

  /**
   * Writes straight to a connected target. Aedes's own deliverQoS would lower
   * the QoS to that of any subscription the target holds on the delivered
   * topic, which SPEC §2 rules out; `stored` is the queued copy of a message
   * for a persistent session, whose packet id must be recorded before writing.
   */
  #deliver (client: BrokerClient, topic: string, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): void {
    const packet = {
      cmd: 'publish',
      topic,
      payload,
      qos,
      retain: false,
      dup: false,
      messageId: qos > 0 ? nextMessageId(client) : undefined,
      brokerId: stored?.brokerId,
      brokerCounter: stored?.brokerCounter
    } as AedesPublishPacket
    const forwarded = this.#hostForward.call(this.#broker, client, packet)
    if (forwarded === null || forwarded === undefined) {
      this.#log.debug({ clientId: client.id, topic }, 'P2P delivery refused by authorizeForward')
      return
    }
    const write = (): void => {
      writePacket(client, forwarded, (err) => {
        if (err === null) {
          this.#counters.delivered++
        } else {
          this.#log.debug({ err, clientId: client.id }, 'P2P delivery failed; a persistent session keeps it queued')
        }
      })
    }
    if (stored === undefined) {
      write()
      return
    }
    this.#broker.persistence.outgoingUpdate(client, packet).then(write, (err: unknown) => {
      // the session was taken over or cleaned meanwhile: its queue is gone, so is this copy
      this.#log.debug({ err, clientId: client.id }, 'P2P message no longer queued; not delivered')
    })
  }

  // Aedes replays a persistent session's queue through authorizeForward and
  // writes the very packet it passed in, so the rewrite happens in place.
  #unwrapQueued (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic !== inboxTopic(client.id)) return null
    const inner = unwrapPayload(packet.payload as Buffer)
    if (inner === null) return null
    packet.topic = inner.topic
    packet.payload = inner.payload
    packet.retain = false
    const forwarded = this.#hostForward.call(this.#broker, client, packet)
    if (forwarded === null || forwarded === undefined) return null
    this.#counters.delivered++
    return packet
  }

  #drop (reason: DropReason, client: Client | null, topic: string, why: string): void {
    this.#counters.dropped[reason]++
    this.#clientWarnings.warn({ clientId: client?.id ?? null, topic, reason: why }, `P2P message dropped (${reason})`)
  }
}

/**
 * Installs P2P messaging into an Aedes broker, composing with the hooks it
 * already has. Throws if the broker already has it.
 */
export async function register (aedes: Aedes, options: P2POptions = {}): Promise<P2PHandle> {
  const broker = asBroker(aedes)
  const marked = broker as unknown as Record<symbol, unknown>
  if (marked[REGISTERED] !== undefined) throw new Error('aedes-p2p-messaging is already registered on this broker')
  const { configFile, authorize, immutable, logger, cluster, ...inline } = options
  rejectUnknownKeys(inline, PLUGIN_KEYS, 'register() options')
  let config = configFile === undefined ? undefined : await loadPluginFile(configFile)
  config = pluginConfig(inline, config)
  if (authorize !== undefined && typeof authorize !== 'function') throw new TypeError('authorize must be a function')
  // checked again after the await: two concurrent register() calls must not both install
  if (marked[REGISTERED] !== undefined) throw new Error('aedes-p2p-messaging is already registered on this broker')
  const plugin = new P2PPlugin(broker, config, { configFile, authorize, immutable, logger, cluster })
  marked[REGISTERED] = plugin
  return plugin
}

