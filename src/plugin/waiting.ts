/**
 * What the router holds while it waits: P2P messages waiting on the store,
 * the cluster, or a check that answers later (docs/behaviour.md §7,
 * `[cluster] max_buffered_*`). Counted by their weight (headers.ts), the
 * payload and what an MQTT 5 sender put beside it.
 */
export type Bound = 'max_buffered_messages' | 'max_buffered_bytes'

export class Waiting {
  #messages = 0
  #bytes = 0
  readonly #maxMessages: number
  readonly #maxBytes: number

  constructor (maxMessages: number, maxBytes: number) {
    this.#maxMessages = maxMessages
    this.#maxBytes = maxBytes
  }

  /** The bound one more message of `weight` bytes would pass; null when it fits. */
  full (weight: number): Bound | null {
    if (this.#messages >= this.#maxMessages) return 'max_buffered_messages'
    return this.#bytes + weight > this.#maxBytes ? 'max_buffered_bytes' : null
  }

  add (weight: number): void {
    this.#messages++
    this.#bytes += weight
  }

  remove (weight: number): void {
    this.#messages--
    this.#bytes -= weight
  }
}
