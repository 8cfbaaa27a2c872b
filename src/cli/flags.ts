/**
 * The command line's one table: each flag's parseArgs option, its line in
 * the usage text and the setting it overrides all come from its row here.
 */
import type { ParseArgsConfig } from 'node:util'
import { defaultSettings, settingValue, type Override, type SettingKey } from '../broker/settings.js'

export interface Flag {
  /** the long name, without `--` */
  readonly name: string
  /** the value's placeholder in the usage text; a flag without one is a switch */
  readonly arg?: string
  readonly short?: string
  readonly help: string
  /** the setting a value overrides */
  readonly setting?: SettingKey
  /** read when the flag is not given */
  readonly env?: string
  /** what the usage text calls the default when the setting has none */
  readonly unset?: string
}

export const FLAGS: readonly Flag[] = [
  { name: 'host', arg: 'HOST', setting: 'listeners.host', help: 'address the MQTT listeners bind' },
  { name: 'port', arg: 'PORT', setting: 'listeners.port', help: 'MQTT over TCP; 0 picks a free port' },
  { name: 'ws-port', arg: 'PORT', setting: 'listeners.ws_port', unset: 'off', help: 'MQTT over WebSocket, path /mqtt' },
  { name: 'tls-port', arg: 'PORT', setting: 'listeners.tls_port', unset: 'off', help: 'MQTT over TLS; needs --tls-cert, --tls-key' },
  { name: 'tls-cert', arg: 'FILE', setting: 'listeners.tls_cert', help: 'PEM certificate chain' },
  { name: 'tls-key', arg: 'FILE', setting: 'listeners.tls_key', help: 'PEM private key' },
  { name: 'mode', arg: 'MODE', setting: 'mode', help: 'prefix, suffix or both' },
  { name: 'keyword', arg: 'WORD', setting: 'keyword', help: 'the topic level that marks P2P topics' },
  { name: 'admin-port', arg: 'PORT', setting: 'admin.port', unset: 'off', help: 'admin HTTP API and /metrics' },
  { name: 'admin-host', arg: 'HOST', setting: 'admin.host', help: 'admin API address' },
  { name: 'admin-token', arg: 'TOKEN', setting: 'admin.token', env: 'P2P_ADMIN_TOKEN', help: 'bearer token for the admin API' },
  { name: 'admin-token-file', arg: 'FILE', setting: 'admin.token_file', help: 'read the admin token from FILE, out of the process list' },
  { name: 'redis', arg: 'URL', setting: 'cluster.redis', unset: 'in memory', help: 'run as one node of a cluster sharing this Redis' },
  { name: 'data-dir', arg: 'DIR', setting: 'persistence.path', unset: 'in memory', help: 'keep sessions, queues and retained messages on disk in DIR' },
  { name: 'max-packet-size', arg: 'BYTES', setting: 'limits.max_packet_size', help: 'a larger MQTT packet closes its connection' },
  { name: 'max-connections', arg: 'N', setting: 'limits.max_connections', help: 'past it, new connections get CONNACK 3' },
  { name: 'mqtt5', setting: 'broker.mqtt5', help: 'speak MQTT 5 too, on Aedes 2 (experimental: see the README)' },
  { name: 'config', arg: 'FILE', help: 'TOML config file; flags override it' },
  { name: 'log-level', arg: 'LEVEL', setting: 'log.level', help: 'fatal, error, warn, info, debug, trace or silent' },
  { name: 'log-format', arg: 'FORMAT', setting: 'log.format', help: 'json (a line per entry, for log collectors) or pretty (for a terminal)' },
  { name: 'help', short: 'h', help: 'show this help' }
]

type Options = NonNullable<ParseArgsConfig['options']>

export function parseArgsOptions (): Options {
  const options: Options = {}
  for (const flag of FLAGS) {
    options[flag.name] = flag.short === undefined
      ? { type: flag.arg === undefined ? 'boolean' : 'string' }
      : { type: flag.arg === undefined ? 'boolean' : 'string', short: flag.short }
  }
  return options
}

const TAKES_VALUE = new Set(FLAGS.filter((flag) => flag.arg !== undefined).map((flag) => `--${flag.name}`))

/**
 * The arguments as parseArgs should see them. It refuses a value that starts
 * with '-' as ambiguous (`--port -1`), and says so in three lines about
 * option arguments; a number is joined to its flag (`--port=-1`), so that
 * the setting's own check says what is wrong with it, and anything else is
 * refused here, in one line that says how to write it.
 */
export function flagArgs (argv: readonly string[]): string[] {
  const args = [...argv]
  for (let i = 0; i < args.length; i++) {
    const token = args[i] as string
    if (token === '--') break
    if (!TAKES_VALUE.has(token)) continue
    const value = args[i + 1]
    if (value === undefined) throw new Error(`${token} needs a value`)
    if (!value.startsWith('-')) {
      i++
    } else if (/^-\d/.test(value)) {
      args.splice(i, 2, `${token}=${value}`)
    } else {
      throw new Error(`${token} needs a value: '${value}' looks like an option; write ${token}=${value} if you mean it`)
    }
  }
  return args
}

/**
 * parseArgs's own message, up to its first sentence: after the option it
 * names, Node adds advice that does not fit this command.
 */
export function flagError (err: unknown): string {
  const message = (err as Error).message
  const end = message.indexOf("'. ")
  return end === -1 ? message : message.slice(0, end + 1)
}

/** The settings the given flags (or their environment variables) override, in table order. */
export function overrides (values: Record<string, unknown>, env: NodeJS.ProcessEnv): Override[] {
  const out: Override[] = []
  for (const flag of FLAGS) {
    if (flag.setting === undefined) continue
    const given = values[flag.name]
    if (typeof given === 'string' || given === true) {
      out.push({ key: flag.setting, value: String(given), where: `--${flag.name}` })
    } else if (flag.env !== undefined && env[flag.env] !== undefined) {
      out.push({ key: flag.setting, value: env[flag.env] as string, where: flag.env })
    }
  }
  return out
}

export function usage (): string {
  const defaults = defaultSettings()
  const lines = FLAGS.map((flag) => {
    const left = `${flag.short === undefined ? '   ' : `-${flag.short},`} --${flag.name}${flag.arg === undefined ? '' : ' ' + flag.arg}`
    const value = flag.setting === undefined ? undefined : settingValue(defaults, flag.setting)
    const shown = value === undefined ? flag.unset : String(value)
    const env = flag.env === undefined ? '' : ` (or ${flag.env})`
    return `  ${left.padEnd(30)}${flag.help}${env}${shown === undefined ? '' : ` (default ${shown})`}`
  })
  return `Usage: aedes-p2p [options]
       aedes-p2p hash-password [PASSWORD]   (reads stdin without PASSWORD)

${lines.join('\n')}

SIGHUP re-reads the config file given with --config.
`
}

export const HASH_USAGE = `Usage: aedes-p2p hash-password [--] [PASSWORD]

Prints a salted scrypt hash of PASSWORD, for the password of a [[users]]
entry in the config file. Without PASSWORD it reads one line from stdin,
which keeps the password out of the process list and the shell history:

  aedes-p2p hash-password < password.txt
  read -rs pw && printf '%s\\n' "$pw" | aedes-p2p hash-password

A password that starts with '-' is given on stdin, or after '--'
(aedes-p2p hash-password -- -secret).
`
