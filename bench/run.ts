/**
 * The benchmark: plain Aedes publish/subscribe, the same with the plugin
 * installed, and P2P through the plugin, side by side in one invocation,
 * then idle clients, memory per client, the Redis cluster, and the topic
 * parser on its own.
 *
 *   npm run bench                 quick, under two minutes
 *   npm run bench -- --long       longer and more rounds
 *   npm run bench -- --only throughput --only cluster
 *                                 some parts only: parsing, throughput, idle, cluster
 *   npm run bench -- --profile DIR
 *                                 single-node brokers write CPU profiles (node --cpu-prof) to DIR
 *
 * Writes bench/results/<quick|long>.{json,md,svg}.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { clusterBench } from './cluster.js'
import { Pairs, round, type Route, type TrafficOptions } from './load.js'
import { chart, markdown } from './report.js'
import { VARIANTS, type IdleResult, type MemoryResult, type Ratio, type Results, type ThroughputCell, type Variant } from './results.js'
import { measure, startBenchBroker, startIdle, traffic, type BenchBroker, type MeasuredRun } from './scenario.js'
import { topicParsing } from './topic-parse.js'

const PARTS = ['parsing', 'throughput', 'idle', 'cluster'] as const
const { values: flags } = parseArgs({ options: { long: { type: 'boolean', default: false }, only: { type: 'string', multiple: true }, profile: { type: 'string' } } })
const only = flags.only ?? [...PARTS]
for (const part of only) {
  if (!(PARTS as readonly string[]).includes(part)) {
    console.error(`unknown part "${part}"; the parts are: ${PARTS.join(', ')}`)
    process.exit(2)
  }
}
const wanted = (part: (typeof PARTS)[number]): boolean => only.includes(part)
const mode = flags.long ? 'long' : 'quick'
const settings = flags.long
  ? { durationMs: 5000, steadyMs: 10_000, warmupMs: 2000, rounds: 6, idleClients: 10_000, clusterIdle: [0, 1000, 10_000], clusterQos: [0, 1] as Array<0 | 1> }
  : { durationMs: 1000, steadyMs: 2000, warmupMs: 500, rounds: 3, idleClients: 10_000, clusterIdle: [0, 10_000], clusterQos: [1] as Array<0 | 1> }
// short rounds for the side-by-side comparison; single longer runs elsewhere
const trafficOptions: TrafficOptions = { payloadBytes: 64, window: 10, durationMs: settings.durationMs, prerollMs: 250 }
const steadyOptions: TrafficOptions = { ...trafficOptions, durationMs: settings.steadyMs }
const began = Date.now()
const progress = (line: string): void => { console.error(`[${Math.round((Date.now() - began) / 1000)} s] ${line}`) }

// the side-by-side matrix
const QOS_LEVELS = [0, 1] as const
const PAIR_COUNTS = [10, 100]

const route: Record<Variant, Route> = { plain: 'pubsub', plugin: 'pubsub', p2p: 'p2p' }

// Each variant has a broker process of its own, the same but for the plugin,
// so that ordinary traffic with the plugin is measured without P2P traffic
// beside it. Per QoS and pair count, all three stay connected and take turns,
// so a noisy moment on a shared machine hurts them alike.
async function throughput (): Promise<ThroughputCell[]> {
  const brokers: Record<Variant, BenchBroker> = {
    plain: await startBenchBroker('plain', false, flags.profile),
    plugin: await startBenchBroker('plugin-pubsub', true, flags.profile),
    p2p: await startBenchBroker('plugin-p2p', true, flags.profile)
  }
  const variants = Object.keys(VARIANTS) as Variant[]
  const cells: ThroughputCell[] = []
  try {
    for (const qos of QOS_LEVELS) {
      for (const pairs of PAIR_COUNTS) {
        const connected = new Map<Variant, Pairs>()
        try {
          for (const variant of variants) {
            const broker = brokers[variant]
            const clients = await Pairs.connect({ port: broker.port, pairs, route: route[variant], qos, prefix: `${variant}-q${qos}-p${pairs}-` })
            connected.set(variant, clients)
            await clients.run({ ...trafficOptions, durationMs: settings.warmupMs })
          }
          const runs: Record<Variant, MeasuredRun[]> = { plain: [], plugin: [], p2p: [] }
          for (let round = 0; round < settings.rounds; round++) {
            // each round starts with a different variant: none always follows an idle moment
            for (let v = 0; v < variants.length; v++) {
              const variant = variants[(v + round) % variants.length] as Variant
              runs[variant].push(await measure([brokers[variant].pid], connected.get(variant) as Pairs, trafficOptions))
            }
          }
          for (const variant of variants) {
            const cell = { qos, pairs, variant, runs: runs[variant], all: pooled(runs[variant]) }
            cells.push(cell)
            progress(`qos ${qos}, ${pairs} pairs, ${VARIANTS[variant]}: ${cell.all.messagesPerSecond} msg/s, ${cell.all.perCpuSecond} per broker CPU-second, lost ${cell.all.lost}`)
          }
        } finally {
          await Promise.all([...connected.values()].map((clients) => clients.close()))
        }
      }
    }
  } finally {
    await Promise.all(variants.map((variant) => brokers[variant].stop()))
  }
  return cells
}

// All rounds of a variant taken as one run: messages over CPU seconds, summed,
// which is steadier than any one round; latency is the median round's.
function pooled (runs: MeasuredRun[]): MeasuredRun {
  const sum = (get: (run: MeasuredRun) => number): number => runs.reduce((total, run) => total + get(run), 0)
  const received = sum((run) => run.received)
  const seconds = sum((run) => run.seconds)
  const cpu = sum((run) => run.cpuSeconds[0] as number)
  const byLatency = [...runs].sort((a, b) => a.latencyMs.p50 - b.latencyMs.p50)
  const middle = byLatency[Math.floor(runs.length / 2)] as MeasuredRun
  return {
    sent: sum((run) => run.sent),
    received,
    lost: sum((run) => run.lost),
    duplicates: sum((run) => run.duplicates),
    seconds: round(seconds, 3),
    messagesPerSecond: Math.round(received / seconds),
    latencyMs: middle.latencyMs,
    cpuSeconds: [round(cpu, 2)],
    perCpuSecond: Math.round(received / cpu)
  }
}

function ratios (cells: ThroughputCell[]): Ratio[] {
  const out: Ratio[] = []
  for (const qos of QOS_LEVELS) {
    for (const pairs of PAIR_COUNTS) {
      const cell = (variant: Variant): number | undefined => cells.find((c) => c.qos === qos && c.pairs === pairs && c.variant === variant)?.all.perCpuSecond
      const [plain, plugin, p2p] = [cell('plain'), cell('plugin'), cell('p2p')]
      // none when the throughput part was not run
      if (plain === undefined || plugin === undefined || p2p === undefined) continue
      out.push({ qos, pairs, p2pVsPlain: round(p2p / plain, 3), pluginVsPlain: round(plugin / plain, 3) })
    }
  }
  return out
}

// Fresh brokers, so the memory figure is the clients' and not earlier runs'.
// The plugin's broker then runs P2P with the idle clients connected, and
// again once they are gone.
async function idleAndMemory (): Promise<{ idle: IdleResult[], memory: MemoryResult }> {
  const count = settings.idleClients
  const pairs = 10
  const withIdle = async (broker: BenchBroker, during: () => Promise<void>): Promise<number> => {
    const before = await broker.settledRss()
    const idle = await startIdle([broker.port], count, 'idle-')
    try {
      const after = await broker.settledRss()
      await during()
      return Math.round((after - before) / count)
    } finally {
      await idle.stop()
    }
  }

  const plain = await startBenchBroker('idle-plain', false, flags.profile)
  const plainBytes = await withIdle(plain, async () => undefined).finally(() => plain.stop())

  const plugin = await startBenchBroker('idle-plugin', true, flags.profile)
  try {
    const run = (qos: 0 | 1, tag: string): Promise<MeasuredRun> =>
      traffic([plugin.pid], { port: plugin.port, pairs, route: 'p2p', qos, prefix: `idle-${tag}-q${qos}-` }, steadyOptions, settings.warmupMs)
    const busy: MeasuredRun[] = []
    const pluginBytes = await withIdle(plugin, async () => {
      for (const qos of QOS_LEVELS) busy.push(await run(qos, 'many'))
    })
    const idle: IdleResult[] = []
    for (const qos of QOS_LEVELS) {
      const without = await run(qos, 'none')
      const withClients = busy[qos] as MeasuredRun
      idle.push({
        qos,
        pairs,
        idleClients: count,
        without,
        with: withClients,
        perCpuSecondRatio: round(withClients.perCpuSecond / without.perCpuSecond, 3),
        messagesPerSecondRatio: round(withClients.messagesPerSecond / without.messagesPerSecond, 3)
      })
      progress(`P2P qos ${qos}: ${withClients.messagesPerSecond} msg/s with ${count} idle clients, ${without.messagesPerSecond} with none`)
    }
    const memory = { idleClients: count, plainBytesPerClient: plainBytes, pluginBytesPerClient: pluginBytes, ratio: round(pluginBytes / plainBytes, 3) }
    progress(`memory per idle client: ${plainBytes} B plain, ${pluginBytes} B with the plugin`)
    return { idle, memory }
  } finally {
    await plugin.stop()
  }
}

const parsing = wanted('parsing') ? topicParsing(flags.long ? 20_000_000 : 2_000_000) : []
const cells = wanted('throughput') ? await throughput() : []
const { idle, memory } = wanted('idle') ? await idleAndMemory() : { idle: [], memory: null }
const cluster = !wanted('cluster')
  ? null
  : await clusterBench({ pairs: 10, qos: settings.clusterQos, idleClients: settings.clusterIdle, traffic: steadyOptions, warmupMs: settings.warmupMs }, progress)
const cpu = cpus()
const results: Results = {
  mode,
  command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
  date: new Date().toISOString(),
  machine: { cpus: cpu.length, model: cpu[0]?.model ?? 'unknown', node: process.version },
  traffic: { ...trafficOptions, steadyMs: settings.steadyMs, warmupMs: settings.warmupMs, rounds: settings.rounds },
  throughput: cells,
  ratios: ratios(cells),
  idle,
  memory,
  cluster,
  topicParsing: parsing
}
const dir = new URL('../../bench/results/', import.meta.url)
await mkdir(dir, { recursive: true })
await writeFile(new URL(`${mode}.json`, dir), JSON.stringify(results, null, 2) + '\n')
await writeFile(new URL(`${mode}.md`, dir), markdown(results))
if (cells.length > 0) await writeFile(new URL(`${mode}.svg`, dir), chart(results))
console.log(markdown(results))
progress(`done; results in bench/results/${mode}.{json,md,svg}`)
