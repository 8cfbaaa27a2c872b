/**
 * The broker's settings: one TOML file (docs/behaviour.md §4) with the
 * plugin's keys at the top level, beside rmqtt's `mode`, and the broker's own
 * in tables. Flags override the file. Everything is checked before anything
 * listens. One schema below names every table key and its check; the file,
 * the flags and the usage text all go through it.
 */
import { CLUSTER_LIMIT_DEFAULTS } from '../cluster/strategy.js'
import { ConfigError } from '../plugin/errors.js'
import { LIMIT_DEFAULTS, type PluginLimits } from '../plugin/limits.js'
import { pluginConfig, PLUGIN_KEYS, type PluginConfig } from '../plugin/options.js'
import { isTable, readTomlFile, rejectUnknownKeys, withSource, type Table } from '../plugin/table.js'
import { aclEntries, type AclEntry } from './acl.js'
import { clientIdPatterns, userConfigs, type UserConfig } from './users.js'
import { bytes, count, host, hostNames, isLoopback, logFormat, logLevel, onOff, origins, packetSize, port, portOrOff, redisUrl, seconds, text, waitSeconds, wsPath, type Check, type LogFormat, type LogLevel } from './values.js'

export interface Settings {
  plugin: PluginConfig
  broker: {
    /** run on Aedes 2 (experimental), which speaks MQTT 5 besides 3.1.1 and 3.1 */
    mqtt5: boolean
  }
  listeners: {
    /** address every MQTT listener binds */
    host: string
    /** MQTT over TCP; false turns the listener off */
    port: number | false
    ws_port?: number
    ws_path: string
    tls_port?: number
    tls_cert?: string
    tls_key?: string
    /** the `Origin`s a browser may open the WebSocket listener from; `["*"]` allows all, and a request without one (not a browser) is let in */
    ws_origins: string[]
  }
  users: UserConfig[]
  /** who may use which client ids (docs/behaviour.md §8) */
  auth: {
    /** the client id patterns of users that list none of their own; without it, ids no user's patterns match are open to all */
    client_ids?: string[]
  }
  /** the topic ACL for ordinary topics (docs/behaviour.md §8); empty: no ACL */
  acl: AclEntry[]
  admin: {
    host: string
    port?: number
    token?: string
    /** a file holding the token, so that it is not in the process list */
    token_file?: string
    /** Host header values the admin API answers besides its own address (DNS rebinding) */
    hosts: string[]
  }
  /** what any one client can make the broker hold (docs/behaviour.md §7); every limit is on by default */
  limits: Limits
  /** sessions, queues and retained messages on disk in `path`; in memory without it */
  persistence: { path?: string }
  /** one node of a cluster sharing this Redis (docs/behaviour.md §5); in-memory without it */
  cluster: {
    redis?: string
    /** P2P messages a node holds while they wait for Redis */
    max_buffered_messages: number
    /** and their payload bytes */
    max_buffered_bytes: number
    /** seconds a node waits for Redis at start before it gives up (exit 1); nothing listens meanwhile */
    startup_timeout: number
  }
  log: {
    level: LogLevel
    /** takes a restart: the logger is made once, before anything listens */
    format: LogFormat
  }
}

/** The plugin's limits, and those the broker keeps on connections. */
export interface Limits extends PluginLimits {
  /** bytes in one MQTT packet, fixed header included; a larger one closes its connection */
  max_packet_size: number
  /** open connections; past it a new one gets CONNACK 3 (server unavailable) */
  max_connections: number
  /** password checks running or waiting at once; past it CONNACK 3 at once */
  max_auth_pending: number
}

export const BROKER_LIMIT_DEFAULTS = Object.freeze({ max_packet_size: 1024 * 1024, max_connections: 100_000, max_auth_pending: 64 })

type Tables = Pick<Settings, 'broker' | 'listeners' | 'auth' | 'admin' | 'limits' | 'persistence' | 'cluster' | 'log'>
type Schema = { [S in keyof Tables]: { [K in keyof Required<Tables[S]>]: Check<Required<Tables[S]>[K]> } }

const SCHEMA: Schema = {
  broker: { mqtt5: onOff },
  listeners: { host, port: portOrOff, ws_port: port, ws_path: wsPath, tls_port: port, tls_cert: text, tls_key: text, ws_origins: origins },
  auth: { client_ids: clientIdPatterns },
  admin: { host, port, token: text, token_file: text, hosts: hostNames },
  limits: {
    max_packet_size: packetSize,
    max_connections: count,
    max_queued_messages: count,
    max_queued_bytes: bytes,
    max_queued_bytes_total: bytes,
    max_pending_bytes: bytes,
    message_expiry: seconds,
    session_expiry: seconds,
    max_auth_pending: count
  },
  persistence: { path: text },
  cluster: { redis: redisUrl, max_buffered_messages: count, max_buffered_bytes: bytes, startup_timeout: waitSeconds },
  log: { level: logLevel, format: logFormat }
}
const TABLE_NAMES = Object.keys(SCHEMA) as Array<keyof Tables>

