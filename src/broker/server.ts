/**
 * A running broker built from Settings: Aedes with the plugin, its MQTT
 * listeners, password auth, metrics and the admin API, and reload.
 */
import { Aedes, type AedesOptions } from 'aedes'
import type { Logger as PinoLogger } from 'pino'
import type { Registry } from 'prom-client'
import { redisNode, type RedisNode } from '../cluster/redis.js'
import { redactedUrl } from '../cluster/redis-target.js'
import { ConfigError, P2PError } from '../plugin/errors.js'
import { connectedClients, onBrokerError } from '../plugin/host.js'
import { destroyPersistence } from '../plugin/host-store.js'
import { LIMIT_KEYS, LimitHits, type PluginLimits } from '../plugin/limits.js'
import { register, type P2PHandle } from '../plugin/register.js'
import { within } from '../plugin/within.js'
import { registerAclMetric, TopicAcl } from './acl.js'
import { createAdmin } from './admin/api.js'
import { readAdminToken } from './admin/token.js'
import { guardAdmission } from './admission.js'
import { Connections } from './connections.js'
import { openDataDir, type DataDir } from './data-dir.js'
import { bind, createListeners, readTls, unbind, type Listener } from './listeners.js'
import { createMetrics } from './metrics.js'
import type { Settings } from './settings.js'
import { Users } from './users.js'
import { isLoopback } from './values.js'

// How long a shutdown may wait for Redis or clients: the process is gone
// within 10 s (the CLI allows one more second for a stray handle).
const SHUTDOWN_MS = 8000

export interface RunningBroker {
  broker: Aedes
  plugin: P2PHandle
  metrics: Registry
  /** where each listener ended up, e.g. { mqtt: { host, port } } */
  addresses: Record<string, { host: string, port: number }>
  /** re-reads the settings and applies what can change while running */
  reload (): Promise<Settings['plugin']>
  /**
   * Stops within SHUTDOWN_MS (10 s), whatever is unreachable; resolves with
   * false when it had to give up on something (logged, with what).
   */
  close (): Promise<boolean>
}

export interface ServerOptions {
  settings: Settings
  log: PinoLogger
  /** where reload() gets new settings from; without it, reload refuses */
  loadSettings?: () => Promise<Settings>
}

