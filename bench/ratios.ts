/**
 * Per QoS and pair count, each variant against plain pub/sub, block by
 * block. Plain pub/sub is the mean of the block's two plain brokers, which
 * halves the weight of one broker's luck; the two against each other are
 * the A/A control.
 */
import type { Ratio, Spread, ThroughputCell, Variant } from './results.js'
import { pooled, spread } from './stats.js'

export function ratios (cells: ThroughputCell[]): Ratio[] {
  const out: Ratio[] = []
  const keys = new Set(cells.map((c) => `${c.qos}/${c.pairs}`))
  for (const key of keys) {
    const perBlock = (variant: Variant): number[] => {
      const cell = cells.find((c) => `${c.qos}/${c.pairs}` === key && c.variant === variant) as ThroughputCell
      return cell.together.map((runs) => pooled(runs).perCpuSecond)
    }
    const plain = perBlock('plain')
    const control = perBlock('control')
    const against = (values: number[], baseline: (b: number) => number): Spread => spread(values.map((value, b) => value / baseline(b)))
    const baseline = (b: number): number => ((plain[b] as number) + (control[b] as number)) / 2
    const [qos, pairs] = key.split('/').map(Number) as [0 | 1, number]
    out.push({
      qos,
      pairs,
      p2pVsPlain: against(perBlock('p2p'), baseline),
      pluginVsPlain: against(perBlock('plugin'), baseline),
      controlVsPlain: against(control, (b) => plain[b] as number)
    })
  }
  return out
}
