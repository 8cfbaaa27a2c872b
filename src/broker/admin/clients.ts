/**
 * The clients connected to this node as the console and the admin API show
 * them (docs/operations.md): a searchable list, one client in detail, and a
 * kick; and the console's "send a P2P message". Each kick and send is
 * logged with who asked, so that "who did this" has an answer.
 */
import type { IncomingMessage } from 'node:http'
import { TLSSocket } from 'node:tls'
import type { Aedes, Client } from 'aedes'
import type { Logger } from '../../plugin/log.js'
import type { P2PHandle } from '../../plugin/register.js'
import type { SendResult } from '../../plugin/send.js'
import { connectedClient } from '../../plugin/host.js'
import { queuedPackets } from '../../plugin/host-store.js'
import { LATE, within } from '../../plugin/within.js'
import type { ClientDirectory } from './directory.js'
import { HttpError, sendJson, type Route } from './http.js'

/** A list answers at most this many clients; `total` and `matched` say how many there are. */
const LIST_MAX = 1000
const LIST_DEFAULT = 100
/** the detail view counts a queue this far, then says "at least" */
const QUEUE_COUNT_MAX = 10_000
const SUBSCRIPTIONS_SHOWN = 100
// The store may be away (Redis): the page gets an answer anyway, saying what it could not learn
const QUEUE_COUNT_WAIT_MS = 2000
const SEND_WAIT_MS = 10_000
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export interface ClientViews {
  broker: Aedes
  plugin: P2PHandle
  directory: ClientDirectory
  log: Logger
  usernameOf (client: Client): string | undefined
}

export function clientRoutes (views: ClientViews): Route[] {
  const { broker, directory, log } = views
  const summary = (client: Client, since = directory.since(client)): Record<string, unknown> => ({
    clientid: client.id,
    username: views.usernameOf(client) ?? null,
    protocol: protocolName(client.version),
    transport: transportOf(client),
    address: addressOf(client),
    connected_at: since === undefined ? null : new Date(since).toISOString(),
    clean_session: client.clean
  })
  const find = (id: string): Client => {
    const client = connectedClient(broker, id)
    if (client === undefined) throw new HttpError(404, `no client ${JSON.stringify(id)} is connected to this node`, 'not_connected')
    return client
  }
  const kick: Route['run'] = ({ req, res, params, query }) => {
    const id = params.id ?? query.get('clientid')
    if (id === null) throw new HttpError(400, 'name the client: DELETE /api/v1/clients/{clientid}, or ?clientid= for an id a path cannot carry')
    const client = find(id)
    log.info({ clientId: client.id, by: requester(req) }, 'client kicked through the admin API')
    client.close()
    sendJson(res, 200, { kicked: client.id })
  }
  return [
    {
      method: 'GET',
      path: '/api/v1/clients',
      run ({ res, query }) {
        const limit = listLimit(query.get('limit'))
        const page = directory.page((query.get('q') ?? '').toLowerCase(), limit, views.usernameOf)
        sendJson(res, 200, { node: broker.id, total: page.total, matched: page.matched, clients: page.clients.map(({ client, since }) => summary(client, since)) })
      }
    },
    {
      method: 'GET',
      path: '/api/v1/clients/:id',
      async run ({ res, params }) {
        const client = find(params.id as string)
        const subscriptions = Object.entries((client as unknown as { subscriptions: Record<string, { qos?: number }> }).subscriptions)
        const queued = await countQueued(broker, client.id)
        sendJson(res, 200, {
          ...summary(client),
          // written to its socket and not yet taken by it: a reader that stops reading shows here first
          pending_bytes: client.conn.writableLength ?? 0,
          // null: the store did not answer in time
          queued_messages: queued,
          queued_messages_more: queued !== null && queued >= QUEUE_COUNT_MAX,
          subscriptions_count: subscriptions.length,
          subscriptions: subscriptions.slice(0, SUBSCRIPTIONS_SHOWN).map(([topic, sub]) => ({ topic, qos: sub.qos ?? 0 }))
        })
      }
    },
    // rmqtt's kick; the session stays, as when the client drops its connection.
    // `?clientid=` names ids a path cannot carry: URLs turn `.` and `..` into directions
    { method: 'DELETE', path: '/api/v1/clients/:id', run: kick },
    { method: 'DELETE', path: '/api/v1/clients', run: kick },
    {
      method: 'POST',
      path: '/api/v1/p2p/send',
      async run ({ req, res, json }) {
        const body = await json()
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object: { "clientid", "topic", "payload", "qos", "encoding" }')
        const { clientid, topic, payload = '', qos = 0, encoding = 'plain' } = body as Record<string, unknown>
        if (typeof payload !== 'string') throw invalid('payload must be a string')
        if (encoding !== 'plain' && encoding !== 'base64') throw invalid('encoding must be "plain" or "base64"')
        if (encoding === 'base64' && !BASE64.test(payload)) throw invalid('payload is not base64')
        const bytes = Buffer.from(payload, encoding === 'base64' ? 'base64' : 'utf8')
        let result: SendResult | typeof LATE
        try {
          result = await within(views.plugin.send(clientid as string, topic as string, bytes, { qos: qos as 0 | 1 | 2 }), SEND_WAIT_MS)
        } catch (err) {
          const code = (err as { code?: unknown }).code
          if (code === 'ERR_P2P_INVALID_MESSAGE') throw invalid((err as Error).message)
          if (code === 'ERR_P2P_STOPPED') throw new HttpError(409, (err as Error).message, code)
          throw err
        }
        log.info({ target: clientid, topic, qos, bytes: bytes.length, outcome: result === LATE ? 'pending' : result.outcome, by: requester(req) }, 'P2P message sent through the admin API')
        if (result === LATE) throw new HttpError(504, `no outcome within ${SEND_WAIT_MS / 1000} s (the store or Redis is slow or away): the message may still be delivered`, 'pending')
        sendJson(res, 200, result)
      }
    }
  ]
}

