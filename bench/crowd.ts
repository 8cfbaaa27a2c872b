/**
 * What connected clients cost: memory per client with and without the
 * plugin, and whether messages get dearer as idle clients pile up.
 *
 * Each block starts four fresh brokers on one core: P2P through the plugin
 * and, for reference, plain Aedes pub/sub, each once holding the idle
 * clients and once holding none. All four carry traffic at the same moment,
 * so "with" against "without" is the idle clients' effect and not the
 * machine's mood; fresh processes per block and the median of the blocks
 * keep one process's luck out of it, as in the throughput part.
 */
import { Pairs, type Route, type TrafficOptions } from './load.js'
import type { IdleResult, MeasuredRun, MemoryResult } from './results.js'
import { runTogether, startAll, startBenchBroker, startIdle, type BenchBroker } from './scenario.js'
import { median, pooled, spread } from './stats.js'

export interface CrowdSettings {
  idleClients: number
  pairs: number
  qosLevels: ReadonlyArray<0 | 1>
  blocks: number
  /** side-by-side rounds per QoS and block, each `traffic.durationMs` long */
  rounds: number
  warmupMs: number
  traffic: TrafficOptions
  cores: string | undefined
  profileDir: string | undefined
  /** every broker on Aedes 2 and every client, idle or not, speaking MQTT 5 */
  mqtt5: boolean
}

interface Broker { route: Route, crowded: boolean, broker: BenchBroker }
interface PerClient { rss: number, heap: number }
interface BlockResult {
  /** memory gained per idle client, by route */
  perClient: Record<Route, PerClient>
  /** per QoS and route, the pooled rounds with the idle clients and without */
  runs: Array<{ qos: 0 | 1, route: Route, with: MeasuredRun, without: MeasuredRun }>
}

const ROUTES: readonly Route[] = ['p2p', 'pubsub']

export async function crowd (settings: CrowdSettings, progress: (line: string) => void): Promise<{ idle: IdleResult[], memory: MemoryResult }> {
  const blocks: BlockResult[] = []
  for (let block = 0; block < settings.blocks; block++) {
    const result = await runBlock(settings, block)
    blocks.push(result)
    progress(`idle clients, block ${block + 1}/${settings.blocks}: ` + result.runs.map((run) =>
      `${run.route} qos ${run.qos} ${(run.with.perCpuSecond / run.without.perCpuSecond).toFixed(3)}×`).join(', ') +
      ` per broker CPU-second with ${settings.idleClients} idle clients vs none; ` +
      `RSS ${result.perClient.pubsub.rss} B per client plain, ${result.perClient.p2p.rss} B with the plugin`)
  }

  const idle: IdleResult[] = []
  for (const qos of settings.qosLevels) {
    for (const route of ROUTES) {
      const runs = blocks.map((b) => b.runs.find((r) => r.qos === qos && r.route === route) as BlockResult['runs'][number])
      idle.push({
        qos,
        pairs: settings.pairs,
        idleClients: settings.idleClients,
        route,
        with: pooled(runs.map((r) => r.with)),
        without: pooled(runs.map((r) => r.without)),
        perCpuSecondRatio: spread(runs.map((r) => r.with.perCpuSecond / r.without.perCpuSecond)),
        messagesPerSecondRatio: spread(runs.map((r) => r.with.messagesPerSecond / r.without.messagesPerSecond))
      })
    }
  }
  const of = (route: Route, what: keyof PerClient): number => Math.round(median(blocks.map((b) => b.perClient[route][what])))
  const memory: MemoryResult = {
    idleClients: settings.idleClients,
    plainBytesPerClient: of('pubsub', 'rss'),
    pluginBytesPerClient: of('p2p', 'rss'),
    ratio: spread(blocks.map((b) => b.perClient.p2p.rss / b.perClient.pubsub.rss)),
    plainHeapBytesPerClient: of('pubsub', 'heap'),
    pluginHeapBytesPerClient: of('p2p', 'heap'),
    heapRatio: spread(blocks.map((b) => b.perClient.p2p.heap / b.perClient.pubsub.heap))
  }
  return { idle, memory }
}

async function runBlock (settings: CrowdSettings, block: number): Promise<BlockResult> {
  const brokers = await startAll(ROUTES.flatMap((route) => [true, false].map((crowded) => async (): Promise<Broker> => {
    const broker = await startBenchBroker({
      plugin: route === 'p2p',
      mqtt5: settings.mqtt5,
      role: `idle-${route}-${crowded ? 'with' : 'without'}`,
      profileDir: settings.profileDir,
      cores: settings.cores
    })
    return { route, crowded, broker }
  })), ({ broker }) => broker.stop())
  try {
    const of = (route: Route, crowded: boolean): BenchBroker =>
      (brokers.find((b) => b.route === route && b.crowded === crowded) as Broker).broker
    const holders = ROUTES.map((route) => of(route, true))
    // fresh brokers: what they gain is the clients', not earlier traffic's
    const before = await Promise.all(holders.map((broker) => broker.settledMemory()))
    const idle = await Promise.all(holders.map((broker, i) => startIdle([broker.port], settings.idleClients, `idle-b${block}-${i}-`, settings.mqtt5)))
    try {
      const after = await Promise.all(holders.map((broker) => broker.settledMemory()))
      const gained = (i: number, what: keyof PerClient): number =>
        Math.round(((after[i] as PerClient)[what] - (before[i] as PerClient)[what]) / settings.idleClients)
      const perClient = (i: number): PerClient => ({ rss: gained(i, 'rss'), heap: gained(i, 'heap') })
      const runs: BlockResult['runs'] = []
      for (const qos of settings.qosLevels) {
        const measured = await sideBySide(brokers, qos, block, settings)
        for (const route of ROUTES) {
          const get = (crowded: boolean): MeasuredRun => measured.get(of(route, crowded)) as MeasuredRun
          runs.push({ qos, route, with: get(true), without: get(false) })
        }
      }
      return { perClient: { p2p: perClient(0), pubsub: perClient(1) }, runs }
    } finally {
      await Promise.all(idle.map((clients) => clients.stop()))
    }
  } finally {
    await Promise.all(brokers.map(({ broker }) => broker.stop()))
  }
}

// every broker gets its own pairs and all of them run at once
async function sideBySide (brokers: Broker[], qos: 0 | 1, block: number, settings: CrowdSettings): Promise<Map<BenchBroker, MeasuredRun>> {
  const clients = await Promise.all(brokers.map(({ route, crowded, broker }) => Pairs.connect({
    port: broker.port,
    pairs: settings.pairs,
    route,
    qos,
    prefix: `idle-${route}-${crowded ? 'with' : 'without'}-q${qos}-b${block}-`,
    mqtt5: settings.mqtt5
  })))
  try {
    const runs = await runTogether(brokers.map(({ broker }, i) => ({ pids: [broker.pid], clients: clients[i] as Pairs })), settings)
    return new Map(brokers.map(({ broker }, i) => [broker, pooled(runs[i] as MeasuredRun[])]))
  } finally {
    await Promise.all(clients.map((c) => c.close()))
  }
}
