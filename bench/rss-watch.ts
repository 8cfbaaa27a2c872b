/**
 * A broker's resident memory through an attack, read from /proc every 100 ms:
 * where it started, the highest it reached, and where it ended. The peak is
 * the figure that matters: a broker that grows by a gigabyte and gives it back
 * a second later needed that gigabyte.
 */
import { rssBytes } from '../harness/proc.js'

export interface RssSeen {
  /** bytes when the watch began */
  before: number
  /** the highest sample */
  peak: number
  /** the last sample taken: when the watch ended, or the last before the process was gone */
  after: number
}

export interface RssWatch {
  stop (): RssSeen
}

const EVERY_MS = 100

/** Throws if the process is gone already. */
export function watchRss (pid: number): RssWatch {
  const seen: RssSeen = { before: rssBytes(pid), peak: 0, after: 0 }
  seen.peak = seen.after = seen.before
  let gone = false
  const sample = (): void => {
    if (gone) return
    try {
      const now = rssBytes(pid)
      seen.after = now
      if (now > seen.peak) seen.peak = now
    } catch {
      gone = true
    }
  }
  const timer = setInterval(sample, EVERY_MS)
  return {
    stop () {
      clearInterval(timer)
      sample()
      return { ...seen }
    }
  }
}
