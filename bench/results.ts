/** The shape of a benchmark run's results, as written to JSON. */
import type { ClusterRun } from './cluster.js'
import type { Route, TrafficOptions, TrafficResult } from './load.js'
import type { Bound, Sent } from './pour.js'
import type { RssSeen } from './rss-watch.js'
import type { TopicParseResult } from './topic-parse.js'

/** One run of traffic, with the CPU the processes under test used during it. */
export interface MeasuredRun extends TrafficResult {
  /** CPU seconds each measured process used during the run, in the order given */
  cpuSeconds: number[]
  /** messages received per CPU second of the first process */
  perCpuSecond: number
}

export type Variant = 'plain' | 'control' | 'plugin' | 'p2p'
export const VARIANTS: Record<Variant, string> = {
  plain: 'pub/sub, plain Aedes',
  control: 'pub/sub, plain Aedes, a second broker',
  plugin: 'pub/sub, plugin installed',
  p2p: 'P2P through the plugin'
}

export interface ThroughputCell {
  qos: 0 | 1
  pairs: number
  variant: Variant
  /** per block, the rounds run at the same time as the other variants */
  together: MeasuredRun[][]
  /** per block, one run while the other variants' brokers sat idle (none for the control) */
  alone: MeasuredRun[]
  /** the rounds of `together`, and the runs of `alone`, each pooled into one */
  togetherAll: MeasuredRun
  aloneAll: MeasuredRun | null
}

/** A ratio from blocks of fresh broker processes: its median, and the spread between blocks. */
export interface Spread { median: number, min: number, max: number, blocks: number[] }

/**
 * Messages per broker CPU-second side by side, against plain Aedes pub/sub
 * (the mean of two plain brokers); `controlVsPlain` is one plain broker
 * against the other.
 */
export interface Ratio { qos: 0 | 1, pairs: number, p2pVsPlain: Spread, pluginVsPlain: Spread, controlVsPlain: Spread }

/**
 * Brokers side by side, one holding the idle clients and one holding none:
 * P2P through the plugin, and plain Aedes pub/sub for reference.
 */
export interface IdleResult {
  qos: 0 | 1
  pairs: number
  idleClients: number
  route: Route
  /** pooled over the blocks */
  with: MeasuredRun
  without: MeasuredRun
  perCpuSecondRatio: Spread
  messagesPerSecondRatio: Spread
}
/**
 * What fresh brokers gain per idle client, the medians of the blocks: RSS
 * (the target), and the JavaScript heap in use after a full collection,
 * which moves less from one broker to the next but misses native memory.
 * The ratios, plugin over plain, are taken block by block.
 */
export interface MemoryResult {
  idleClients: number
  plainBytesPerClient: number
  pluginBytesPerClient: number
  ratio: Spread
  plainHeapBytesPerClient: number
  pluginHeapBytesPerClient: number
  heapRatio: Spread
}

/** What the CLI broker's limits counted: mqtt_limit_hits_total by limit, p2p_messages_dropped_total by reason (above zero). */
export interface HostileCounts {
  limits: Record<string, number>
  dropped: Record<string, number>
}

/** One broker put through one attack. */
export interface HostileOutcome {
  /** RSS in bytes: before the attack, its peak (sampled every 100 ms) during it and the second after, and at the end */
  rss: RssSeen
  /** what the attacker got into its connections before the bound, or the broker, stopped it */
  sent: Sent
  /** null if the broker lived through it; otherwise how it ended (exit code or signal, and the end of its stderr) */
  died: string | null
  /** null for plain Aedes, which counts nothing, or a broker that died */
  counted: HostileCounts | null
  /** what else the attack measured, in words: a time to CONNACK, the other node's RSS */
  notes: string[]
  /** figures the targets are read from, by name: `answerMs` (Redis away: the slower node's answer to a new client) */
  measured: Record<string, number>
  /** set when the attack itself could not be carried out as planned */
  error?: string
}

/** An attack a broker is not put through, and why. */
export interface HostileSkipped { skipped: string }

export type HostileBrokerName = 'plain' | 'cli'
export const HOSTILE_BROKERS: Record<HostileBrokerName, string> = {
  plain: 'plain Aedes',
  cli: 'aedes-p2p CLI'
}

export interface HostileRow {
  attack: string
  /** what the attack does, in a line */
  what: string
  plain: HostileOutcome | HostileSkipped
  cli: HostileOutcome | HostileSkipped
}

export interface HostileResults {
  /** every attack stops at this many bytes sent or this long, whichever comes first */
  bound: Bound
  rows: HostileRow[]
}

export interface Results {
  mode: 'quick' | 'long'
  command: string
  /**
   * the Aedes the bench's own brokers ran on (its installed version) and the
   * MQTT version of the bench's clients: 3.1.1 on Aedes 1.2, or with
   * `--mqtt5` 5 on Aedes 2
   */
  protocol: { aedes: string, mqtt: '3.1.1' | '5' }
  date: string
  machine: { cpus: number, model: string, node: string }
  /** which cores the load generator and the brokers under test ran on; null when not pinned */
  placement: { driver: string, brokers: string } | null
  /**
   * durationMs is a side-by-side round, aloneMs a run alone, steadyMs a run
   * in the cluster; blocks (idleBlocks for the idle clients) are sets of
   * fresh broker processes
   */
  traffic: TrafficOptions & { warmupMs: number, blocks: number, idleBlocks: number, rounds: number, aloneMs: number, steadyMs: number }
  throughput: ThroughputCell[]
  ratios: Ratio[]
  idle: IdleResult[]
  memory: MemoryResult | null
  cluster: ClusterRun[] | null
  topicParsing: TopicParseResult[]
  hostile: HostileResults | null
}
