/**
 * What a catch-up (pending.ts) remembers: the keys of the queued messages
 * it has sent, newest first in two generations. A key only matters until
 * the message's packet id is in the queue, which is a moment after it is
 * sent, so the older generation goes once the newer one is full. A reader
 * that stays behind for hours holds at most two generations.
 */
export class Sent {
  #newer = new Set<string>()
  #older = new Set<string>()
  readonly #generation: number

  constructor (generation: number) {
    this.#generation = generation
  }

  add (key: string): void {
    if (this.#newer.size >= this.#generation) {
      this.#older = this.#newer
      this.#newer = new Set()
    }
    this.#newer.add(key)
  }

  has (key: string): boolean {
    return this.#newer.has(key) || this.#older.has(key)
  }

  /** true if it was there */
  delete (key: string): boolean {
    return this.#newer.delete(key) || this.#older.delete(key)
  }

  clear (): void {
    this.#newer.clear()
    this.#older.clear()
  }

  get size (): number {
    return this.#newer.size + this.#older.size
  }
}
