/**
 * A running broker built from Settings: Aedes with the plugin, its MQTT
 * listeners, password auth, metrics and the admin API, and reload.
 */
import { Aedes } from 'aedes'
import type { Logger as PinoLogger } from 'pino'
import type { Registry } from 'prom-client'
import { redisNode } from '../cluster/redis.js'
import { ConfigError } from '../plugin/errors.js'
import { destroyPersistence, onBrokerError } from '../plugin/host.js'
import { register, type P2PHandle } from '../plugin/register.js'
import { createAdminServer } from './admin.js'
import { bind, createListeners, readTls, unbind, type Listener } from './listeners.js'
import { createMetrics } from './metrics.js'
import type { Settings } from './settings.js'
import { Users } from './users.js'
import { isLoopback } from './values.js'

export interface RunningBroker {
  broker: Aedes
  plugin: P2PHandle
  metrics: Registry
  /** where each listener ended up, e.g. { mqtt: { host, port } } */
  addresses: Record<string, { host: string, port: number }>
  /** re-reads the settings and applies what can change while running */
  reload (): Promise<Settings['plugin']>
  close (): Promise<void>
}

export interface ServerOptions {
  settings: Settings
  log: PinoLogger
  /** where reload() gets new settings from; without it, reload refuses */
  loadSettings?: () => Promise<Settings>
}

export async function startServer ({ settings, log, loadSettings }: ServerOptions): Promise<RunningBroker> {
  const tls = await readTls(settings.listeners)
  const users = new Users(settings.users)
  const redis = settings.cluster.redis
  const node = redis === undefined ? undefined : redisNode(redis, log.child({ module: 'cluster' }))
  const shared = node === undefined ? {} : { mq: node.mq, persistence: node.persistence }
  const broker = await Aedes.createBroker({ ...shared, authenticate: users.authenticate })
  const plugin = await register(broker, { ...settings.plugin, cluster: node?.cluster, logger: log.child({ module: 'p2p' }) })
  const metrics = createMetrics(broker, plugin)
  observeClients(broker, log)
  let current = settings
  const startedAt = Date.now()

  const reload = async (): Promise<Settings['plugin']> => {
    if (loadSettings === undefined) throw new ConfigError('this broker was started without a config file to reload (--config)', 'config')
    let next: Settings
    try {
      next = await loadSettings()
      await plugin.reload(next.plugin)
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload refused; the running config stays in force')
      throw err
    }
    users.replace(next.users)
    log.level = next.log.level
    for (const part of ['listeners', 'admin', 'cluster'] as const) {
      if (JSON.stringify(next[part]) !== JSON.stringify(current[part])) {
        log.warn({ section: part }, `[${part}] changed: it takes effect after a restart`)
      }
    }
    current = { ...next, listeners: current.listeners, admin: current.admin, cluster: current.cluster }
    log.info({ mode: next.plugin.mode, rules: next.plugin.rules.length, users: next.users.length }, 'config reloaded')
    return plugin.config
  }

  const listeners: Listener[] = []
  try {
    listeners.push(...createListeners(broker, settings.listeners, tls))
    if (settings.admin.port !== undefined) {
      const admin = createAdminServer({
        metrics,
        config: () => plugin.config,
        reload,
        health: () => ({ uptime_seconds: Math.round((Date.now() - startedAt) / 1000), clients: broker.connectedClients, p2p: plugin.running }),
        token: () => current.admin.token
      })
      listeners.push({ name: 'admin', server: admin, host: settings.admin.host, port: settings.admin.port })
    }
    for (const listener of listeners) await bind(listener)
  } catch (err) {
    await shutdown(broker, listeners)
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

  let closing: Promise<void> | undefined
  return {
    broker,
    plugin,
    metrics,
    addresses,
    reload,
    close: async () => {
      closing ??= shutdown(broker, listeners)
      await closing
    }
  }
}

// Stop accepting, let Aedes close its clients and emitter, then flush and
// close the persistence, which Aedes's close() does not touch.
async function shutdown (broker: Aedes, listeners: Listener[]): Promise<void> {
  const unbound = Promise.all(listeners.map(unbind))
  await new Promise<void>((resolve) => { broker.close(() => { resolve() }) })
  await unbound
  await destroyPersistence(broker)
}

function observeClients (broker: Aedes, log: PinoLogger): void {
  broker.on('client', (client) => { log.debug({ clientId: client.id }, 'client connected') })
  broker.on('clientDisconnect', (client) => { log.debug({ clientId: client.id }, 'client disconnected') })
  broker.on('clientError', (client, err) => { log.debug({ clientId: client.id, err: err.message }, 'client error') })
  onBrokerError(broker, (err) => { log.error({ err: err.message }, 'broker error') })
}
