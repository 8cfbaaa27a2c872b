/** Shared by every reader of config: the error type and the unknown-key check. */

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export type Table = Record<string, unknown>

export function isTable (value: unknown): value is Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

/** Fails on keys the reader does not know, naming each one and where it was found. */
export function rejectUnknownKeys (table: Table, known: readonly string[], where: string): void {
  const unknown = Object.keys(table).filter((key) => !known.includes(key))
  if (unknown.length > 0) {
    const list = unknown.map((key) => `'${key}'`).join(', ')
    throw new ConfigError(`${where}: unknown key${unknown.length > 1 ? 's' : ''} ${list} (known: ${known.join(', ')})`)
  }
}
