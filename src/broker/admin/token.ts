/**
 * The admin API's bearer token (docs/operations.md): where it comes from,
 * and the check every request but the probes and the console's own files
 * must pass.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { ConfigError } from '../../plugin/errors.js'
import type { Settings } from '../settings.js'

/**
 * The admin token: `token`, or what `token_file` holds, surrounding
 * whitespace trimmed. Read at start, before anything listens, and at each
 * reload, so the file can be rewritten to change it; only while the API is on.
 */
export async function readAdminToken (admin: Settings['admin']): Promise<string | undefined> {
  if (admin.port === undefined || admin.token_file === undefined) return admin.token
  const path = admin.token_file
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read admin.token_file ${path}: ${(err as Error).message}`, 'admin.token_file')
  }
  const token = text.trim()
  if (token.length === 0) throw new ConfigError(`admin.token_file ${path} is empty: it must hold the admin API token`, 'admin.token_file')
  // no Authorization header can carry one, so it would lock everyone out
  if (/[\r\n]/.test(token)) throw new ConfigError(`admin.token_file ${path} must hold the token on one line`, 'admin.token_file')
  return token
}

/** Whether an Authorization header carries `token`; any header passes when there is none. */
export function authorized (token: string | undefined, header: string | undefined): boolean {
  if (token === undefined) return true
  // the scheme is case-insensitive (RFC 9110 §11.1): `bearer` is as good as `Bearer`
  if (header === undefined || !/^bearer /i.test(header)) return false
  // hashing first makes the comparison constant-time whatever the lengths
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(header.slice(7)), digest(token))
}
