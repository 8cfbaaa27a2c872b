/**
 * The broker's settings: one TOML file (SPEC §4) with the plugin's keys at the
 * top level, beside rmqtt's `mode`, and the broker's own in tables. Command-line
 * flags override the file. Everything is checked before anything listens.
 */
import { isIP } from 'node:net'
import { pluginConfig, PLUGIN_KEYS, readTomlFile, withSource, type PluginConfig } from './config.js'
import { userConfigs, type UserConfig } from './users.js'
import { ConfigError, isTable, rejectUnknownKeys, type Table } from './validate.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Settings {
  plugin: PluginConfig
  listeners: {
    host: string
    /** MQTT over TCP; false turns the listener off */
    port: number | false
    ws_port?: number
    ws_path: string
    tls_port?: number
    tls_cert?: string
    tls_key?: string
  }
  users: UserConfig[]
  admin: { host: string, port?: number, token?: string }
  /** one node of a cluster sharing this Redis (SPEC §5); in-memory without it */
  cluster: { redis?: string }
  log: { level: LogLevel }
}

/** Flags as given on the command line; absent ones leave the file's value. */
export interface Overrides {
  host?: string
  port?: string
  mode?: string
  keyword?: string
  wsPort?: string
  tlsPort?: string
  tlsCert?: string
  tlsKey?: string
  adminHost?: string
  adminPort?: string
  adminToken?: string
  redis?: string
  logLevel?: string
}

const TABLES: Record<string, readonly string[]> = {
  listeners: ['host', 'port', 'ws_port', 'ws_path', 'tls_port', 'tls_cert', 'tls_key'],
  admin: ['host', 'port', 'token'],
  cluster: ['redis'],
  log: ['level']
}

export function defaultSettings (): Settings {
  return {
    plugin: pluginConfig({}),
    listeners: { host: '127.0.0.1', port: 1883, ws_path: '/mqtt' },
    users: [],
    admin: { host: '127.0.0.1' },
    cluster: {},
    log: { level: 'info' }
  }
}

export async function loadSettings (configFile: string | undefined, flags: Overrides): Promise<Settings> {
  const settings = defaultSettings()
  if (configFile !== undefined) {
    const table = await readTomlFile(configFile)
    withSource(configFile, () => { applyFile(settings, table) })
  }
  applyFlags(settings, flags)
  check(settings)
  return settings
}

function applyFile (settings: Settings, table: Table): void {
  rejectUnknownKeys(table, [...PLUGIN_KEYS, 'users', ...Object.keys(TABLES)], 'top level')
  const pluginKeys: Table = {}
  for (const key of PLUGIN_KEYS) pluginKeys[key] = table[key]
  settings.plugin = pluginConfig(pluginKeys)
  if (table.users !== undefined) settings.users = userConfigs(table.users)

  const l = section(table, 'listeners')
  const listeners = settings.listeners
  if (l.host !== undefined) listeners.host = host(l.host, 'listeners.host')
  if (l.port !== undefined) listeners.port = l.port === false ? false : port(l.port, 'listeners.port')
  if (l.ws_port !== undefined) listeners.ws_port = port(l.ws_port, 'listeners.ws_port')
  if (l.ws_path !== undefined) listeners.ws_path = wsPath(l.ws_path)
  if (l.tls_port !== undefined) listeners.tls_port = port(l.tls_port, 'listeners.tls_port')
  if (l.tls_cert !== undefined) listeners.tls_cert = text(l.tls_cert, 'listeners.tls_cert')
  if (l.tls_key !== undefined) listeners.tls_key = text(l.tls_key, 'listeners.tls_key')

  const a = section(table, 'admin')
  if (a.host !== undefined) settings.admin.host = host(a.host, 'admin.host')
  if (a.port !== undefined) settings.admin.port = port(a.port, 'admin.port')
  if (a.token !== undefined) settings.admin.token = text(a.token, 'admin.token')

  const c = section(table, 'cluster')
  if (c.redis !== undefined) settings.cluster.redis = redis(c.redis, 'cluster.redis')

  const log = section(table, 'log')
  if (log.level !== undefined) settings.log.level = logLevel(log.level, 'log.level')
}

