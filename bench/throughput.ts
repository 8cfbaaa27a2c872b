/**
 * Plain Aedes pub/sub, the same with the plugin installed, and P2P through
 * the plugin, compared per broker CPU-second. The brokers with the plugin
 * also take their connections through the CLI broker's own checks
 * (broker.ts --guarded), so the ratios carry every check the CLI adds.
 *
 * Each variant is a broker process of its own, and they run *at the same
 * time*, on one core, driven by one load generator on another core: whatever
 * the machine does during a round (a neighbour's load, the load generator's
 * garbage collection) it does to all of them. Run one after the other, the
 * same broker varies by ±10% from one second to the next on a shared 2-core
 * machine; side by side, by about ±2%.
 *
 * That leaves the processes themselves: two identical brokers can differ by
 * a few percent for as long as they live (where V8 happened to inline, how
 * the heap was laid out). So each block starts fresh processes, a ratio is
 * taken per block, and the figure reported is the median of the blocks.
 * Each block has two plain brokers: their mean is the baseline, and their
 * ratio to each other, the A/A control, shows how far apart two brokers that
 * differ in nothing come out of the same method.
 *
 * After the side-by-side rounds each variant also runs alone, for the
 * figures one broker reaches on its own: messages per second and latency.
 */
import type { TrafficOptions, Route } from './load.js'
import { Pairs } from './load.js'
import { VARIANTS, type MeasuredRun, type ThroughputCell, type Variant } from './results.js'
import { measure, runTogether, startAll, startBenchBroker, type BenchBroker } from './scenario.js'
import { pooled } from './stats.js'

export interface ThroughputSettings {
  qosLevels: ReadonlyArray<0 | 1>
  pairCounts: readonly number[]
  /** sets of fresh broker processes per QoS and pair count */
  blocks: number
  /** side-by-side rounds per block, each `traffic.durationMs` long */
  rounds: number
  /** the run each variant makes alone, per block */
  aloneMs: number
  warmupMs: number
  traffic: TrafficOptions
  /** the cores the brokers run on */
  cores: string | undefined
  profileDir: string | undefined
  /** every broker on Aedes 2 and every client speaking MQTT 5 */
  mqtt5: boolean
}

const VARIANT_LIST = Object.keys(VARIANTS) as Variant[]
const ROUTE: Record<Variant, Route> = { plain: 'pubsub', control: 'pubsub', plugin: 'pubsub', p2p: 'p2p' }
// the brokers with the plugin are guarded too (see above)
const PLUGIN: Record<Variant, boolean> = { plain: false, control: false, plugin: true, p2p: true }
// the control is only there for the side-by-side ratio
const ALONE: readonly Variant[] = ['plain', 'plugin', 'p2p']

interface Contestant { variant: Variant, broker: BenchBroker, clients: Pairs }

export async function throughput (settings: ThroughputSettings, progress: (line: string) => void): Promise<ThroughputCell[]> {
  const cells: ThroughputCell[] = []
  for (const qos of settings.qosLevels) {
    for (const pairs of settings.pairCounts) {
      const together = new Map<Variant, MeasuredRun[][]>(VARIANT_LIST.map((v) => [v, []]))
      const alone = new Map<Variant, MeasuredRun[]>(VARIANT_LIST.map((v) => [v, []]))
      for (let block = 0; block < settings.blocks; block++) {
        const runs = await runBlock(settings, qos, pairs, block)
        for (const variant of VARIANT_LIST) {
          together.get(variant)?.push(runs.together.get(variant) ?? [])
          const solo = runs.alone.get(variant)
          if (solo !== undefined) alone.get(variant)?.push(solo)
        }
        const plain = pooled(runs.together.get('plain') ?? [])
        progress(`qos ${qos}, ${pairs} pairs, block ${block + 1}/${settings.blocks}: ` + VARIANT_LIST.map((variant) => {
          const ratio = pooled(runs.together.get(variant) ?? []).perCpuSecond / plain.perCpuSecond
          return `${variant} ${ratio.toFixed(3)}`
        }).join(', ') + ' × plain per broker CPU-second')
      }
      for (const variant of VARIANT_LIST) {
        const byBlock = together.get(variant) ?? []
        const solo = alone.get(variant) ?? []
        cells.push({
          qos,
          pairs,
          variant,
          together: byBlock,
          alone: solo,
          togetherAll: pooled(byBlock.flat()),
          aloneAll: solo.length === 0 ? null : pooled(solo)
        })
      }
    }
  }
  return cells
}

async function runBlock (settings: ThroughputSettings, qos: 0 | 1, pairs: number, block: number): Promise<{ together: Map<Variant, MeasuredRun[]>, alone: Map<Variant, MeasuredRun> }> {
  const close = async ({ broker, clients }: Contestant): Promise<void> => {
    await clients.close()
    await broker.stop()
  }
  const contestants = await startAll(VARIANT_LIST.map((variant) => async (): Promise<Contestant> => {
    const broker = await startBenchBroker({ plugin: PLUGIN[variant], guarded: PLUGIN[variant], mqtt5: settings.mqtt5, role: variant, profileDir: settings.profileDir, cores: settings.cores })
    try {
      // the prefix keeps each block's client ids and topics apart in the reports
      const clients = await Pairs.connect({ port: broker.port, pairs, route: ROUTE[variant], qos, prefix: `${variant}-q${qos}-p${pairs}-b${block}-`, mqtt5: settings.mqtt5 })
      return { variant, broker, clients }
    } catch (err) {
      await broker.stop()
      throw err
    }
  }), close)
  try {
    const runs = await runTogether(contestants.map(({ broker, clients }) => ({ pids: [broker.pid], clients })), settings)
    const together = new Map(contestants.map(({ variant }, i) => [variant, runs[i] as MeasuredRun[]]))
    const alone = new Map<Variant, MeasuredRun>()
    // each block starts with a different variant, so none is always the first after the crowd
    for (let i = 0; i < ALONE.length; i++) {
      const variant = ALONE[(i + block) % ALONE.length] as Variant
      const { broker, clients } = contestants.find((c) => c.variant === variant) as Contestant
      alone.set(variant, await measure([broker.pid], clients, { ...settings.traffic, durationMs: settings.aloneMs }))
    }
    return { together, alone }
  } finally {
    await Promise.all(contestants.map(close))
  }
}
