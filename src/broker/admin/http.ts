/**
 * The admin listener's HTTP layer: which requests it answers at all (its
 * own address in Host, against DNS rebinding), the token, routes with
 * `:param` segments, bounded JSON bodies, and JSON answers. What each route
 * does lives in the modules that build the route tables.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { isLoopback } from '../values.js'
import { authorized } from './token.js'

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE'

export interface Call {
  req: IncomingMessage
  res: ServerResponse
  /** the route's `:name` segments, decoded */
  params: Record<string, string>
  query: URLSearchParams
  /** the request's JSON body; a body past the listener's limit or not JSON is answered 413 or 400 */
  json (): Promise<unknown>
}

export interface Route {
  method: Method
  /** `/api/v1/clients/:id`: a `:name` segment matches any one segment */
  path: string
  /** answered without the token: probes, and the console's own files, which hold no data */
  open?: boolean
  run (call: Call): Promise<void> | void
}

export interface AdminHttp {
  /** tried in order: the first whose path matches answers */
  routes: readonly Route[]
  token (): string | undefined
  /** `[admin] hosts`: Host header values answered besides the API's own address */
  hosts (): readonly string[]
  /** told of each request refused for its Host header */
  hostRefused? (host: string, req: IncomingMessage): void
  /** the most bytes a request body may have */
  bodyLimit: number
}

/** An answer other than success, thrown by a route. */
export class HttpError extends Error {
  readonly status: number
  readonly code: string | undefined

  constructor (status: number, message: string, code?: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

// The admin listener shares the process's file descriptors with MQTT: a
// peer that opens connections and sends nothing (before any token is
// looked at) must not be able to take them all, nor hold one for long.
const MAX_CONNECTIONS = 128
const HEADERS_TIMEOUT_MS = 10_000
const REQUEST_TIMEOUT_MS = 30_000
/** bodies being read at once: each may be as large as the body limit */
const MAX_BODIES = 4

export function createAdminServer (http: AdminHttp): Server {
  const routes = http.routes.map((route) => ({ route, segments: route.path.split('/') }))
  const bodies = { reading: 0 }
  const server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    handle(http, routes, bodies, req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500
      const code = err instanceof HttpError ? err.code : (err as { code?: unknown }).code
      if (res.headersSent) {
        res.destroy()
        return
      }
      // a refused request's body is not read: the connection goes rather than wait for it
      if (!req.complete) res.setHeader('Connection', 'close')
      sendJson(res, status, { error: (err as Error).message, ...(typeof code === 'string' ? { code } : {}) })
    })
  })
  server.maxConnections = MAX_CONNECTIONS
  return server
}

type Compiled = Array<{ route: Route, segments: string[] }>

async function handle (http: AdminHttp, routes: Compiled, bodies: { reading: number }, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // First, for every path: a page on a name that an attacker's DNS points at
  // 127.0.0.1 is same-origin with this API in the browser, and its requests
  // carry that name in Host (DNS rebinding). /health included: it tells
  // such a page that a broker is here.
  const host = req.headers.host
  if (host !== undefined && !hostAllowed(host, req, http.hosts())) {
    http.hostRefused?.(host, req)
    throw new HttpError(403, `Host ${JSON.stringify(host)} is not this admin API's address; list it in [admin] hosts to allow it`)
  }
  // A page on another origin may send a POST without asking first (a
  // "simple" request): with no token set, that would be enough to send a
  // P2P message. Browsers name the page's origin on such requests.
  if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req)) {
    throw new HttpError(403, `a request from the page at ${req.headers.origin ?? 'another site'} is refused: only this API's own console and tools without a browser may change anything`)
  }
  let url: URL
  try {
    url = new URL(req.url ?? '/', 'http://admin')
  } catch {
    throw new HttpError(400, 'not a request target this API understands')
  }
  const asked = url.pathname.split('/')
  let allowed: Method[] = []
  for (const { route, segments } of routes) {
    const params = match(segments, asked)
    if (params === undefined) continue
    if (route.method !== req.method && !(route.method === 'GET' && req.method === 'HEAD')) {
      allowed.push(route.method)
      continue
    }
    if (route.open !== true && !authorized(http.token(), req.headers.authorization)) {
      res.setHeader('WWW-Authenticate', 'Bearer')
      throw new HttpError(401, 'missing or wrong bearer token')
    }
    await route.run({ req, res, params, query: url.searchParams, json: async () => readJson(req, http.bodyLimit, bodies) })
    return
  }
  if (allowed.length === 0) throw new HttpError(404, `no such endpoint: ${url.pathname}`)
  allowed = [...new Set(allowed)]
  res.setHeader('Allow', allowed.join(', '))
  throw new HttpError(405, `${url.pathname} takes ${allowed.join(' or ')}`)
}

function match (pattern: string[], asked: string[]): Record<string, string> | undefined {
  if (pattern.length !== asked.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i] as string
    const got = asked[i] as string
    if (want.startsWith(':')) {
      if (got.length === 0) return undefined
      try {
        params[want.slice(1)] = decodeURIComponent(got)
      } catch {
        throw new HttpError(400, `bad percent-encoding in ${JSON.stringify(got)}`)
      }
    } else if (want !== got) {
      return undefined
    }
  }
  return params
}

/** False for a browser's request from a page on another origin than the one it is sent to. */
function sameOrigin (req: IncomingMessage): boolean {
  if (req.headers['sec-fetch-site'] === 'cross-site') return false
  const origin = req.headers.origin
  if (origin === undefined) return true
  try {
    return new URL(origin).host === req.headers.host
  } catch {
    // "null" (a sandboxed frame, a file:// page) or garbage: not this API's page
    return false
  }
}

async function readJson (req: IncomingMessage, limit: number, bodies: { reading: number }): Promise<unknown> {
  // a browser sends JSON from another origin only after asking (CORS preflight), which this API never grants
  if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'send the body as Content-Type: application/json')
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new HttpError(413, `request body larger than ${limit} bytes`)
  if (bodies.reading >= MAX_BODIES) throw new HttpError(503, `${MAX_BODIES} request bodies are being read already: try again`)
  bodies.reading++
  const chunks: Buffer[] = []
  try {
    let size = 0
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      // counted as it arrives: a body without Content-Length is bounded too
      if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`)
      chunks.push(chunk as Buffer)
    }
  } finally {
    bodies.reading--
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${(err as Error).message}`)
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

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' })
  res.end(JSON.stringify(body) + '\n')
}
