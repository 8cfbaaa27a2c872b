/**
 * Nanoseconds per topic for the parser that runs on every PUBLISH, for
 * ordinary topics (the cost the plugin adds to all traffic) and P2P ones.
 */
import { performance } from 'node:perf_hooks'
import { TopicParser, type Mode } from '../src/plugin/topic.js'
import { round } from './stats.js'

export interface TopicParseResult { mode: Mode, kind: string, topic: string, nsPerTopic: number }

const CASES: Array<{ kind: string, topic: string }> = [
  { kind: 'ordinary', topic: 'sensors/building-7/floor-3/temperature' },
  { kind: 'ordinary, first level is the keyword', topic: 'p2p/announcements' },
  { kind: 'prefix form', topic: 'p2p/device-0042/commands/reboot' },
  { kind: 'suffix form (ordinary in prefix mode)', topic: 'commands/reboot/p2p/device-0042' }
]
const MODES: Mode[] = ['prefix', 'both']

// keeps the optimiser from dropping calls whose result is unused
let sink = 0

export function topicParsing (iterations: number): TopicParseResult[] {
  const results: TopicParseResult[] = []
  for (const mode of MODES) {
    const parser = new TopicParser(mode, 'p2p')
    for (const { kind, topic } of CASES) {
      // fresh strings decoded from bytes, as mqtt-packet hands them to the broker
      const topics = Array.from({ length: 64 }, () => Buffer.from(topic).toString())
      for (let i = 0; i < iterations / 10; i++) sink += parser.parse(topics[i & 63] as string) === null ? 0 : 1
      const started = performance.now()
      for (let i = 0; i < iterations; i++) sink += parser.parse(topics[i & 63] as string) === null ? 0 : 1
      const ns = (performance.now() - started) * 1e6 / iterations
      results.push({ mode, kind, topic, nsPerTopic: round(ns, 1) })
    }
  }
  if (sink < 0) console.log(sink)
  return results
}
