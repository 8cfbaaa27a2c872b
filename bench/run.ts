/**
 * The benchmark: plain Aedes publish/subscribe, the same with the plugin
 * installed, and P2P through the plugin, side by side in one invocation,
 * then idle clients, memory per client, the Redis cluster, and the topic
 * parser on its own; then hostile clients against plain Aedes and the CLI broker.
 *
 *   npm run bench                 quick; the hostile part adds about 70 s
 *   npm run bench -- --long       longer and more rounds, longer attacks
 *   npm run bench -- --only throughput --only cluster
 *                                 some parts only: parsing, throughput, idle, cluster, hostile
 *   npm run bench -- --profile DIR
 *                                 single-node brokers write CPU profiles (node --cpu-prof) to DIR
 *   npm run bench -- --mqtt5      brokers on Aedes 2, clients speaking MQTT 5; throughput and idle only
 *   --pairs N (repeatable; default 10 and 100), --payload BYTES (64),
 *   --window N (messages in flight per pair, 10), --idle-clients K (10000)
 *
 * Writes bench/results/<quick|long>.{json,md,svg}, with --mqtt5
 * bench/results/<quick|long>-mqtt5.{json,md,svg}.
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { cpus } from 'node:os'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { clusterBench } from './cluster.js'
import { ALL_CORES, onPath, pin, findPlacement } from './cores.js'
import { crowd } from './crowd.js'
import { hostile } from './hostile.js'
import { openFileLimit } from '../harness/proc.js'
import type { TrafficOptions } from './load.js'
import { chart, markdown } from './report.js'
import type { Results } from './results.js'
import { ratios } from './ratios.js'
import { throughput } from './throughput.js'
import { topicParsing } from './topic-parse.js'

const PARTS = ['parsing', 'throughput', 'idle', 'cluster', 'hostile'] as const
const options = {
  long: { type: 'boolean', default: false },
  only: { type: 'string', multiple: true },
  profile: { type: 'string' },
  pairs: { type: 'string', multiple: true },
  payload: { type: 'string', default: '64' },
  window: { type: 'string', default: '10' },
  'idle-clients': { type: 'string', default: '10000' },
  mqtt5: { type: 'boolean', default: false }
} as const
let flags: ReturnType<typeof parseArgs<{ options: typeof options }>>['values']
try {
  flags = parseArgs({ options }).values
} catch (err) {
  usage((err as Error).message)
}
// Aedes 2 and MQTT 5 only where the brokers are the bench's own (broker.ts):
// the cluster and hostile parts run the CLI and plain Aedes 1.2 with clients
// of their own, and topic parsing has no broker at all
const MQTT5_PARTS: ReadonlyArray<(typeof PARTS)[number]> = ['throughput', 'idle']
const only = flags.only ?? [...(flags.mqtt5 ? MQTT5_PARTS : PARTS)]
for (const part of only) {
  if (!(PARTS as readonly string[]).includes(part)) usage(`unknown part "${part}"; the parts are: ${PARTS.join(', ')}`)
  if (flags.mqtt5 && !(MQTT5_PARTS as readonly string[]).includes(part)) usage(`--mqtt5 runs only the ${MQTT5_PARTS.join(' and ')} parts, not "${part}"`)
}
const pairCounts = (flags.pairs ?? ['10', '100']).map((value) => whole('--pairs', value, 1, 1000))
// the payload carries a 16-byte header: send time, sequence and run numbers
const payloadBytes = whole('--payload', flags.payload, 16, 1024 * 1024)
const window = whole('--window', flags.window, 1, 1000)
const idleClients = whole('--idle-clients', flags['idle-clients'], 1, 100_000)

function usage (problem: string): never {
  console.error(`${problem}\nusage: npm run bench -- [--long] [--mqtt5] [--only PART]... [--pairs N]... [--payload BYTES] [--window N] [--idle-clients K] [--profile DIR]`)
  process.exit(2)
}

function whole (flag: string, value: string, min: number, max: number): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < min || n > max) usage(`${flag} takes a whole number from ${min} to ${max}, not "${value}"`)
  return n
}
const wanted = (part: (typeof PARTS)[number]): boolean => only.includes(part)
// A broker holds a socket per idle client, and the pairs on top of them; the
// idle part puts them all on one broker, the cluster part spreads them over three.
const perBroker = wanted('idle') ? idleClients : wanted('cluster') ? Math.ceil(idleClients / 3) : 0
const files = openFileLimit()
if (files !== undefined && perBroker > 0 && perBroker + 1000 > files) {
  usage(`--idle-clients ${idleClients} needs about ${perBroker + 1000} open files per broker; this shell allows ${files} (raise it with ulimit -n)`)
}
// said before the other parts have run for minutes, not after
const needRedis: ReadonlyArray<(typeof PARTS)[number]> = ['cluster', 'hostile']
if (needRedis.some(wanted) && !onPath('redis-server')) {
  console.error(`the ${needRedis.filter(wanted).join(' and ')} part needs redis-server on the PATH (Debian: apt-get install redis-server); ` +
    `or leave it out: ${PARTS.filter((p) => !needRedis.includes(p)).map((p) => `--only ${p}`).join(' ')}`)
  process.exit(2)
}
const mode = flags.long ? 'long' : 'quick'
const mqtt5 = flags.mqtt5
const protocol: Results['protocol'] = { aedes: await installedVersion(mqtt5 ? 'aedes2' : 'aedes'), mqtt: mqtt5 ? '5' : '3.1.1' }
// an MQTT 5 run is a comparison of its own: it must not replace the 3.1.1 results
const name = mqtt5 ? `${mode}-mqtt5` : mode
const GiB = 1024 * 1024 * 1024
const settings = flags.long
  ? { blocks: 8, idleBlocks: 5, rounds: 2, durationMs: 2500, aloneMs: 2000, warmupMs: 1500, steadyMs: 5000, clusterIdle: [...new Set([Math.min(1000, idleClients), idleClients])], clusterQos: [0, 1] as Array<0 | 1>, attack: { bytes: 4 * GiB, ms: 10_000 } }
  : { blocks: 2, idleBlocks: 1, rounds: 1, durationMs: 1500, aloneMs: 1000, warmupMs: 500, steadyMs: 3000, clusterIdle: [idleClients], clusterQos: [1] as Array<0 | 1>, attack: { bytes: GiB, ms: 3000 } }
const trafficOptions: TrafficOptions = { payloadBytes, window, durationMs: settings.durationMs, prerollMs: 250 }
const began = Date.now()
const progress = (line: string): void => { console.error(`[${Math.round((Date.now() - began) / 1000)} s] ${line}`) }
const QOS_LEVELS = [0, 1] as const
progress(`brokers on Aedes ${protocol.aedes}, clients speaking MQTT ${protocol.mqtt}`)

// The load generator (this process) keeps to its own core while brokers are
// compared; the cluster's nodes and Redis are placed by the scheduler.
const placement = findPlacement()
if (placement !== null) pin(process.pid, placement.driver)
const cores = placement?.brokers
const parsing = wanted('parsing') ? topicParsing(flags.long ? 20_000_000 : 2_000_000) : []
const cells = !wanted('throughput')
  ? []
  : await throughput({
    qosLevels: QOS_LEVELS,
    pairCounts,
    blocks: settings.blocks,
    rounds: settings.rounds,
    aloneMs: settings.aloneMs,
    warmupMs: settings.warmupMs,
    traffic: trafficOptions,
    cores,
    profileDir: flags.profile,
    mqtt5
  }, progress)
const { idle, memory } = !wanted('idle')
  ? { idle: [], memory: null }
  : await crowd({
    idleClients,
    pairs: 10,
    qosLevels: QOS_LEVELS,
    blocks: settings.idleBlocks,
    rounds: settings.rounds,
    warmupMs: settings.warmupMs,
    traffic: trafficOptions,
    cores,
    profileDir: flags.profile,
    mqtt5
  }, progress)
if (placement !== null) pin(process.pid, ALL_CORES)
const cluster = !wanted('cluster')
  ? null
  : await clusterBench({
    pairs: 10,
    qos: settings.clusterQos,
    idleClients: settings.clusterIdle,
    rounds: settings.rounds,
    traffic: { ...trafficOptions, durationMs: settings.steadyMs },
    warmupMs: settings.warmupMs
  }, progress)
// the attacks are bounded in bytes and in time, whichever comes first
const hostileResults = !wanted('hostile') ? null : await hostile(settings.attack, progress)
const cpu = cpus()
const results: Results = {
  mode,
  command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
  protocol,
  date: new Date().toISOString(),
  machine: { cpus: cpu.length, model: cpu[0]?.model ?? 'unknown', node: process.version },
  placement,
  traffic: { ...trafficOptions, warmupMs: settings.warmupMs, blocks: settings.blocks, idleBlocks: settings.idleBlocks, rounds: settings.rounds, aloneMs: settings.aloneMs, steadyMs: settings.steadyMs },
  throughput: cells,
  ratios: ratios(cells),
  idle,
  memory,
  cluster,
  topicParsing: parsing,
  hostile: hostileResults
}
const dir = new URL('bench/results/', sourceTree())
await mkdir(dir, { recursive: true })
await writeFile(new URL(`${name}.json`, dir), JSON.stringify(results, null, 2) + '\n')
await writeFile(new URL(`${name}.md`, dir), markdown(results))
if (cells.length > 0) await writeFile(new URL(`${name}.svg`, dir), chart(results))
console.log(markdown(results))
progress(`done; results in bench/results/${name}.{json,md,svg}`)

/**
 * The results belong in the source tree, wherever this file was compiled to
 * (build/bench/run.js by npm run bench, or another --outDir): the nearest
 * directory above it with a package.json.
 */
function sourceTree (): URL {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    if (existsSync(new URL('package.json', dir))) return dir
    if (dir.pathname === '/') throw new Error(`no package.json above ${import.meta.url}`)
  }
}

/** The version installed, for the results to say: `aedes2` is an alias, and `aedes` a range. */
async function installedVersion (name: 'aedes' | 'aedes2'): Promise<string> {
  // neither exports its package.json; it sits beside the entry point
  const entry = createRequire(import.meta.url).resolve(name)
  const pkg = JSON.parse(await readFile(new URL('package.json', pathToFileURL(entry)), 'utf8')) as { version: string }
  return pkg.version
}
