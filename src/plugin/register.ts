/**
 * register() and the handle it returns: the plugin's lifecycle, as rmqtt's
 * plugins have it — installed once, switched on and off with start/stop,
 * reporting and reloading its config in place, or immutable.
 */
import type { Aedes } from 'aedes'
import { standalone } from '../cluster/standalone.js'
import type { Cluster } from '../cluster/strategy.js'
import { Authorization } from './authorization.js'
import { ChannelPackets } from './channel.js'
import { Counters, type CounterSnapshot } from './counters.js'
import { Delivery } from './delivery.js'
import { ConfigError, P2PError } from './errors.js'
import { installHooks } from './hooks.js'
import { boundInbound } from './inbound.js'
import { checkHost, publishOf } from './host.js'
import { pluginLimits, type PluginLimits } from './limits.js'
import { defaultLogger, type Logger } from './log.js'
import { loadPluginFile, OPTION_KEYS, pluginConfig, PLUGIN_KEYS, type P2POptions, type PluginConfig } from './options.js'
import { Owners } from './owners.js'
import { Pending } from './pending.js'
import { Queues } from './queues.js'
import { Router } from './routing.js'
import { expireSessions } from './session-expiry.js'
import { Sessions } from './sessions.js'
import { sendP2P, type SendOptions, type SendResult } from './send.js'
import { isTable, rejectUnknownKeys } from './table.js'
import { TopicParser } from './topic.js'

export interface P2PHandle {
  /** the running config */
  readonly config: Readonly<PluginConfig>
  /** the limits it was registered with */
  readonly limits: Readonly<PluginLimits>
  readonly immutable: boolean
  /** false after stop(), or when registered with `startup: false` */
  readonly running: boolean
  /** what the plugin has done with P2P traffic since it was registered */
  readonly counters: CounterSnapshot
  /**
   * New config from an object, a plugin-only TOML file, or (no argument) the
   * `configFile` given to register(). Keys an object leaves out keep their
   * running values. A file is read as register() read its `configFile`:
   * the inline options given to register() (`mode`, `keyword`, `rules`)
   * override it, and keys neither gives take their defaults. Without a
   * `configFile`, reload() with no argument is refused. A bad config is
   * refused (ERR_P2P_CONFIG) and the running one stays.
   */
  reload (source?: Partial<PluginConfig> | string): Promise<Readonly<PluginConfig>>
  /**
   * Ends every stored session whose owner `refuse(username, clientId)`
   * says may no longer hold it — a user that is gone, an id that is now
   * another user's: its queue is dropped and its subscriptions go, so the
   * id is free and nobody else gets what was queued for it. Resolves with
   * how many it ended. For after a change of users (the broker's reload).
   */
  endSessions (refuse: (username: string, clientId: string) => boolean): Promise<number>
  /**
   * Sends a P2P message from server code to `target`, on `topic`, as a
   * publish to its P2P topic would (rules and the authorize hook see it with
   * no client), and resolves with what became of it. Rejects with
   * ERR_P2P_INVALID_MESSAGE for a target or topic no P2P topic can carry,
   * ERR_P2P_STOPPED while the plugin is stopped.
   */
  send (target: string, topic: string, payload: Buffer | string, options?: SendOptions): Promise<SendResult>
  /** Routes P2P topics (again). */
  start (): void
  /**
   * Stops recognising P2P topics: they are then ordinary topics, as if the
   * plugin were not installed. Messages already queued are still delivered.
   */
  stop (): void
}

const REGISTERED = Symbol.for('aedes-p2p-messaging')

class P2PPlugin implements P2PHandle {
  readonly immutable: boolean
  readonly limits: Readonly<PluginLimits>
  #config: PluginConfig
  readonly #router: Router
  readonly #authorization: Authorization
  readonly #counters: Counters
  readonly #configFile: string | undefined
  // register()'s own mode, keyword and rules, which override any file it reads
  readonly #inline: Partial<PluginConfig>
  readonly #log: Logger
  readonly #owners: Owners
  readonly #broker: Aedes
  /** the running topic forms, which the router has too */
  #parser: TopicParser

