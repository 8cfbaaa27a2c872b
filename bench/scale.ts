/**
 * Cluster at scale (docs/performance.md, "Cluster at scale"):
 *
 * - what a P2P message between two nodes costs the brokers, per CPU second,
 *   against one between two clients of one node (no Redis), all three
 *   carrying traffic at the same moment;
 * - what it costs Redis: one Redis against a 3-master Redis Cluster;
 * - a node's start-up time and memory with N persistent sessions in Redis
 *   (each with one subscription, as a device that subscribes to its
 *   commands), against a node on an empty Redis.
 *
 *   npm run build:dev && node build/bench/scale.js [--sessions N] [--rounds N] [--out FILE] [--only traffic|startup]
 *
 * With --only, the other part is kept from FILE as it was; each part says
 * when it was measured.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { startCli, type RunningCli } from '../harness/cli.js'
import { cpuSeconds, rssBytes } from '../harness/proc.js'
import { rawSession } from '../harness/raw.js'
import { startRedisCluster, type TestRedisCluster } from '../harness/redis-cluster.js'
import { startRedis, type TestRedis } from '../harness/redis.js'
import { Pairs, type TrafficOptions } from './load.js'
import { runTogether } from './scenario.js'
import { round } from './stats.js'

const { values: flags } = parseArgs({ options: { sessions: { type: 'string' }, rounds: { type: 'string' }, out: { type: 'string' }, only: { type: 'string' } } })
const SESSIONS = Number(flags.sessions ?? 100_000)
const ROUNDS = Number(flags.rounds ?? 3)
const OUT = flags.out ?? 'bench/results/scale.json'
const ONLY = flags.only
if (ONLY !== undefined && ONLY !== 'traffic' && ONLY !== 'startup') throw new Error(`--only takes traffic or startup, not ${ONLY}`)
const PAIRS = 10
const TRAFFIC: TrafficOptions = { payloadBytes: 64, window: 16, durationMs: 5000, prerollMs: 500 }
// sessions made at once while filling the store
const FILL_CONCURRENCY = 200

const node = async (redisUrl?: string): Promise<RunningCli> => startCli(['--port', '0', '--log-level', 'info', ...(redisUrl === undefined ? [] : ['--redis', redisUrl])], ['--no-memory-reducer'])
const pid = (n: RunningCli): number => n.child.pid as number

async function traffic (redis: TestRedis, cluster: TestRedisCluster): Promise<Record<string, unknown>> {
  const single = await node()
  const [r1, r2] = [await node(redis.url), await node(redis.url)]
  const [c1, c2] = [await node(cluster.url), await node(cluster.url)]
  try {
    const pairs = async (port: number, receiverPort: number, prefix: string): Promise<Pairs> => Pairs.connect({ port, receiverPort, pairs: PAIRS, route: 'p2p', qos: 1, prefix })
    const contenders = [
      { pids: [pid(single)], clients: await pairs(single.port, single.port, 'one') },
      { pids: [pid(r1), pid(r2), redis.pid()], clients: await pairs(r1.port, r2.port, 'redis') },
      { pids: [pid(c1), pid(c2), ...cluster.nodes.map((n) => n.pid())], clients: await pairs(c1.port, c2.port, 'shards') }
    ]
    const runs = await runTogether(contenders, { rounds: ROUNDS, warmupMs: 2000, traffic: TRAFFIC })
    const total = (i: number): { received: number, cpu: number[], lost: number } => {
      const mine = runs[i] ?? []
      const cpu = (mine[0]?.cpuSeconds ?? []).map((_, p) => mine.reduce((sum, run) => sum + (run.cpuSeconds[p] ?? 0), 0))
      return { received: mine.reduce((sum, run) => sum + run.received, 0), cpu, lost: mine.reduce((sum, run) => sum + run.lost, 0) }
    }
    const [one, onRedis, onShards] = [total(0), total(1), total(2)]
    const perBrokerCpu = (t: { received: number, cpu: number[] }, brokers: number): number => Math.round(t.received / t.cpu.slice(0, brokers).reduce((a, b) => a + b, 0))
    const redisMicros = (t: { received: number, cpu: number[] }): number => round(t.cpu.slice(2).reduce((a, b) => a + b, 0) / t.received * 1e6, 2)
    for (const c of contenders) await c.clients.close()
    return {
      pairs: PAIRS,
      qos: 1,
      rounds: ROUNDS,
      traffic: TRAFFIC,
      oneNode: { received: one.received, lost: one.lost, perBrokerCpuSecond: perBrokerCpu(one, 1) },
      twoNodesOneRedis: { received: onRedis.received, lost: onRedis.lost, perBrokerCpuSecond: perBrokerCpu(onRedis, 2), redisCpuMicrosecondsPerMessage: redisMicros(onRedis) },
      twoNodesThreeShards: { received: onShards.received, lost: onShards.lost, perBrokerCpuSecond: perBrokerCpu(onShards, 2), redisCpuMicrosecondsPerMessage: redisMicros(onShards) },
      crossNodeVsOneNode: { oneRedis: round(perBrokerCpu(onRedis, 2) / perBrokerCpu(one, 1), 3), threeShards: round(perBrokerCpu(onShards, 2) / perBrokerCpu(one, 1), 3) },
      redisPerMessageThreeShardsVsOne: round(redisMicros(onShards) / redisMicros(onRedis), 3)
    }
  } finally {
    await Promise.all([single, r1, r2, c1, c2].map(async (n) => n.stop('SIGKILL')))
  }
}

/** N persistent sessions, each with one subscription, made through a node as devices make them. */
async function fill (url: string, sessions: number): Promise<number> {
  const filler = await node(url)
  const started = Date.now()
  try {
    let next = 0
    await Promise.all(Array.from({ length: FILL_CONCURRENCY }, async () => {
      while (next < sessions) {
        const i = next++
        const c = await rawSession({ tcp: filler.port }, { clientId: `device-${i}`, clean: false })
        c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${i}/commands`, qos: 1 }] })
        await c.next('suback', 10_000)
        c.send({ cmd: 'disconnect' })
        c.destroy()
      }
    }))
  } finally {
    await filler.stop('SIGTERM')
  }
  return Math.round((Date.now() - started) / 1000)
}

/** From spawn to listening, and the node's memory then and once it has settled. */
async function startUp (url: string): Promise<{ listeningMs: number, rssMB: number, rssAfter5sMB: number }> {
  const started = Date.now()
  const n = await node(url)
  const listeningMs = Date.now() - started
  const rssMB = round(rssBytes(pid(n)) / 2 ** 20, 1)
  await new Promise((resolve) => setTimeout(resolve, 5000))
  const rssAfter5sMB = round(rssBytes(pid(n)) / 2 ** 20, 1)
  await n.stop('SIGKILL')
  return { listeningMs, rssMB, rssAfter5sMB }
}

async function startUpCost (kind: 'oneRedis' | 'threeShards'): Promise<Record<string, unknown>> {
  const make = async (): Promise<{ url: string, stop: () => Promise<void>, cpu: () => number }> => {
    if (kind === 'oneRedis') {
      const r = await startRedis({ durable: false })
      return { url: r.url, stop: async () => { await r.stop() }, cpu: () => cpuSeconds(r.pid()) }
    }
    const c = await startRedisCluster({ masters: 3 })
    return { url: c.url, stop: async () => { await c.stop() }, cpu: () => c.nodes.reduce((sum, n) => sum + cpuSeconds(n.pid()), 0) }
  }
  const empty = await make()
  const full = await make()
  try {
    const emptyStart = await startUp(empty.url)
    const fillSeconds = await fill(full.url, SESSIONS)
    const before = full.cpu()
    const fullStart = await startUp(full.url)
    return { sessions: SESSIONS, fillSeconds, empty: emptyStart, full: { ...fullStart, redisCpuSeconds: round(full.cpu() - before, 2) } }
  } finally {
    await empty.stop()
    await full.stop()
  }
}

const earlier = ONLY === undefined ? {} : await readFile(OUT, 'utf8').then((text) => JSON.parse(text) as Record<string, unknown>, () => ({} as Record<string, unknown>))
let trafficResult = earlier.traffic
if (ONLY !== 'startup') {
  const redis = await startRedis({ durable: false })
  const cluster = await startRedisCluster({ masters: 3 })
  try {
    trafficResult = { when: new Date().toISOString(), ...await traffic(redis, cluster) }
  } finally {
    await redis.stop()
    await cluster.stop()
  }
  console.log(JSON.stringify(trafficResult, null, 2))
}
let startUps = earlier.startUp
if (ONLY !== 'traffic') {
  startUps = { when: new Date().toISOString(), oneRedis: await startUpCost('oneRedis'), threeShards: await startUpCost('threeShards') }
  console.log(JSON.stringify(startUps, null, 2))
}
const result = { when: new Date().toISOString(), command: `node build/bench/scale.js --sessions ${SESSIONS} --rounds ${ROUNDS}${ONLY === undefined ? '' : ` --only ${ONLY}`}`, traffic: trafficResult, startUp: startUps }
await writeFile(OUT, JSON.stringify(result, null, 2) + '\n')
console.log(`written to ${OUT}`)
process.exit(0)