/** A setting by its path in the config file: `mode`, `listeners.port`. */
export type SettingKey = 'mode' | 'keyword' | { [S in keyof Tables]: `${S}.${keyof Tables[S] & string}` }[keyof Tables]

/** A value given outside the file, e.g. by a flag; `where` is how the user wrote it (`--port`). */
export interface Override {
  key: SettingKey
  value: string
  where: string
}

export function defaultSettings (): Settings {
  return {
    plugin: pluginConfig({}),
    broker: { mqtt5: false },
    listeners: { host: '127.0.0.1', port: 1883, ws_path: '/mqtt', ws_origins: [] },
    users: [],
    auth: {},
    acl: [],
    admin: { host: '127.0.0.1', hosts: [] },
    limits: { ...LIMIT_DEFAULTS, ...BROKER_LIMIT_DEFAULTS },
    persistence: {},
    cluster: { ...CLUSTER_LIMIT_DEFAULTS, startup_timeout: 30 },
    log: { level: 'info', format: 'json' }
  }
}

export async function loadSettings (configFile: string | undefined, overrides: readonly Override[] = []): Promise<Settings> {
  const settings = defaultSettings()
  if (configFile !== undefined) {
    const table = await readTomlFile(configFile)
    withSource(configFile, () => { applyFile(settings, table) })
  }
  for (const { key, value, where } of overrides) set(settings, key, value, where)
  check(settings)
  return settings
}

/** The value a setting has in `settings`; undefined for one that is off. */
export function settingValue (settings: Settings, key: SettingKey): unknown {
  const dot = key.indexOf('.')
  if (dot === -1) return settings.plugin[key as 'mode' | 'keyword']
  return (settings[key.slice(0, dot) as keyof Tables] as Table)[key.slice(dot + 1)]
}

function applyFile (settings: Settings, table: Table): void {
  rejectUnknownKeys(table, [...PLUGIN_KEYS, 'users', 'acl', ...TABLE_NAMES], 'top level')
  const pluginKeys: Table = {}
  for (const key of PLUGIN_KEYS) pluginKeys[key] = table[key]
  settings.plugin = pluginConfig(pluginKeys)
  if (table.users !== undefined) settings.users = userConfigs(table.users)
  if (table.acl !== undefined) settings.acl = aclEntries(table.acl)
  for (const name of TABLE_NAMES) {
    const section = table[name]
    if (section === undefined) continue
    if (!isTable(section)) throw new ConfigError(`[${name}] must be a table`, name)
    rejectUnknownKeys(section, Object.keys(SCHEMA[name]), `[${name}]`, name)
    for (const [key, value] of Object.entries(section)) {
      const path = `${name}.${key}` as SettingKey
      set(settings, path, value, path)
    }
  }
}

function set (settings: Settings, key: SettingKey, value: unknown, where: string): void {
  const dot = key.indexOf('.')
  if (dot === -1) {
    settings.plugin = pluginConfig({ [key]: value }, settings.plugin)
    return
  }
  const section = key.slice(0, dot) as keyof Tables
  const name = key.slice(dot + 1)
  const checkValue = (SCHEMA[section] as Record<string, Check<unknown>>)[name]
  if (checkValue === undefined) throw new ConfigError(`${where}: no such setting`, key)
  ;(settings[section] as Table)[name] = checkValue(value, where, key)
}

function check (settings: Settings): void {
  const { listeners, admin, persistence, cluster } = settings
  if (persistence.path !== undefined && cluster.redis !== undefined) {
    throw new ConfigError('persistence.path (--data-dir) and cluster.redis (--redis) cannot be combined: with Redis, the cluster keeps its sessions in Redis', 'persistence.path')
  }
  if (listeners.tls_port !== undefined && (listeners.tls_cert === undefined || listeners.tls_key === undefined)) {
    throw new ConfigError('the TLS listener needs both listeners.tls_cert and listeners.tls_key (--tls-cert, --tls-key)', listeners.tls_cert === undefined ? 'listeners.tls_cert' : 'listeners.tls_key')
  }
  if (listeners.port === false && listeners.ws_port === undefined && listeners.tls_port === undefined) {
    throw new ConfigError('no MQTT listener: enable at least one of listeners.port, ws_port or tls_port', 'listeners.port')
  }
  if (admin.token !== undefined && admin.token_file !== undefined) {
    throw new ConfigError('admin.token (--admin-token, P2P_ADMIN_TOKEN) and admin.token_file (--admin-token-file) cannot both be given', 'admin.token_file')
  }
  if (admin.port !== undefined && !isLoopback(admin.host) && admin.token === undefined && admin.token_file === undefined) {
    throw new ConfigError(`the admin API on ${admin.host} is reachable from the network: set admin.token_file (--admin-token-file) or admin.token (P2P_ADMIN_TOKEN, --admin-token)`, 'admin.token')
  }
}
