/**
 * Reading config tables, for the plugin's options and the broker's settings
 * alike: TOML files, unknown keys, and errors that say which file they are from.
 */
import { readFile } from 'node:fs/promises'
import { parse as parseToml } from 'smol-toml'
import { ConfigError } from './errors.js'

export type Table = Record<string, unknown>

export function isTable (value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

/**
 * Fails on keys the reader does not know, naming each one and where it was
 * found. `path` is the table's own place in the config ('' at the top level),
 * so the error's key is the full path of the first unknown key.
 */
export function rejectUnknownKeys (table: Table, known: readonly string[], where: string, path = ''): void {
  const unknown = Object.keys(table).filter((key) => !known.includes(key))
  const first = unknown[0]
  if (first !== undefined) {
    const list = unknown.map((key) => `'${key}'`).join(', ')
    throw new ConfigError(`${where}: unknown key${unknown.length > 1 ? 's' : ''} ${list} (known: ${known.join(', ')})`, path === '' ? first : `${path}.${first}`)
  }
}

/**
 * Reads an array of tables (`[[name]]`): each must be a table with only
 * `keys`, and `read` makes the entry of it, told where it is (`name[i]`).
 */
export function arrayOfTables<T> (value: unknown, name: string, keys: readonly string[], read: (entry: Table, where: string) => T): T[] {
  if (!Array.isArray(value)) throw new ConfigError(`${name} must be an array of tables ([[${name}]])`, name)
  return value.map((entry: unknown, i) => {
    const where = `${name}[${i}]`
    if (!isTable(entry)) throw new ConfigError(`${where} must be a table`, where)
    rejectUnknownKeys(entry, keys, where, where)
    return read(entry, where)
  })
}

/** Reads a TOML file into a table; syntax errors name the file and the line. */
export async function readTomlFile (path: string): Promise<Table> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`, 'config')
  }
  try {
    return parseToml(text) as Table
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`, 'config')
  }
}

/** Runs `read`, putting `source` (a file name) in front of a config error's message. */
export function withSource<T> (source: string, read: () => T): T {
  try {
    return read()
  } catch (err) {
    if (err instanceof ConfigError && !err.message.startsWith(source)) {
      throw new ConfigError(`${source}: ${err.message}`, err.key)
    }
    throw err
  }
}
