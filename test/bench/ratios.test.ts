import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ThroughputCell, Variant } from '../../bench/results.js'
import type { MeasuredRun } from '../../bench/scenario.js'
import { verdict } from '../../bench/report.js'
import { ratios } from '../../bench/throughput.js'

// a round that received `perCpuSecond` messages in one broker CPU-second
function run (perCpuSecond: number): MeasuredRun {
  return {
    sent: perCpuSecond,
    received: perCpuSecond,
    lost: 0,
    duplicates: 0,
    seconds: 1,
    messagesPerSecond: perCpuSecond,
    latencyMs: { p50: 1, p99: 2 },
    cpuSeconds: [1],
    perCpuSecond
  }
}

// per variant, the rounds of each block as messages per broker CPU-second
function cells (blocks: Record<Variant, number[][]>): ThroughputCell[] {
  return (Object.keys(blocks) as Variant[]).map((variant) => {
    const together = blocks[variant].map((rounds) => rounds.map(run))
    return { qos: 1, pairs: 10, variant, together, alone: [], togetherAll: run(0), aloneAll: null }
  })
}

describe('benchmark ratios', () => {
  it('compares each block with the mean of its own two plain brokers, and reports the median block', () => {
    const [ratio] = ratios(cells({
      plain: [[100], [200], [100]],
      control: [[100], [200], [300]],
      plugin: [[99], [190], [180]],
      p2p: [[120], [260], [300]]
    }))
    assert.deepEqual(ratio?.pluginVsPlain, { median: 0.95, min: 0.9, max: 0.99, blocks: [0.99, 0.95, 0.9] })
    assert.deepEqual(ratio?.p2pVsPlain, { median: 1.3, min: 1.2, max: 1.5, blocks: [1.2, 1.3, 1.5] })
    // the A/A control is one plain broker against the other
    assert.deepEqual(ratio?.controlVsPlain, { median: 1, min: 1, max: 3, blocks: [1, 1, 3] })
  })

  it('pools the rounds of a block before dividing', () => {
    const [ratio] = ratios(cells({
      plain: [[100, 300]],
      control: [[200, 200]],
      plugin: [[150, 250]],
      p2p: [[400, 400]]
    }))
    assert.equal(ratio?.pluginVsPlain.median, 1)
    assert.equal(ratio?.p2pVsPlain.median, 2)
  })
})

describe('benchmark verdicts', () => {
  const atLeast = (goal: number) => (ratio: number): boolean => ratio >= goal
  const spread = (blocks: number[]): { median: number, min: number, max: number, blocks: number[] } =>
    ({ median: [...blocks].sort((a, b) => a - b)[Math.floor(blocks.length / 2)] as number, min: Math.min(...blocks), max: Math.max(...blocks), blocks })

  it('judges five or more blocks by their median', () => {
    assert.equal(verdict(spread([0.95, 0.98, 0.99, 1.0, 1.01]), atLeast(0.97)), 'yes')
    assert.equal(verdict(spread([0.94, 0.95, 0.96, 0.99, 1.01]), atLeast(0.97)), '**no**')
  })

  it('settles fewer blocks only where all of them agree', () => {
    assert.equal(verdict(spread([0.98, 1.0]), atLeast(0.97)), 'yes')
    assert.equal(verdict(spread([0.9, 0.95]), atLeast(0.97)), '**no**')
    assert.match(verdict(spread([0.95, 1.0]), atLeast(0.97)), /^not settled by 2 blocks/)
  })

  it('asks fewer blocks to clear the goal by more than the A/A control strayed', () => {
    assert.match(verdict(spread([0.964, 0.967]), atLeast(0.97), 0.02), /^not settled/)
    assert.match(verdict(spread([0.98, 1.0]), atLeast(0.97), 0.02), /^not settled/)
    assert.equal(verdict(spread([1.2, 1.3]), atLeast(1), 0.02), 'yes')
    assert.equal(verdict(spread([0.9, 0.92]), atLeast(0.97), 0.02), '**no**')
    // the median decides once there are enough blocks
    assert.equal(verdict(spread([0.95, 0.98, 0.99, 1.0, 1.01]), atLeast(0.97), 0.05), 'yes')
  })
})
