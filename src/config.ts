/**
 * The plugin's own configuration (SPEC §4). A TOML file holding only rmqtt's
 * `mode = "..."` is complete; every other key has a default.
 */
import { readFile } from 'node:fs/promises'
import { parse as parseToml } from 'smol-toml'
import { ruleConfigs, type RuleConfig } from './rules.js'
import { isMode, type Mode } from './topic.js'
import { ConfigError, rejectUnknownKeys, type Table } from './validate.js'

export { ConfigError, isTable, rejectUnknownKeys, type Table } from './validate.js'

export const INVALID_MODE = "Invalid mode, only 'prefix', 'suffix', or 'both' are supported."

export interface PluginConfig {
  mode: Mode
  /** the topic level that marks a P2P topic */
  keyword: string
  /** who may message whom; first match wins, no match allows */
  rules: RuleConfig[]
}

export const PLUGIN_DEFAULTS: Readonly<PluginConfig> = Object.freeze({ mode: 'prefix', keyword: 'p2p', rules: [] })
export const PLUGIN_KEYS: readonly string[] = ['mode', 'keyword', 'rules']

/** Checks the plugin's keys of `input`; keys it does not own are left to the caller. */
export function pluginConfig (input: Table, base: Readonly<PluginConfig> = PLUGIN_DEFAULTS): PluginConfig {
  const config: PluginConfig = { ...base }
  if (input.mode !== undefined) {
    if (!isMode(input.mode)) throw new ConfigError(INVALID_MODE)
    config.mode = input.mode
  }
  if (input.keyword !== undefined) {
    const keyword = input.keyword
    if (typeof keyword !== 'string' || keyword.length === 0 || /[/+#]/.test(keyword) || keyword.startsWith('$')) {
      throw new ConfigError(`keyword must be one non-empty topic level without '/', '+', '#' or a leading '$' (got ${JSON.stringify(keyword)})`)
    }
    config.keyword = keyword
  }
  if (input.rules !== undefined) config.rules = ruleConfigs(input.rules)
  return config
}

/** Reads a TOML file into a table; syntax errors name the file and the line. */
export async function readTomlFile (path: string): Promise<Table> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`)
  }
  try {
    return parseToml(text) as Table
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`)
  }
}

/** A plugin-only config file, such as rmqtt's rmqtt-p2p-messaging.toml. */
export async function loadPluginFile (path: string): Promise<PluginConfig> {
  const table = await readTomlFile(path)
  rejectUnknownKeys(table, PLUGIN_KEYS, path)
  return withSource(path, () => pluginConfig(table))
}

export function withSource<T> (source: string, read: () => T): T {
  try {
    return read()
  } catch (err) {
    if (err instanceof ConfigError && !err.message.startsWith(source)) {
      throw new ConfigError(`${source}: ${err.message}`)
    }
    throw err
  }
}
