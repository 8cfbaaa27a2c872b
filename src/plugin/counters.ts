/** What the plugin has done with P2P traffic since it was registered. */
export const DROP_REASONS = ['malformed', 'no_session', 'refused'] as const
export type DropReason = (typeof DROP_REASONS)[number]

export interface CounterSnapshot {
  /** P2P publishes seen, including those later dropped */
  received: number
  /** copies written to a target's connection (live or from its offline queue) */
  delivered: number
  /** messages stored for a target that was not connected */
  queued: number
  /** cluster mode: messages handed to the shared emitter for a target not connected here */
  forwarded: number
  dropped: Record<DropReason, number>
}

export class Counters {
  received = 0
  delivered = 0
  queued = 0
  forwarded = 0
  readonly dropped: Record<DropReason, number> = { malformed: 0, no_session: 0, refused: 0 }

  snapshot (): CounterSnapshot {
    return { received: this.received, delivered: this.delivered, queued: this.queued, forwarded: this.forwarded, dropped: { ...this.dropped } }
  }
}