function invalid (message: string): HttpError {
  return new HttpError(400, message, 'ERR_P2P_INVALID_MESSAGE')
}

/** Who made an admin request, for the log. */
function requester (req: IncomingMessage): string | null {
  return req.socket.remoteAddress ?? null
}

/** A queue's length, read from the store as far as QUEUE_COUNT_MAX; null if the store does not answer in time. */
async function countQueued (broker: Aedes, clientId: string): Promise<number | null> {
  const packets = queuedPackets(broker, clientId)[Symbol.asyncIterator]()
  const counting = (async () => {
    let n = 0
    while (n < QUEUE_COUNT_MAX && (await packets.next()).done !== true) n++
    return n
  })()
  const n = await within(counting, QUEUE_COUNT_WAIT_MS)
  // ends the store's stream, answered or not
  void packets.return?.()?.catch(() => {})
  counting.catch(() => {})
  return n === LATE ? null : n
}

function listLimit (value: string | null): number {
  if (value === null) return LIST_DEFAULT
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new HttpError(400, `limit must be a whole number from 1 to ${LIST_MAX}`)
  return Math.min(n, LIST_MAX)
}

function protocolName (version: number): string {
  return version === 5 ? 'MQTT 5' : version === 4 ? 'MQTT 3.1.1' : version === 3 ? 'MQTT 3.1' : 'unknown'
}

function transportOf (client: Client): string {
  if (client.conn instanceof TLSSocket) return 'tls'
  return client.req !== undefined ? 'ws' : 'tcp'
}

function addressOf (client: Client): string | null {
  // behind a WebSocket the connection is a stream over the upgraded request's socket
  const socket = client.req?.socket ?? (client.conn as { remoteAddress?: string })
  return socket.remoteAddress ?? null
}
