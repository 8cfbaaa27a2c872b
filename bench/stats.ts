/**
 * The arithmetic the bench does on what it measured: pure functions, so the
 * reports and their tests load without starting anything.
 */
import type { MeasuredRun, Spread } from './results.js'

export function round (value: number, digits: number): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

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

/**
 * Several runs taken as one: messages over CPU seconds, each summed, which
 * weighs a run by its length; latency is the median run's.
 */
export function pooled (runs: MeasuredRun[]): MeasuredRun {
  const sum = (get: (run: MeasuredRun) => number): number => runs.reduce((total, run) => total + get(run), 0)
  const received = sum((run) => run.received)
  const seconds = sum((run) => run.seconds)
  const cpu = runs[0]?.cpuSeconds.map((_, i) => sum((run) => run.cpuSeconds[i] as number)) ?? []
  const byLatency = [...runs].sort((a, b) => a.latencyMs.p50 - b.latencyMs.p50)
  const middle = byLatency[Math.floor(runs.length / 2)]
  if (middle === undefined) throw new Error('no runs to pool')
  return {
    sent: sum((run) => run.sent),
    received,
    lost: sum((run) => run.lost),
    duplicates: sum((run) => run.duplicates),
    seconds: round(seconds, 3),
    messagesPerSecond: Math.round(received / seconds),
    latencyMs: middle.latencyMs,
    cpuSeconds: cpu.map((c) => round(c, 4)),
    perCpuSecond: Math.round(received / (cpu[0] as number))
  }
}