export async function startServer ({ settings, log, loadSettings }: ServerOptions): Promise<RunningBroker> {
  const tls = await readTls(settings.listeners)
  let adminToken = await readAdminToken(settings.admin)
  const { limits, cluster } = settings
  const hits = new LimitHits(log.child({ module: 'limits' }))
  const users = new Users(settings.users, settings.auth.client_ids, { max_auth_pending: limits.max_auth_pending, hits })
  const node = cluster.redis === undefined
    ? undefined
    : redisNode(cluster.redis, log.child({ module: 'cluster' }), { max_buffered_messages: cluster.max_buffered_messages, max_buffered_bytes: cluster.max_buffered_bytes })
  if (node !== undefined) await waitForRedis(node, cluster, log)
  const disk = settings.persistence.path === undefined ? undefined : await openDataDir(settings.persistence.path)
  const acl = new TopicAcl(settings.acl, (client) => users.usernameOf(client), log.child({ module: 'acl' }))
  // the host's hooks, which the plugin wraps: the ACL sees P2P topics as published
  const broker = await createAedes(settings.broker.mqtt5, { ...storeOptions(node, disk), authenticate: users.authenticate, authorizePublish: acl.authorizePublish, authorizeSubscribe: acl.authorizeSubscribe })
  // with no [[users]] nobody owns a client id: a username nobody checked proves nothing
  const plugin = await register(broker, { ...settings.plugin, users, cluster: node?.cluster, limits: pluginLimits(limits), logger: log.child({ module: 'p2p' }) })
  // last, so that its checks come before the password's and the plugin's
  guardAdmission(broker, { available: node?.available, hits, log })
  const connections = new Connections(broker, limits, hits, log.child({ module: 'connections' }))
  const metrics = createMetrics(broker, plugin, { hits, connections })
  registerAclMetric(metrics, acl)
  observeClients(broker, log)
  // a client whose check passed just before a reload is registered just after it
  broker.on('client', (client) => {
    if (!users.stillAllowed(client)) {
      log.info({ clientId: client.id }, 'disconnected: the reloaded config no longer lets this client in')
      client.close()
    }
  })
  if (disk !== undefined) log.info({ path: settings.persistence.path, brokerId: disk.id }, 'sessions, queues and retained messages are kept on disk')
  let current = settings
  let stopping = false

  const reload = async (): Promise<Settings['plugin']> => {
    if (loadSettings === undefined) throw new ConfigError('this broker was started without a config file to reload (--config)', 'config')
    let next: Settings
    let token: string | undefined
    try {
      next = await loadSettings()
      // [admin] itself takes a restart, but its token file is read again
      token = await readAdminToken(current.admin)
      await plugin.reload(next.plugin)
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload refused; the running config stays in force')
      throw err
    }
    adminToken = token
    users.replace(next.users, next.auth.client_ids)
    acl.replace(next.acl)
    disconnectRefused(broker, users, log)
    if (users.enabled() && identitiesChanged(current, next)) {
      // what a removed user held goes, rather than to whoever takes the id next
      await plugin.endSessions((username, clientId) => !users.mayUse(username, clientId)).catch((err: unknown) => {
        log.error({ err }, 'the sessions of removed users could not all be ended')
      })
    }
    log.level = next.log.level
    if (next.log.format !== current.log.format) log.warn({ setting: 'log.format' }, '[log] format changed: it takes effect after a restart')
    const fixed = ['broker', 'listeners', 'admin', 'limits', 'persistence', 'cluster'] as const
    for (const part of fixed) {
      if (JSON.stringify(next[part]) !== JSON.stringify(current[part])) {
        log.warn({ section: part }, `[${part}] changed: it takes effect after a restart`)
      }
    }
    current = { ...next, broker: current.broker, listeners: current.listeners, admin: current.admin, limits: current.limits, persistence: current.persistence, cluster: current.cluster, log: { ...next.log, format: current.log.format } }
    log.info({ mode: next.plugin.mode, rules: next.plugin.rules.length, users: next.users.length, acl: next.acl.length }, 'config reloaded')
    return plugin.config
  }

  const listeners: Listener[] = []
  const stop = async (): Promise<boolean> => {
    stopping = true
    return shutdown(broker, listeners, connections, node, log)
  }
  try {
    listeners.push(...createListeners(connections.handle, settings.listeners, tls, limits.max_packet_size, {
      oversized: () => { hits.hit('max_packet_size', { transport: 'ws', max: limits.max_packet_size }) },
      originRefused: (origin, req) => { hits.hit('ws_origins', { origin, address: req.socket.remoteAddress ?? null }) }
    }))
    if (settings.admin.port !== undefined) {
      const admin = await createAdmin({
        broker,
        plugin,
        metrics,
        reload,
        redis: () => node === undefined ? undefined : node.available() ? 'up' : 'down',
        closing: () => stopping,
        mqtt5: settings.broker.mqtt5,
        log: log.child({ module: 'admin' }),
        usernameOf: (client) => users.usernameOf(client),
        token: () => adminToken,
        hosts: () => current.admin.hosts,
        hostRefused: (host, req) => { hits.hit('admin_hosts', { host, address: req.socket.remoteAddress ?? null }) },
        // a P2P message from the console: its payload base64-encoded, and room for the rest
        bodyLimit: Math.ceil(limits.max_packet_size * 4 / 3) + 64 * 1024
      })
      listeners.push({ name: 'admin', server: admin, host: settings.admin.host, port: settings.admin.port })
    }
    for (const listener of listeners) await bind(listener)
  } catch (err) {
    await stop()
    throw err
  }

  const addresses: RunningBroker['addresses'] = {}
  for (const { name, host, port } of listeners) {
    addresses[name] = { host, port }
    log.info({ listener: name, host, port }, `listening for ${name} on ${host}:${port}`)
  }
  if (users.size === 0 && !isLoopback(settings.listeners.host)) {
    log.warn({ host: settings.listeners.host }, 'no [[users]] configured: anyone who can reach this address may connect')
  }

  let closing: Promise<boolean> | undefined
  return {
    broker,
    plugin,
    metrics,
    addresses,
    reload,
    close: async () => {
      closing ??= stop()
      return closing
    }
  }
}

/**
 * Nothing listens before Redis answers: a node that cannot reach it serves
 * nobody well. Past `startup_timeout` it gives up with a message that says
 * where it looked (exit 1), rather than waiting unseen.
 */
async function waitForRedis (node: RedisNode, cluster: Settings['cluster'], log: PinoLogger): Promise<void> {
  const where = redactedUrl(cluster.redis as string)
  log.info({ redis: where, waitSeconds: cluster.startup_timeout }, 'connecting to Redis')
  const { up, lastError } = await node.connected(cluster.startup_timeout * 1000)
  if (up) return
  node.disconnect()
  const why = lastError === undefined ? '' : ` (last error: ${lastError})`
  throw new P2PError('ERR_P2P_REDIS_UNREACHABLE', `Redis at ${where} did not answer within ${cluster.startup_timeout} s${why}: is it running, and is --redis right? ([cluster] startup_timeout sets the wait)`)
}

