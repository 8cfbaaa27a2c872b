/**
 * The clients connected to this node as the console and the admin API show
 * them (docs/operations.md): a searchable list, one client in detail, and a
 * kick; and the console's "send a P2P message".
 */
import { TLSSocket } from 'node:tls'
import type { Aedes, Client } from 'aedes'
import type { P2PHandle } from '../../plugin/register.js'
import { connectedClient, connectedClients } from '../../plugin/host.js'
import { queuedPackets } from '../../plugin/host-store.js'
import { HttpError, sendJson, type Route } from './http.js'

/** A list answers at most this many clients; `total` and `matched` say how many there are. */
const LIST_MAX = 1000
const LIST_DEFAULT = 100
/** the detail view counts a queue this far, then says "at least" */
const QUEUE_COUNT_MAX = 10_000
const SUBSCRIPTIONS_SHOWN = 100

export interface ClientViews {
  broker: Aedes
  plugin: P2PHandle
  usernameOf (client: Client): string | undefined
}

/** When each client connected: the broker says who, not since when. Weak, so a gone client leaves nothing. */
export function connectionTimes (broker: Aedes): WeakMap<Client, number> {
  const since = new WeakMap<Client, number>()
  broker.on('client', (client) => { since.set(client, Date.now()) })
  return since
}

export function clientRoutes (views: ClientViews, since: WeakMap<Client, number>): Route[] {
  const summary = (client: Client): Record<string, unknown> => {
    const connectedAt = since.get(client)
    return {
      clientid: client.id,
      username: views.usernameOf(client) ?? null,
      protocol: protocolName(client.version),
      transport: transportOf(client),
      address: addressOf(client),
      connected_at: connectedAt === undefined ? null : new Date(connectedAt).toISOString(),
      clean_session: client.clean
    }
  }
  const find = (id: string): Client => {
    const client = connectedClient(views.broker, id)
    if (client === undefined) throw new HttpError(404, `no client ${JSON.stringify(id)} is connected to this node`, 'not_connected')
    return client
  }
  return [
    {
      method: 'GET',
      path: '/api/v1/clients',
      run ({ res, query }) {
        const q = (query.get('q') ?? '').toLowerCase()
        const limit = listLimit(query.get('limit'))
        const all = connectedClients(views.broker)
        const matched = q === '' ? all : all.filter((c) => c.id.toLowerCase().includes(q) || (views.usernameOf(c)?.toLowerCase().includes(q) ?? false))
        // sorted by id so that a page does not reshuffle at every refresh
        const shown = matched.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, limit)
        sendJson(res, 200, { node: views.broker.id, total: all.length, matched: matched.length, clients: shown.map(summary) })
      }
    },
    {
      method: 'GET',
      path: '/api/v1/clients/:id',
      async run ({ res, params }) {
        const client = find(params.id as string)
        const subscriptions = Object.entries((client as unknown as { subscriptions: Record<string, { qos?: number }> }).subscriptions)
        const queued = await countQueued(views.broker, client.id)
        sendJson(res, 200, {
          ...summary(client),
          // written to its socket and not yet taken by it: a reader that stops reading shows here first
          pending_bytes: client.conn.writableLength ?? 0,
          queued_messages: queued,
          queued_messages_more: queued >= QUEUE_COUNT_MAX,
          subscriptions_count: subscriptions.length,
          subscriptions: subscriptions.slice(0, SUBSCRIPTIONS_SHOWN).map(([topic, sub]) => ({ topic, qos: sub.qos ?? 0 }))
        })
      }
    },
    {
      // rmqtt's kick: the session stays, as when the client drops its connection
      method: 'DELETE',
      path: '/api/v1/clients/:id',
      run ({ res, params }) {
        const client = find(params.id as string)
        client.close()
        sendJson(res, 200, { kicked: client.id })
      }
    },
    {
      method: 'POST',
      path: '/api/v1/p2p/send',
      async run ({ res, json }) {
        const body = await json()
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object: { "clientid", "topic", "payload", "qos", "encoding" }')
        const { clientid, topic, payload, qos, encoding } = body as Record<string, unknown>
        if (payload !== undefined && typeof payload !== 'string') throw new HttpError(400, 'payload must be a string', 'ERR_P2P_INVALID_MESSAGE')
        if (encoding !== undefined && encoding !== 'plain' && encoding !== 'base64') throw new HttpError(400, 'encoding must be "plain" or "base64"', 'ERR_P2P_INVALID_MESSAGE')
        const bytes = Buffer.from(payload ?? '', encoding === 'base64' ? 'base64' : 'utf8')
        try {
          const result = await views.plugin.send(clientid as string, topic as string, bytes, { qos: (qos ?? 0) as 0 | 1 | 2 })
          sendJson(res, 200, result)
        } catch (err) {
          const code = (err as { code?: unknown }).code
          if (code === 'ERR_P2P_INVALID_MESSAGE') throw new HttpError(400, (err as Error).message, code)
          if (code === 'ERR_P2P_STOPPED') throw new HttpError(409, (err as Error).message, code)
          throw err
        }
      }
    }
  ]
}

/** A queue's length, read from the store as far as QUEUE_COUNT_MAX. */
async function countQueued (broker: Aedes, clientId: string): Promise<number> {
  const packets = queuedPackets(broker, clientId)[Symbol.asyncIterator]()
  let n = 0
  try {
    while (n < QUEUE_COUNT_MAX && (await packets.next()).done !== true) n++
  } finally {
    await packets.return?.()
  }
  return n
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
