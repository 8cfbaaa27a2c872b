/**
 * Checks for single setting values, shared by the config file and the flags.
 * `where` is how the user wrote it (`listeners.port`, `--port`), for the
 * message; `key` is the setting's path, for ConfigError.key.
 */
import { isIP } from 'node:net'
import { redactedUrl, redisTarget } from '../cluster/redis-target.js'
import { ConfigError } from '../plugin/errors.js'
import { wholeNumber } from '../plugin/limits.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
/** json for log collectors (journald, Loki, …), pretty for a person at a terminal */
export const LOG_FORMATS = ['json', 'pretty'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

export type Check<T> = (value: unknown, where: string, key: string) => T

export const port: Check<number> = (value, where, key) => {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(`${where} must be a port number from 0 to 65535 (got ${JSON.stringify(value)})`, key)
  }
  return n
}

/** true or false; a switch flag gives "true" */
export const onOff: Check<boolean> = (value, where, key) => {
  if (value === true || value === 'true') return true
  if (value === false || value === 'false') return false
  throw new ConfigError(`${where} must be true or false (got ${JSON.stringify(value)})`, key)
}

/** A port, or false for a listener that is off. */
export const portOrOff: Check<number | false> = (value, where, key) => value === false ? false : port(value, where, key)

export const host: Check<string> = (value, where, key) => {
  if (typeof value !== 'string' || value.length === 0 || (isIP(value) === 0 && !/^[A-Za-z0-9.-]+$/.test(value))) {
    throw new ConfigError(`${where} must be an IP address or host name (got ${JSON.stringify(value)})`, key)
  }
  return value
}

export const text: Check<string> = (value, where, key) => {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(`${where} must be a non-empty string`, key)
  return value
}

export const wsPath: Check<string> = (value, where, key) => {
  if (typeof value !== 'string' || !value.startsWith('/')) throw new ConfigError(`${where} must start with /`, key)
  return value
}

export const redisUrl: Check<string> = (value, where, key) => {
  const target = typeof value === 'string' ? redisTarget(value) : 'must be a string'
  if (typeof target === 'string') {
    const shown = typeof value === 'string' ? redactedUrl(value) : value
    throw new ConfigError(`${where} ${target} (got ${JSON.stringify(shown)})`, key)
  }
  return value as string
}

/** A count of something a limit allows: at least 1. */
export const count: Check<number> = (value, where, key) => wholeNumber(value, where, key, 1)

/** A size in bytes: at least 1. */
export const bytes: Check<number> = count

/** A wait in seconds, 1 to a day: a timer for longer would overflow and fire at once. */
export const waitSeconds: Check<number> = (value, where, key) => {
  const n = wholeNumber(value, where, key, 1)
  if (n > 86_400) throw new ConfigError(`${where} must be at most 86400 seconds, a day (got ${n})`, key)
  return n
}

/** Seconds, where 0 means never. */
export const seconds: Check<number> = (value, where, key) => wholeNumber(value, where, key, 0)

// MQTT's own ceiling: a remaining length of at most 268,435,455 after a fixed header of at most 5 bytes
const MQTT_MAX_PACKET = 268_435_460
// room for a CONNECT with a client id, a username and a password
const LEAST_PACKET = 64

export const packetSize: Check<number> = (value, where, key) => {
  const n = wholeNumber(value, where, key, LEAST_PACKET)
  if (n > MQTT_MAX_PACKET) throw new ConfigError(`${where} must be at most ${MQTT_MAX_PACKET}, MQTT's own largest packet (got ${JSON.stringify(value)})`, key)
  return n
}

/** One of `names`. */
function oneOf<T extends string> (names: readonly T[]): Check<T> {
  return (value, where, key) => {
    if (typeof value !== 'string' || !(names as readonly string[]).includes(value)) {
      throw new ConfigError(`${where} must be one of ${names.join(', ')} (got ${JSON.stringify(value)})`, key)
    }
    return value as T
  }
}

export const logLevel: Check<LogLevel> = oneOf(LOG_LEVELS)

export const logFormat: Check<LogFormat> = oneOf(LOG_FORMATS)

export function isLoopback (address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.')
}

/** A list of strings, each checked by `each`. */
function listOf<T> (each: (item: string, where: string) => T, what: string): Check<T[]> {
  return (value, where, key) => {
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      throw new ConfigError(`${where} must be a list of ${what} (got ${JSON.stringify(value)})`, key)
    }
    return value.map((item: string, i) => {
      try {
        return each(item, `${where}[${i}]`)
      } catch (err) {
        throw new ConfigError((err as Error).message, key)
      }
    })
  }
}

/**
 * Browser origins, as a browser sends them: `https://app.example.com`,
 * `http://localhost:8080`; or `*` for any.
 */
export const origins: Check<string[]> = listOf((item, where) => {
  if (item === '*') return item
  let origin: string | undefined
  try {
    origin = new URL(item).origin
  } catch { /* reported below */ }
  if (origin === undefined || origin === 'null' || origin !== item.toLowerCase()) {
    throw new Error(`${where} must be an origin such as "https://app.example.com" (scheme, host and port only) or "*" (got ${JSON.stringify(item)})`)
  }
  return origin
}, 'origins such as "https://app.example.com"')

/** Host header values: a host name or address, with or without `:port`. */
export const hostNames: Check<string[]> = listOf((item, where) => {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(item)) {
    throw new Error(`${where} must be a host name, with or without :port, as a Host header carries it (got ${JSON.stringify(item)})`)
  }
  return item.toLowerCase()
}, 'host names')
