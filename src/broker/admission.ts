/**
 * Letting a client in (docs/behaviour.md §7). Installed last, so its
 * `authenticate` runs first, before the password check and the plugin's:
 *
 * - While the cluster's Redis is away, a new client is answered CONNACK 3
 *   (server unavailable) at once: Aedes needs its store to connect anyone,
 *   and a client that waited would hold commands for Redis meanwhile.
 * - A client whose checks have not answered within ANSWER_MS (a store that
 *   hangs) is answered CONNACK 3 too, so every client gets an answer within
 *   2 s; a late answer is dropped.
 * - A client that closed while Aedes was connecting it, after its checks,
 *   is still registered by Aedes 1.2 and then kept forever (lib/handlers/
 *   connect.js goes on with a closed client); it is unregistered at once.
 */
import type { Aedes, AuthenticateError } from 'aedes'
import { unregisterClosed } from '../plugin/host.js'
import type { LimitHits } from '../plugin/limits.js'
import type { Logger } from '../plugin/log.js'

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
  const inner = broker.authenticate
  broker.authenticate = (client, username, password, callback) => {
    if (!available()) {
      hits.hit('cluster_unavailable', { clientId: client.id })
      callback(unavailable('the cluster store is unreachable'), null)
      return
    }
    let answered = false
    const timer = setTimeout(() => {
      answered = true
      hits.hit('cluster_unavailable', { clientId: client.id, waitedMs: ANSWER_MS })
      log.warn({ clientId: client.id }, `no answer for a connecting client within ${ANSWER_MS} ms: CONNACK 3`)
      callback(unavailable('the cluster store did not answer in time'), null)
    }, ANSWER_MS)
    inner.call(broker, client, username, password, (err, success) => {
      if (answered) return
      answered = true
      clearTimeout(timer)
      callback(err, success)
    })
  }
}
