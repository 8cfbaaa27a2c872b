/**
 * The admin HTTP API (docs/behaviour.md §6): health, Prometheus metrics, the plugin's
 * config and a reload, behind an optional bearer token.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import { ConfigError } from '../plugin/errors.js'

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
}

export function createAdminServer (api: AdminApi): Server {
  return createServer((req, res) => {
    handle(api, req, res).catch((err: unknown) => {
      send(res, 500, { error: (err as Error).message })
    })
  })
}

async function handle (api: AdminApi, req: IncomingMessage, res: ServerResponse): Promise<void> {
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
