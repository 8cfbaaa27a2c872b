/**
 * The bound on every session queue (docs/behaviour.md §7): at most
 * `max_queued_messages` messages and `max_queued_bytes` payload bytes each,
 * for P2P and ordinary traffic alike. Past it, the newest message is refused.
 *
 * The persistences have no cheap way to ask a queue's length, so each broker
 * counts what it adds and what it sees leave. Its count can only be too high
 * (another node, or a session cleaned, emptied the queue without it seeing),
 * so a queue that looks full is read back from the store before anything is
 * refused — at most once per RECOUNT_MS for each session, so a flood against
 * a full queue cannot turn into a flood of reads.
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { Counters } from './counters.js'
import { queuedPackets, watchQueues, type Enqueue } from './host-store.js'
import type { PluginLimits } from './limits.js'

const RECOUNT_MS = 5000

interface Length {
  messages: number
  bytes: number
  /** when the store was last read for this queue */
  counted: number
}

/** Payload bytes; 0 for the PUBREL that stands in the queue for a QoS 2 message once its PUBREC came. */
function sizeOf (packet: { payload?: AedesPublishPacket['payload'] }): number {
  const payload = packet.payload
  if (payload === undefined || payload === null) return 0
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
}

export class Queues {
  readonly #broker: Aedes
  readonly #limits: PluginLimits
  readonly #counters: Counters
  readonly #lengths = new Map<string, Length>()
  readonly #enqueue: Enqueue

  constructor (broker: Aedes, limits: PluginLimits, counters: Counters) {
    this.#broker = broker
    this.#limits = limits
    this.#counters = counters
    this.#enqueue = watchQueues(broker, {
      admit: async (ids, packet) => {
        const size = sizeOf(packet)
        const taking: string[] = []
        for (const id of ids) if (await this.#admit(id, size, packet.topic)) taking.push(id)
        return taking
      },
      cleared: (id, packet) => { this.#take(id, 1, sizeOf(packet)) }
    })
  }

  /** Queues a P2P message's channel packet; false when the target's queue is full. */
  async enqueue (clientId: string, packet: AedesPublishPacket): Promise<boolean> {
    if (!await this.#admit(clientId, sizeOf(packet), undefined)) return false
    try {
      await this.#enqueue(clientId, packet)
    } catch (err) {
      this.#take(clientId, 1, sizeOf(packet))
      throw err
    }
    return true
  }

  /** Counts the message in at once, so concurrent writes cannot pass the bound together. */
  async #admit (id: string, size: number, topic: string | undefined): Promise<boolean> {
    let length = this.#lengths.get(id)
    if (length === undefined) {
      length = { messages: 0, bytes: 0, counted: 0 }
      this.#lengths.set(id, length)
    }
    if (this.#fits(length, size)) {
      length.messages++
      length.bytes += size
      return true
    }
    const now = Date.now()
    if (now - length.counted >= RECOUNT_MS) {
      length.counted = now
      await this.#recount(id, length)
      if (this.#fits(length, size)) {
        length.messages++
        length.bytes += size
        return true
      }
    }
    const limit = length.messages >= this.#limits.max_queued_messages ? 'max_queued_messages' : 'max_queued_bytes'
    // ordinary messages are counted here; a P2P one is also counted by the router as queue_full
    this.#counters.limits.hit(limit, topic === undefined ? { clientId: id } : { clientId: id, topic })
    return false
  }

  #fits (length: Length, size: number): boolean {
    return length.messages < this.#limits.max_queued_messages && length.bytes + size <= this.#limits.max_queued_bytes
  }

  async #recount (id: string, length: Length): Promise<void> {
    let messages = 0
    let bytes = 0
    for await (const packet of queuedPackets(this.#broker, id)) {
      messages++
      bytes += sizeOf(packet)
    }
    length.messages = messages
    length.bytes = bytes
  }

  #take (id: string, messages: number, bytes: number): void {
    const length = this.#lengths.get(id)
    if (length === undefined) return
    length.messages -= messages
    length.bytes -= bytes
    if (length.messages <= 0 || length.bytes < 0) this.#lengths.delete(id)
  }
}
