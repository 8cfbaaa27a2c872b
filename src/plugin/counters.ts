/** What the plugin has done with P2P traffic since it was registered. */
import { LimitHits } from './limits.js'
import type { Logger } from './log.js'

export const DROP_REASONS = ['malformed', 'no_session', 'refused', 'queue_full', 'slow_consumer', 'expired', 'cluster_unavailable', 'too_large'] as const
export type DropReason = (typeof DROP_REASONS)[number]

export interface CounterSnapshot {
  /** P2P publishes seen, including those later dropped */
  received: number
  /** copies written to a target's connection (live or from its offline queue) */
  delivered: number
  /** messages stored for a target that was not connected, or not reading */
  queued: number
  /** cluster mode: messages handed to the shared emitter for a target not connected here */
  forwarded: number
  dropped: Record<DropReason, number>
  /** how often each limit bit (docs/behaviour.md §7), P2P and ordinary traffic alike, by its `[limits]` key */
  limits: Record<string, number>
}

export class Counters {
  received = 0
  delivered = 0
  queued = 0
  forwarded = 0
  readonly dropped = Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<DropReason, number>
  readonly limits: LimitHits

  constructor (log: Logger) {
    this.limits = new LimitHits(log)
  }

  snapshot (): CounterSnapshot {
    return {
      received: this.received,
      delivered: this.delivered,
      queued: this.queued,
      forwarded: this.forwarded,
      dropped: { ...this.dropped },
      limits: this.limits.snapshot()
    }
  }
}