function storeOptions (node: RedisNode | undefined, disk: DataDir | undefined): object {
  if (node !== undefined) return { mq: node.mq, persistence: node.persistence }
  if (disk !== undefined) return { id: disk.id, persistence: disk.persistence }
  return {}
}

function pluginLimits (limits: Settings['limits']): PluginLimits {
  return Object.fromEntries(LIMIT_KEYS.map((key) => [key, limits[key]])) as unknown as PluginLimits
}

/**
 * Aedes 1.2, or with `mqtt5` Aedes 2 (2.0.0-beta.1, the package's `aedes2`
 * dependency), which speaks MQTT 5 as well. Aedes 2's typings differ from
 * 1.2's only in what this broker does not touch.
 */
async function createAedes (mqtt5: boolean, options: AedesOptions): Promise<Aedes> {
  if (!mqtt5) return await Aedes.createBroker(options)
  const { Aedes: Aedes2 } = await import('aedes2')
  return await Aedes2.createBroker(options as object) as unknown as Aedes
}

/**
 * Stops accepting, lets Aedes close its clients and emitter, ends the
 * connections that never logged in, then flushes and closes the
 * persistence, which Aedes's close() does not touch — within SHUTDOWN_MS.
 * Past it (Redis away: what waits for it never ends), it logs what was left,
 * drops the Redis connections and returns false.
 */
async function shutdown (broker: Aedes, listeners: Listener[], connections: Connections, node: RedisNode | undefined, log: PinoLogger): Promise<boolean> {
  // the admin listener goes last: its /ready answers 503 while the rest drains
  const admin = listeners.filter((l) => l.name === 'admin')
  const work = (async () => {
    try {
      const unbound = Promise.all(listeners.filter((l) => l.name !== 'admin').map(unbind))
      await new Promise<void>((resolve) => { broker.close(() => { resolve() }) })
      connections.closeAll()
      await unbound
      await destroyPersistence(broker)
    } finally {
      // whatever failed above, nothing is left listening
      await Promise.all(admin.map(unbind))
    }
  })()
  const finished = work.then(() => 'done' as const, (err: unknown) => {
    log.error({ err }, 'shutdown: the store did not close cleanly')
    return 'failed' as const
  })
  const outcome = await within(finished, SHUTDOWN_MS)
  if (outcome === 'done') return true
  if (outcome === 'failed') return false
  if (node !== undefined) {
    log.error({ unanswered: node.unanswered(), waitedMs: SHUTDOWN_MS }, 'shutdown gave up waiting: commands for Redis were not answered and are lost; their senders were not acknowledged')
    node.disconnect()
  } else {
    log.error({ connections: connections.open, waitedMs: SHUTDOWN_MS }, 'shutdown gave up waiting for the broker to close its clients and its store')
    connections.closeAll()
  }
  // settles now that its connections are gone; nothing more is waited for
  work.catch(() => {})
  await Promise.all(admin.map(unbind))
  return false
}

/** Whether a reload changed who may hold which client ids (not a password alone). */
function identitiesChanged (before: Settings, after: Settings): boolean {
  const ids = (s: Settings): string => JSON.stringify([s.users.map((u) => [u.username, u.client_ids]), s.auth.client_ids])
  return ids(before) !== ids(after)
}

/**
 * Ends the connections a reload took the right from: their user is gone,
 * or their client id is no longer theirs (docs/behaviour.md §8).
 */
function disconnectRefused (broker: Aedes, users: Users, log: PinoLogger): void {
  for (const client of connectedClients(broker)) {
    if (users.stillAllowed(client)) continue
    log.info({ clientId: client.id, username: users.usernameOf(client) ?? null }, 'disconnected: the reloaded config no longer lets this client in')
    client.close()
  }
}

function observeClients (broker: Aedes, log: PinoLogger): void {
  broker.on('client', (client) => { log.debug({ clientId: client.id }, 'client connected') })
  broker.on('clientDisconnect', (client) => { log.debug({ clientId: client.id }, 'client disconnected') })
  broker.on('clientError', (client, err) => { log.debug({ clientId: client.id, err: err.message }, 'client error') })
  onBrokerError(broker, (err) => { log.error({ err: err.message }, 'broker error') })
}
