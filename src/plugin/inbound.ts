/**
 * The bound on one client id's QoS 2 messages received and not yet released
 * by their PUBREL, which the broker keeps meanwhile (docs/behaviour.md §9).
 * Aedes 1.2 has it (`maxInflightInbound`, 1000: past it the client's
 * connection is closed); Aedes 2.0.0-beta.1 does not, keeps all a client
 * sends, and keeps them past the connection, so a client that never sends
 * PUBREL, or comes back again and again, makes it grow without end. On such
 * a host the plugin keeps the same bound, per client id as the store keeps
 * them, and a session that starts clean lets go of what its id left.
 */
import type { Aedes, Client } from 'aedes'
import { releaseIncoming, watchIncoming } from './host-store.js'
import type { LimitHits } from './limits.js'

/** Aedes 1.2's own default */
export const MAX_INFLIGHT_INBOUND = 1000

export class InboundWindow {
  readonly #held = new Map<string, Set<number>>()
  readonly #broker: Aedes
  readonly #limit: number
  readonly #hits: LimitHits

  constructor (broker: Aedes, limit: number, hits: LimitHits) {
    this.#broker = broker
    this.#limit = limit
    this.#hits = hits
  }

  /** True while `messageId` of `client`'s id waits for its PUBREL. */
  holds (client: { id: string }, messageId: number): boolean {
    return this.#held.get(client.id)?.has(messageId) === true
  }

  /** Takes a place for `messageId` at once; false, counted, past the bound (one sent again takes no new place). */
  admit (client: { id: string }, messageId: number): boolean {
    let held = this.#held.get(client.id)
    if (held === undefined) {
      held = new Set()
      this.#held.set(client.id, held)
    } else if (!held.has(messageId) && held.size >= this.#limit) {
      this.#hits.hit('max_inflight_inbound', { clientId: client.id })
      return false
    }
    held.add(messageId)
    return true
  }

  released (client: { id: string }, messageId: number): void {
    const held = this.#held.get(client.id)
    if (held === undefined) return
    held.delete(messageId)
    if (held.size === 0) this.#held.delete(client.id)
  }

  /** A session that starts clean: what earlier connections of its id left waiting goes from the store. */
  startClean (client: Client): Promise<void> {
    const held = this.#held.get(client.id)
    if (held === undefined) return Promise.resolve()
    this.#held.delete(client.id)
    return releaseIncoming(this.#broker, client.id, [...held])
  }
}

/** The window, on a host that keeps none of its own; undefined on one that does. */
export function boundInbound (broker: Aedes, hits: LimitHits): InboundWindow | undefined {
  if (typeof (broker as unknown as { maxInflightInbound?: unknown }).maxInflightInbound === 'number') return undefined
  const window = new InboundWindow(broker, MAX_INFLIGHT_INBOUND, hits)
  watchIncoming(broker, window)
  return window
}
