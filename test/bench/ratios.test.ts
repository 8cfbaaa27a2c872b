import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { describe, it } from 'node:test'
import { ratios } from '../../bench/ratios.js'
import { verdict } from '../../bench/report.js'
import type { MeasuredRun, ThroughputCell, Variant } from '../../bench/results.js'

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

// the bench's entry points, which do their work as soon as they load
const ENTRY_POINTS = new Set(['run.js', 'broker.js', 'idle.js', 'scale.js'])
const BENCH = new URL('../../bench/', import.meta.url)

// Runs in a fresh Node, so no module is cached yet: every child_process
// function that starts a process is swapped, before anything loads, for one
// that records the call and fails; then each module given is imported.
const PROBE = `
import childProcess from 'node:child_process'
import { syncBuiltinESMExports } from 'node:module'
const started = []
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  childProcess[name] = (command) => { started.push(name + ' ' + command); throw new Error('started a process') }
}
syncBuiltinESMExports()
const failed = []
for (const url of process.argv.slice(1)) {
  try { await import(url) } catch (err) { failed.push(url + ': ' + err.message) }
}
console.log(JSON.stringify({ started, failed }))
`

describe('bench modules', () => {
  it('start no process when imported, so the analysis can be tested anywhere', () => {
    const modules = readdirSync(BENCH).filter((file) => file.endsWith('.js') && !ENTRY_POINTS.has(file))
    // the two that used to ask taskset and getconf as they loaded; proc.js is shared with the tests
    assert.ok(modules.includes('cores.js'))
    const urls = [...modules.map((file) => new URL(file, BENCH).href), new URL('../../harness/proc.js', import.meta.url).href]
    const out = execFileSync(process.execPath, ['--input-type=module', '--eval', PROBE, '--', ...urls], { encoding: 'utf8' })
    assert.deepEqual(JSON.parse(out), { started: [], failed: [] })
  })
})
