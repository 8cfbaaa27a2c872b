/**
 * Letting a client in (docs/behaviour.md §7). Installed last, so that its
 * hooks run first, before the password check and the plugin's:
 *
 * - While the cluster's Redis is away, a new client is answered CONNACK 3
 *   (server unavailable) at once: Aedes needs its store to connect anyone,
 *   and a client that waited would hold commands for Redis meanwhile.
 * - A client with no CONNACK ANSWER_MS after its CONNECT (a store that hangs
 *   without being known away, anywhere in Aedes's connect sequence) is
 *   answered CONNACK 3 and its connection ended, so every client gets an
 *   answer within 2 s.
 * - A client that closed while Aedes was connecting it, after its checks,
 *   is still registered by Aedes 1.2 and then kept forever (lib/handlers/
 *   connect.js goes on with a closed client); it is unregistered at once.
 */
import type { Aedes, AuthenticateError, Client } from 'aedes'
import { hasConnack, unregisterClosed } from '../plugin/host.js'
import type { LimitHits } from '../plugin/limits.js'
import type { Logger } from '../plugin/log.js'
import { serverUnavailable, written } from './connections.js'

const ANSWER_MS = 1500
const SERVER_UNAVAILABLE = 3

export interface Admission {
  /** false while the cluster's store is away; absent for a broker of its own */
  available?: () => boolean
  hits: LimitHits
  log: Logger
}

function unavailable (message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: SERVER_UNAVAILABLE }) as AuthenticateError
}

export function guardAdmission (broker: Aedes, { available, hits, log }: Admission): void {
  broker.on('client', (client) => { unregisterClosed(broker, client) })
  if (available === undefined) return

  const deadlines = new WeakMap<Client, NodeJS.Timeout>()
  const answerLate = (client: Client, protocolVersion: number | undefined): void => {
    // Aedes marks its CONNACK sent a turn after it writes it: what counts is whether it is written
    if (hasConnack(client) || written(client.conn) || client.closed) return
    hits.hit('connect_deadline', { clientId: client.id, waitedMs: ANSWER_MS })
    log.warn({ clientId: client.id }, `no CONNACK for a connecting client within ${ANSWER_MS} ms: CONNACK 3`)
    // Aedes sees the connection end and closes the client; its connect sequence finds it closed
    client.conn.end(serverUnavailable(protocolVersion))
  }
  const hostPreConnect = broker.preConnect
  broker.preConnect = (client, packet, callback) => {
    const timer = setTimeout(answerLate, ANSWER_MS, client, packet.protocolVersion)
    deadlines.set(client, timer)
    client.conn.once('close', () => { clearTimeout(timer) })
    hostPreConnect.call(broker, client, packet, callback)
  }
  broker.on('connackSent', (_packet, client) => { clearTimeout(deadlines.get(client)) })

  const inner = broker.authenticate
  broker.authenticate = (client, username, password, callback) => {
    if (available()) {
      inner.call(broker, client, username, password, callback)
      return
    }
    hits.hit('cluster_unavailable', { clientId: client.id })
    callback(unavailable('the cluster store is unreachable'), null)
  }
}