  constructor (broker: Aedes, config: PluginConfig, limits: PluginLimits, options: P2POptions, cluster: Cluster, log: Logger) {
    this.#config = config
    this.limits = Object.freeze(limits)
    this.immutable = options.immutable === true
    this.#configFile = options.configFile
    this.#inline = { mode: options.mode, keyword: options.keyword, rules: options.rules }
    this.#log = log
    this.#broker = broker
    this.#parser = new TopicParser(config.mode, config.keyword)
    const counters = this.#counters = new Counters(log)
    // the store is shared with other nodes exactly when its index may lag behind them
    const owners = this.#owners = new Owners(broker, cluster.indexMayLag, options.users, log)
    const authorization = this.#authorization = new Authorization(config.rules, options.authorize, owners, log)
    const hostForward = broker.authorizeForward
    const pending = new Pending(broker, limits, counters, log)
    const delivery = new Delivery(broker, hostForward, counters, limits, pending, log)
    const sessions = new Sessions(broker, cluster, log)
    const packets = new ChannelPackets(broker.id)
    const queues = new Queues(broker, limits, counters, log, !cluster.indexMayLag)
    const router = this.#router = new Router(this.#parser, {
      broker, hostPublish: publishOf(broker), authorization, sessions, queues, delivery, cluster, packets, counters, log
    })
    router.running = options.startup !== false
    // nearest the host's authenticate, before the cluster listens for a client it may refuse
    const unguard = owners.guard()
    try {
      cluster.attach({
        broker,
        log,
        pack: (target, topic, payload, qos, headers) => packets.pack(target, topic, payload, qos, headers),
        arrive: (client, packet) => { delivery.arrive(client, packet) },
        // a clean session has no queue: what it missed live is gone, as it would be on a dropped connection
        resync: (client) => { if (!client.clean && !client.closed) pending.lag(client) }
      })
    } catch (err) {
      // a strategy that refuses this broker leaves it as it was
      unguard()
      throw err
    }
    installHooks(broker, { router, owners, sessions, delivery, pending, hostForward, inbound: boundInbound(broker, counters.limits) })
    // a store no other node writes to (the index cannot lag) holds only sessions that are offline now
    if (limits.session_expiry > 0) expireSessions(broker, limits.session_expiry, !cluster.indexMayLag, counters, log)
  }

  get config (): Readonly<PluginConfig> { return this.#config }
  get running (): boolean { return this.#router.running }
  get counters (): CounterSnapshot { return this.#counters.snapshot() }

  async reload (source?: Partial<PluginConfig> | string): Promise<Readonly<PluginConfig>> {
    if (this.immutable) throw new P2PError('ERR_P2P_IMMUTABLE', 'aedes-p2p-messaging is immutable: reload refused')
    let next: PluginConfig
    if (source === undefined || typeof source === 'string') {
      const path = source ?? this.#configFile
      if (path === undefined) {
        throw new ConfigError('reload() needs a config object or file: register() was given no configFile, and its inline options stay as given', 'configFile')
      }
      next = pluginConfig(this.#inline, await loadPluginFile(path))
    } else {
      rejectUnknownKeys(source, PLUGIN_KEYS, 'reload')
      next = pluginConfig(source, this.#config)
    }
    // synchronous from here, so a PUBLISH sees either the old config or the new one
    this.#router.parser = this.#parser = new TopicParser(next.mode, next.keyword)
    this.#authorization.rules = next.rules
    this.#config = next
    this.#log.info({ config: next }, 'P2P config reloaded')
    return next
  }

  async endSessions (refuse: (username: string, clientId: string) => boolean): Promise<number> {
    return this.#owners.endSessions(refuse)
  }

  async send (target: string, topic: string, payload: Buffer | string, options?: SendOptions): Promise<SendResult> {
    if (!this.#router.running) throw new P2PError('ERR_P2P_STOPPED', 'aedes-p2p-messaging is stopped: P2P topics are ordinary topics until it is started')
    const router = this.#router
    return sendP2P(this.#broker, this.#parser, (packet, client, done) => { router.publish(packet, client, done) }, target, topic, payload, options)
  }

  start (): void {
    this.#router.running = true
  }

  stop (): void {
    if (this.immutable) throw new P2PError('ERR_P2P_IMMUTABLE', 'aedes-p2p-messaging is immutable: stop refused')
    this.#router.running = false
  }
}

/**
 * Installs P2P messaging into an Aedes broker, composing with the hooks it
 * already has. Rejects with ERR_P2P_ALREADY_REGISTERED if the broker has it,
 * ERR_P2P_NOT_AEDES or ERR_P2P_AEDES_VERSION for a broker it cannot serve,
 * and ERR_P2P_CONFIG for a bad option.
 */
export async function register (aedes: Aedes, options: P2POptions = {}): Promise<P2PHandle> {
  const broker = checkHost(aedes)
  const marked = broker as unknown as Record<symbol, unknown>
  const refuseTwice = (): void => {
    if (marked[REGISTERED] !== undefined) throw new P2PError('ERR_P2P_ALREADY_REGISTERED', 'aedes-p2p-messaging is already registered on this broker')
  }
  refuseTwice()
  const given: unknown = options
  if (!isTable(given)) throw new ConfigError('register() options must be an object', 'options')
  rejectUnknownKeys(given, OPTION_KEYS, 'register() options')
  const { configFile, authorize, users, cluster, logger, limits, ...inline } = options
  if (authorize !== undefined && typeof authorize !== 'function') throw new ConfigError('authorize must be a function', 'authorize')
  if (users !== undefined && typeof users?.usernameOf !== 'function') throw new ConfigError('users must have usernameOf(client)', 'users')
  const strategy = cluster ?? standalone()
  const checkedLimits = pluginLimits(limits)
  if (typeof strategy.attach !== 'function' || typeof strategy.elsewhere !== 'function') {
    throw new ConfigError('cluster must be a strategy such as standalone() or emitterCluster()', 'cluster')
  }
  const base = configFile === undefined ? undefined : await loadPluginFile(configFile)
  const config = pluginConfig(inline, base)
  // checked again after the await: two concurrent register() calls must not both install
  refuseTwice()
  const plugin = new P2PPlugin(broker, config, checkedLimits, options, strategy, logger ?? defaultLogger())
  marked[REGISTERED] = plugin
  return plugin
}
