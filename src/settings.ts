/**
 * The broker's settings: one TOML file (SPEC §4) with the plugin's keys at the
 * top level, beside rmqtt's `mode`, and the broker's own in tables. Command-line
 * flags override the file. Everything is checked before anything listens.
 */
import { isIP } from 'node:net'
import { ConfigError, isTable, pluginConfig, PLUGIN_KEYS, readTomlFile, rejectUnknownKeys, withSource, type PluginConfig, type Table } from './config.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Settings {
  plugin: PluginConfig
  listeners: { host: string, port: number }
  log: { level: LogLevel }
}

/** Flags as given on the command line; absent ones leave the file's value. */
export interface Overrides {
  host?: string
  port?: string
  mode?: string
  keyword?: string
  logLevel?: string
}

const TABLES: Record<string, readonly string[]> = {
  listeners: ['host', 'port'],
  log: ['level']
}

export function defaultSettings (): Settings {
  return {
    plugin: pluginConfig({}),
    listeners: { host: '127.0.0.1', port: 1883 },
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
  return settings
}

function applyFile (settings: Settings, table: Table): void {
  rejectUnknownKeys(table, [...PLUGIN_KEYS, ...Object.keys(TABLES)], 'top level')
  const pluginKeys: Table = {}
  for (const key of PLUGIN_KEYS) pluginKeys[key] = table[key]
  settings.plugin = pluginConfig(pluginKeys)

  const listeners = section(table, 'listeners')
  if (listeners.host !== undefined) settings.listeners.host = host(listeners.host, 'listeners.host')
  if (listeners.port !== undefined) settings.listeners.port = port(listeners.port, 'listeners.port')

  const log = section(table, 'log')
  if (log.level !== undefined) settings.log.level = logLevel(log.level, 'log.level')
}

function applyFlags (settings: Settings, flags: Overrides): void {
  if (flags.mode !== undefined || flags.keyword !== undefined) {
    settings.plugin = pluginConfig({ mode: flags.mode, keyword: flags.keyword }, settings.plugin)
  }
  if (flags.host !== undefined) settings.listeners.host = host(flags.host, '--host')
  if (flags.port !== undefined) settings.listeners.port = port(flags.port, '--port')
  if (flags.logLevel !== undefined) settings.log.level = logLevel(flags.logLevel, '--log-level')
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

function logLevel (value: unknown, where: string): LogLevel {
  if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new ConfigError(`${where} must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(value)})`)
  }
  return value as LogLevel
}
