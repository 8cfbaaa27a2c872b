/**
 * The admin HTTP API (docs/behaviour.md §6): health, Prometheus metrics, the plugin's
 * config and a reload, behind an optional bearer token, answering only
 * requests addressed to it by its own address or a name in `[admin] hosts`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import { ConfigError } from '../plugin/errors.js'
import type { Settings } from './settings.js'
import { isLoopback } from './values.js'

export const CONFIG_PATH = '/api/v1/plugins/aedes-p2p-messaging/config'
export const RELOAD_PATH = CONFIG_PATH + '/reload'

export interface AdminApi {
  metrics: Registry
  /** what GET config returns */
  config (): unknown
  /** re-reads the config file; rejects with a ConfigError for a bad config */
  reload (): Promise<unknown>
  health (): Record<string, unknown>
  token: () => string | undefined
  /** `[admin] hosts`: Host header values answered besides the API's own address */
  hosts: () => readonly string[]
  /** told of each request refused for its Host header */
  hostRefused?: (host: string, req: IncomingMessage) => void
}

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

export function createAdminServer (api: AdminApi): Server {
  return createServer((req, res) => {
    handle(api, req, res).catch((err: unknown) => {
      send(res, 500, { error: (err as Error).message })
    })
  })
}

async function handle (api: AdminApi, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // First, for every path: a page on a name that an attacker's DNS points at
  // 127.0.0.1 is same-origin with this API in the browser, and its requests
  // carry that name in Host (DNS rebinding). /health included: it tells
  // such a page that a broker is here.
  const host = req.headers.host
  if (host !== undefined && !hostAllowed(host, req, api.hosts())) {
    api.hostRefused?.(host, req)
    send(res, 403, { error: `Host ${JSON.stringify(host)} is not this admin API's address; list it in [admin] hosts to allow it` })
    return
  }
  const path = new URL(req.url ?? '/', 'http://admin').pathname
  const route = ROUTES[path]
  if (route === undefined) {
    send(res, 404, { error: `no such endpoint: ${path}` })
    return
  }
  if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
    res.setHeader('Allow', route.method)
    send(res, 405, { error: `${path} takes ${route.method}` })
    return
  }
  // probes must work without credentials; everything else needs the token
  if (path !== '/health' && !authorized(api.token(), req.headers.authorization)) {
    res.setHeader('WWW-Authenticate', 'Bearer')
    send(res, 401, { error: 'missing or wrong bearer token' })
    return
  }
  req.resume()
  await route.run(api, res)
}

const ROUTES: Record<string, { method: string, run: (api: AdminApi, res: ServerResponse) => Promise<void> }> = {
  '/health': { method: 'GET', run: async (api, res) => { send(res, 200, { status: 'ok', ...api.health() }) } },
  '/metrics': {
    method: 'GET',
    run: async (api, res) => {
      const text = await api.metrics.metrics()
      res.writeHead(200, { 'Content-Type': api.metrics.contentType })
      res.end(text)
    }
  },
  [CONFIG_PATH]: { method: 'GET', run: async (api, res) => { send(res, 200, api.config()) } },
  [RELOAD_PATH]: {
    method: 'PUT',
    run: async (api, res) => {
      try {
        send(res, 200, { reloaded: true, config: await api.reload() })
      } catch (err) {
        // a bad config is the caller's to fix; anything else is the broker's fault
        const status = err instanceof ConfigError ? 400 : 500
        send(res, status, { reloaded: false, error: (err as Error).message, code: (err as { code?: unknown }).code ?? null })
      }
    }
  }
}

/**
 * True when `header` names the address and port the request came in on
 * (`localhost` too, on loopback), without a port as well, or one of
 * `extra`: an entry without a port matches its host on any port.
 */
export function hostAllowed (header: string, req: IncomingMessage, extra: readonly string[]): boolean {
  const given = splitHost(header.toLowerCase())
  if (given === undefined) return false
  const { localAddress, localPort } = req.socket
  if (localAddress !== undefined) {
    // a dual-stack socket reports an IPv4 peer's request as ::ffff:a.b.c.d
    const address = localAddress.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '')
    const names = [address.includes(':') ? `[${address}]` : address]
    if (isLoopback(address)) names.push('localhost')
    if (names.includes(given.name) && (given.port === undefined || given.port === String(localPort))) return true
  }
  return extra.some((entry) => {
    const allowed = splitHost(entry)
    return allowed !== undefined && allowed.name === given.name && (allowed.port === undefined || allowed.port === given.port)
  })
}

/** `name[:port]`, the name of an IPv6 address in brackets as Host carries it. */
function splitHost (host: string): { name: string, port: string | undefined } | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host)
  if (match === null) return undefined
  return { name: match[1] as string, port: match[2] }
}

function authorized (token: string | undefined, header: string | undefined): boolean {
  if (token === undefined) return true
  if (header?.startsWith('Bearer ') !== true) return false
  // hashing first makes the comparison constant-time whatever the lengths
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(header.slice(7)), digest(token))
}

function send (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(body) + '\n')
}