function applyFlags (settings: Settings, flags: Overrides): void {
  if (flags.mode !== undefined || flags.keyword !== undefined) {
    settings.plugin = pluginConfig({ mode: flags.mode, keyword: flags.keyword }, settings.plugin)
  }
  const listeners = settings.listeners
  if (flags.host !== undefined) listeners.host = host(flags.host, '--host')
  if (flags.port !== undefined) listeners.port = port(flags.port, '--port')
  if (flags.wsPort !== undefined) listeners.ws_port = port(flags.wsPort, '--ws-port')
  if (flags.tlsPort !== undefined) listeners.tls_port = port(flags.tlsPort, '--tls-port')
  if (flags.tlsCert !== undefined) listeners.tls_cert = text(flags.tlsCert, '--tls-cert')
  if (flags.tlsKey !== undefined) listeners.tls_key = text(flags.tlsKey, '--tls-key')
  if (flags.adminHost !== undefined) settings.admin.host = host(flags.adminHost, '--admin-host')
  if (flags.adminPort !== undefined) settings.admin.port = port(flags.adminPort, '--admin-port')
  if (flags.adminToken !== undefined) settings.admin.token = text(flags.adminToken, '--admin-token')
  if (flags.redis !== undefined) settings.cluster.redis = redis(flags.redis, '--redis')
  if (flags.logLevel !== undefined) settings.log.level = logLevel(flags.logLevel, '--log-level')
}

function check (settings: Settings): void {
  const { listeners, admin } = settings
  if (listeners.tls_port !== undefined && (listeners.tls_cert === undefined || listeners.tls_key === undefined)) {
    throw new ConfigError('the TLS listener needs both listeners.tls_cert and listeners.tls_key (--tls-cert, --tls-key)')
  }
  if (listeners.port === false && listeners.ws_port === undefined && listeners.tls_port === undefined) {
    throw new ConfigError('no MQTT listener: enable at least one of listeners.port, ws_port or tls_port')
  }
  if (admin.port !== undefined && !isLoopback(admin.host) && admin.token === undefined) {
    throw new ConfigError(`the admin API on ${admin.host} is reachable from the network: set admin.token (or --admin-token / P2P_ADMIN_TOKEN)`)
  }
}

export function isLoopback (address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.')
}

function section (table: Table, name: string): Table {
  const value = table[name]
  if (value === undefined) return {}
  if (!isTable(value)) throw new ConfigError(`[${name}] must be a table`)
  rejectUnknownKeys(value, TABLES[name] ?? [], `[${name}]`)
  return value
}

export function port (value: unknown, where: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(`${where} must be a port number from 0 to 65535 (got ${JSON.stringify(value)})`)
  }
  return n
}

export function host (value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0 || (isIP(value) === 0 && !/^[A-Za-z0-9.-]+$/.test(value))) {
    throw new ConfigError(`${where} must be an IP address or host name (got ${JSON.stringify(value)})`)
  }
  return value
}

function text (value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(`${where} must be a non-empty string`)
  return value
}

function wsPath (value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/')) throw new ConfigError('listeners.ws_path must start with /')
  return value
}

function redis (value: unknown, where: string): string {
  let url: URL | undefined
  try {
    url = typeof value === 'string' ? new URL(value) : undefined
  } catch { /* reported below */ }
  if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) {
    throw new ConfigError(`${where} must be a redis:// or rediss:// URL (got ${JSON.stringify(value)})`)
  }
  return value as string
}

function logLevel (value: unknown, where: string): LogLevel {
  if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new ConfigError(`${where} must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(value)})`)
  }
  return value as LogLevel
}
