/** The shape of a benchmark run's results, as written to JSON. */
import type { ClusterRun } from './cluster.js'
import type { TrafficOptions } from './load.js'
import type { MeasuredRun } from './scenario.js'
import type { TopicParseResult } from './topic-parse.js'

export type Variant = 'plain' | 'plugin' | 'p2p'
export const VARIANTS: Record<Variant, string> = {
  plain: 'pub/sub, plain Aedes',
  plugin: 'pub/sub, plugin installed',
  p2p: 'P2P'
}

/** `all`: the rounds taken together, messages and CPU seconds summed */
export interface ThroughputCell { qos: 0 | 1, pairs: number, variant: Variant, runs: MeasuredRun[], all: MeasuredRun }
export interface Ratio { qos: 0 | 1, pairs: number, p2pVsPlain: number, pluginVsPlain: number }
export interface IdleResult { qos: 0 | 1, pairs: number, idleClients: number, without: MeasuredRun, with: MeasuredRun, perCpuSecondRatio: number, messagesPerSecondRatio: number }
export interface MemoryResult { idleClients: number, plainBytesPerClient: number, pluginBytesPerClient: number, ratio: number }

export interface Results {
  mode: 'quick' | 'long'
  command: string
  date: string
  machine: { cpus: number, model: string, node: string }
  /** durationMs is a round of the side-by-side comparison; steadyMs a run with idle clients or in the cluster */
  traffic: TrafficOptions & { steadyMs: number, warmupMs: number, rounds: number }
  throughput: ThroughputCell[]
  ratios: Ratio[]
  idle: IdleResult[]
  memory: MemoryResult | null
  cluster: ClusterRun[] | null
  topicParsing: TopicParseResult[]
}
