/**
 * Follows the MQTT packets in a byte stream by their fixed headers alone —
 * the type byte and the remaining length — so that a packet announcing more
 * than the limit is refused before its body is read, let alone buffered.
 * It costs a few steps per packet, not per byte: bodies are skipped.
 */

/** What scan() says about a chunk. */
export const FITS = -1

export class PacketSizes {
  readonly #max: number
  /** body bytes of the current packet still to come */
  #skip = 0
  /** in a fixed header: 0 before the type byte, else 1 + the length bytes read so far */
  #header = 0
  #length = 0
  #multiplier = 1

  constructor (max: number) {
    this.#max = max
  }

  /**
   * Reads one more chunk of the stream. Returns FITS, or the size of the
   * first packet larger than the limit (its fixed header included). A
   * malformed length is the MQTT parser's to report.
   */
  scan (chunk: Uint8Array): number {
    const end = chunk.length
    let at = 0
    while (at < end) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, end - at)
        this.#skip -= take
        at += take
        continue
      }
      if (this.#header === 0) {
        // the type byte
        this.#header = 1
        this.#length = 0
        this.#multiplier = 1
        at++
        continue
      }
      const byte = chunk[at++] as number
      this.#length += (byte & 0x7f) * this.#multiplier
      this.#multiplier *= 128
      this.#header++
      if ((byte & 0x80) !== 0 && this.#header <= 4) continue
      // the length is complete (or malformed: longer than 4 bytes, which the parser refuses)
      const size = this.#header + this.#length
      this.#header = 0
      if (size > this.#max) return size
      this.#skip = this.#length
    }
    return FITS
  }
}
