/**
 * The bound on every session queue (docs/behaviour.md §7): at most
 * `max_queued_messages` messages and `max_queued_bytes` payload bytes each,
 * for P2P and ordinary traffic alike. Past it, the newest message is refused.
 *
 * On a broker with a store of its own, all queues together hold at most
 * `max_queued_bytes_total`.
 *
 * The persistences have no cheap way to ask a queue's length, so each broker
 * counts what it adds and what it sees leave, after reading the queue from
 * the store the first time it queues for it (a run before this one may have
 * filled it). The count drifts: too high when another node (or a cleaned
 * session) emptied the queue unseen, too low when other nodes added to it.
 * So a queue that looks full is read back from the store before anything is
 * refused, and the count starts again from what the store holds. A recount
 * happens when half the bound has been admitted since the last one, or
 * RECOUNT_MS has passed: a target reading on another node is recounted as
 * often as its traffic needs, and a flood against a queue that is really
 * full costs one read per RECOUNT_MS. With several nodes a queue may so hold
 * up to the bound from each, at worst. Messages to a queue being read wait
 * for the count, in order.
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { Counters } from './counters.js'
import { propertiesWeight, type PublishProperties } from './headers.js'
import { queuedPackets, watchQueues, type Enqueue } from './host-store.js'
import type { PluginLimits } from './limits.js'
import type { Logger } from './log.js'

const RECOUNT_MS = 5000

interface Length {
  messages: number
  bytes: number
  /** when the store was last read for this queue, and what was admitted since */
  counted: number
  sinceMessages: number
  sinceBytes: number
  /** the read under way, which every admission to this queue waits for */
  recounting: Promise<void> | undefined
}

/**
 * Payload bytes, and what an MQTT 5 sender's properties weigh beside them
 * (a P2P message carries its own inside its payload); 0 for the PUBREL that
 * stands in the queue for a QoS 2 message once its PUBREC came.
 */
function sizeOf (packet: { payload?: AedesPublishPacket['payload'], properties?: PublishProperties | null }): number {
  const payload = packet.payload
  if (payload === undefined || payload === null) return 0
  return (typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length) + propertiesWeight(packet.properties)
}

export class Queues {
  readonly #broker: Aedes
  readonly #limits: PluginLimits
  readonly #counters: Counters
  readonly #lengths = new Map<string, Length>()
  /** the bytes of every queue this broker counts, together; bounded on a broker with a store of its own */
  #total = 0
  readonly #alone: boolean
  readonly #enqueue: Enqueue
  readonly #log: Logger

  constructor (broker: Aedes, limits: PluginLimits, counters: Counters, log: Logger, alone: boolean) {
    this.#alone = alone
    this.#broker = broker
    this.#log = log
    this.#limits = limits
    this.#counters = counters
    this.#enqueue = watchQueues(broker, {
      admit: (ids, packet) => this.#admitAll(ids, sizeOf(packet), packet.topic),
      cleared: (id, packet) => { this.#cleared(id, packet) }
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

  /** The ids whose queues take a message of `size` bytes; at once, unless one has to be read back from the store. */
  #admitAll (ids: string[], size: number, topic: string): string[] | Promise<string[]> {
    const taking: string[] = []
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string
      const length = this.#lengthOf(id)
      if (length.counted !== 0 && length.recounting === undefined && this.#fits(length, size)) {
        this.#count(length, size)
        taking.push(id)
        continue
      }
      // this one (full, or being read from the store), and the rest after it, in order
      return (async () => {
        for (const rest of ids.slice(i)) if (await this.#admit(rest, size, topic)) taking.push(rest)
        return taking
      })()
    }
    return taking
  }

  #count (length: Length, size: number): void {
    this.#total += size
    length.messages++
    length.bytes += size
    length.sinceMessages++
    length.sinceBytes += size
  }

  /** Counts the message in at once, so concurrent writes cannot pass the bound together. */
  async #admit (id: string, size: number, topic: string | undefined): Promise<boolean> {
    let length = this.#lengthOf(id)
    // a queue seen for the first time is read from the store first: it may hold what a run before this one queued
    if (length.recounting === undefined && (length.counted === 0 || !this.#fits(length, size)) && this.#mayRecount(length)) {
      const counting = length
      counting.recounting = this.#recount(id, counting).finally(() => { counting.recounting = undefined })
    }
    // messages to a queue being read wait for the count, and keep their order
    if (length.recounting !== undefined) {
      await length.recounting
      length = this.#lengthOf(id)
    }
    if (this.#fits(length, size)) {
      this.#count(length, size)
      return true
    }
    const limit = length.messages >= this.#limits.max_queued_messages
      ? 'max_queued_messages'
      : length.bytes + size > this.#limits.max_queued_bytes ? 'max_queued_bytes' : 'max_queued_bytes_total'
    // ordinary messages are counted here; a P2P one is also counted by the router as queue_full
    this.#counters.limits.hit(limit, topic === undefined ? { clientId: id } : { clientId: id, topic })
    return false
  }

  #lengthOf (id: string): Length {
    let length = this.#lengths.get(id)
    if (length === undefined) {
      length = { messages: 0, bytes: 0, counted: 0, sinceMessages: 0, sinceBytes: 0, recounting: undefined }
      this.#lengths.set(id, length)
    }
    return length
  }

  #mayRecount (length: Length): boolean {
    const { max_queued_messages: messages, max_queued_bytes: bytes } = this.#limits
    return Date.now() - length.counted >= RECOUNT_MS || length.sinceMessages * 2 >= messages || length.sinceBytes * 2 >= bytes
  }

  #fits (length: Length, size: number): boolean {
    const limits = this.#limits
    return length.messages < limits.max_queued_messages && length.bytes + size <= limits.max_queued_bytes &&
      (!this.#alone || this.#total + size <= limits.max_queued_bytes_total)
  }

  async #recount (id: string, length: Length): Promise<void> {
    length.counted = Date.now()
    length.sinceMessages = 0
    length.sinceBytes = 0
    let messages = 0
    let bytes = 0
    try {
      for await (const packet of queuedPackets(this.#broker, id)) {
        messages++
        bytes += sizeOf(packet)
      }
    } catch (err) {
      // the count stays as it was: a store that cannot be read is no reason to take more
      this.#log.warn({ err, clientId: id }, 'session queue could not be counted')
      return
    }
    this.#total += bytes - length.bytes
    length.messages = messages
    length.bytes = bytes
  }

  /**
   * A message left a queue. A QoS 2 message leaves as the PUBREL that took
   * its place once its PUBREC came, with no payload to tell its size: it is
   * taken to weigh what the queue's messages weigh on average, and the next
   * recount puts the bytes right.
   */
  #cleared (id: string, packet: AedesPublishPacket): void {
    if ((packet.cmd as string) !== 'pubrel') {
      this.#take(id, 1, sizeOf(packet))
      return
    }
    const length = this.#lengths.get(id)
    if (length !== undefined && length.messages > 0) this.#take(id, 1, Math.floor(length.bytes / length.messages))
  }

  /**
   * A queue's entry stays when it empties: one made again would be read from
   * the store again, at every message to a target that keeps up.
   */
  #take (id: string, messages: number, bytes: number): void {
    const length = this.#lengths.get(id)
    if (length === undefined) return
    const taken = Math.min(bytes, length.bytes)
    this.#total -= taken
    length.messages = Math.max(0, length.messages - messages)
    length.bytes -= taken
  }
}
