/**
 * What register() takes (docs/behaviour.md §4): the reloadable config — a
 * TOML file holding only rmqtt's `mode = "..."` is complete — and the options
 * fixed for the plugin's lifetime.
 */
import type { Client } from 'aedes'
import type { Cluster } from '../cluster/strategy.js'
import type { AuthorizeP2P } from './authorization.js'
import { ConfigError } from './errors.js'
import type { PluginLimits } from './limits.js'
import type { Logger } from './log.js'
import { ruleConfigs, type RuleConfig } from './rules.js'
import { readTomlFile, rejectUnknownKeys, withSource, type Table } from './table.js'
import { isMode, type Mode } from './topic.js'

export const INVALID_MODE = "Invalid mode, only 'prefix', 'suffix', or 'both' are supported."

/** The part of the options that reload() can change while the broker runs. */
export interface PluginConfig {
  /**
   * Which topic forms are P2P: `p2p/{clientid}/{topic}` (prefix),
   * `{topic}/p2p/{clientid}` (suffix), or either (both, prefix tried first).
   * @default 'prefix'
   */
  mode: Mode
  /**
   * The topic level that marks a P2P topic.
   * @default 'p2p'
   * @example 'direct' // direct/bob/chat
   */
  keyword: string
  /**
   * Who may message whom; the first rule that matches decides, no match allows.
   * @default []
   * @example [{ action: 'allow', target: '${username}-*' }, { action: 'deny' }]
   */
  rules: RuleConfig[]
}

export interface P2POptions extends Partial<PluginConfig> {
  /**
   * A plugin-only TOML file (rmqtt's `rmqtt-p2p-messaging.toml` works as it
   * is); keys given inline override it, and reload() with no argument
   * re-reads it, the inline keys still overriding it.
   * @default undefined (defaults and inline keys only)
   */
  configFile?: string
  /**
   * Checks every P2P message after the rules; return false to drop it
   * (counted as refused). A synchronous answer keeps the hot path cheap.
   * @default undefined (rules only)
   * @example (m) => m.target.startsWith(m.senderId + '-')
   */
  authorize?: AuthorizeP2P
  /**
   * Who the clients are, when the host knows better than the CONNECT
   * packet: the user a client was let in as (undefined for none). A client
   * id belongs to that user (docs/behaviour.md §8). Pass it when your
   * `authenticate` does not check usernames (a token in the password, or
   * none), or ownership would rest on what clients claim.
   * @default the username each client connected with, once `authenticate` let it in
   */
  users?: UserDirectory
  /**
   * Refuse stop() and reload(), as rmqtt's immutable plugins do.
   * @default false
   */
  immutable?: boolean
  /**
   * false installs the plugin stopped: P2P topics are ordinary topics until start().
   * @default true
   */
  startup?: boolean
  /**
   * How messages reach targets on other nodes: `standalone()` for one
   * broker, `emitterCluster()` when nodes share their emitter and persistence
   * (mqemitter-redis and aedes-persistence-redis).
   * @default standalone()
   */
  cluster?: Cluster
  /**
   * What any one client can make the broker hold (docs/behaviour.md §7):
   * session queues, P2P and ordinary alike, and what waits for a slow
   * reader. Keys left out keep their defaults; every limit is on by default.
   * Fixed for the plugin's lifetime.
   * @default { max_queued_messages: 1000, max_queued_bytes: 64 MiB, max_pending_bytes: 1 MiB, message_expiry: 0, session_expiry: 0 }
   * @example { max_queued_messages: 100, message_expiry: 86400 }
   */
  limits?: Partial<PluginLimits>
  /**
   * Where the plugin logs; any pino logger fits.
   * @default pino({ name: 'aedes-p2p-messaging', level: 'warn' })
   */
  logger?: Logger
}

/** Who the clients are: the broker's `[[users]]` is one. */
export interface UserDirectory {
  /** The user a client was let in as; undefined for a client without one. Asked once `authenticate` has let it in. */
  usernameOf (client: Client): string | undefined
  /** Whether users are checked at all now; while they are not, no client id has an owner (their records are kept for when they are again). @default always */
  enabled? (): boolean
}

export const PLUGIN_DEFAULTS: Readonly<PluginConfig> = Object.freeze({ mode: 'prefix', keyword: 'p2p', rules: [] })
export const PLUGIN_KEYS: readonly string[] = ['mode', 'keyword', 'rules']
export const OPTION_KEYS: readonly string[] = [...PLUGIN_KEYS, 'configFile', 'authorize', 'users', 'immutable', 'startup', 'cluster', 'limits', 'logger']

/** Checks the plugin's keys of `input`; keys it does not own are left to the caller. */
export function pluginConfig (input: Table, base: Readonly<PluginConfig> = PLUGIN_DEFAULTS): PluginConfig {
  const config: PluginConfig = { ...base }
  if (input.mode !== undefined) {
    if (!isMode(input.mode)) throw new ConfigError(INVALID_MODE, 'mode')
    config.mode = input.mode
  }
  if (input.keyword !== undefined) {
    const keyword = input.keyword
    if (typeof keyword !== 'string' || keyword.length === 0 || /[/+#]/.test(keyword) || keyword.startsWith('$')) {
      throw new ConfigError(`keyword must be one non-empty topic level without '/', '+', '#' or a leading '$' (got ${JSON.stringify(keyword)})`, 'keyword')
    }
    config.keyword = keyword
  }
  if (input.rules !== undefined) config.rules = ruleConfigs(input.rules)
  return config
}

/** A plugin-only config file, such as rmqtt's rmqtt-p2p-messaging.toml. */
export async function loadPluginFile (path: string): Promise<PluginConfig> {
  const table = await readTomlFile(path)
  return withSource(path, () => {
    rejectUnknownKeys(table, PLUGIN_KEYS, path)
    return pluginConfig(table)
  })
}
