/**
 * The clients connected to this node, as the admin API lists them: when
 * each connected, and a page of them by id, searched, at a cost that stays
 * small with 100,000 clients (one pass, no full sort, no copy of Aedes's
 * client table).
 */
import type { Aedes, Client } from 'aedes'
import { connectedClient } from '../../plugin/host.js'

interface Entry {
  client: Client
  since: number
  /** the id in lower case, for searching */
  key: string
}

export interface Page {
  /** every client connected here */
  total: number
  /** those the search matched */
  matched: number
  /** the first `limit` of those, by id */
  clients: Array<{ client: Client, since: number }>
}

export class ClientDirectory {
  readonly #broker: Aedes
  readonly #entries = new Map<string, Entry>()

  constructor (broker: Aedes) {
    this.#broker = broker
    broker.on('client', (client) => {
      this.#entries.set(client.id, { client, since: Date.now(), key: client.id.toLowerCase() })
    })
    broker.on('clientDisconnect', (client) => {
      // a takeover registers the new connection before the old one leaves
      if (this.#entries.get(client.id)?.client === client) this.#entries.delete(client.id)
    })
  }

  /** When `client` connected, if it is connected here. */
  since (client: Client): number | undefined {
    const entry = this.#entries.get(client.id)
    return entry?.client === client ? entry.since : undefined
  }

  /**
   * The first `limit` clients by id whose id, or username as `usernameOf`
   * tells, holds `search` (lower case; '' for all).
   */
  page (search: string, limit: number, usernameOf: (client: Client) => string | undefined): Page {
    const top: Entry[] = []
    let matched = 0
    for (const [id, entry] of this.#entries) {
      // the broker's own table is the truth; an entry it no longer holds goes
      if (connectedClient(this.#broker, id) !== entry.client) {
        this.#entries.delete(id)
        continue
      }
      if (search !== '' && !entry.key.includes(search) && usernameOf(entry.client)?.toLowerCase().includes(search) !== true) continue
      matched++
      if (top.length === limit && id >= (top[limit - 1] as Entry).client.id) continue
      top.splice(insertionPoint(top, id), 0, entry)
      if (top.length > limit) top.pop()
    }
    return { total: this.#entries.size, matched, clients: top.map(({ client, since }) => ({ client, since })) }
  }
}

function insertionPoint (sorted: Entry[], id: string): number {
  let [lo, hi] = [0, sorted.length]
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as Entry).client.id < id) lo = mid + 1
    else hi = mid
  }
  return lo
}
