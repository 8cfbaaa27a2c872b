/** The few statistics the reports use. */
import { round } from './load.js'
import type { Spread } from './results.js'

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const half = Math.floor(sorted.length / 2)
  const upper = sorted[half]
  if (upper === undefined) throw new Error('no values')
  return sorted.length % 2 === 1 ? upper : (upper + (sorted[half - 1] as number)) / 2
}

/** Ratios from blocks of fresh processes: the median, and how far apart the blocks came out. */
export function spread (ratios: number[]): Spread {
  const blocks = ratios.map((r) => round(r, 3))
  return { median: round(median(blocks), 3), min: Math.min(...blocks), max: Math.max(...blocks), blocks }
}
