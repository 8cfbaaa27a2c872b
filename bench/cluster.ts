/**
 * Three broker nodes (the CLI, as operators run it) on one Redis. Senders on
 * node 1, receivers on node 2, node 3 holds no pair: its CPU against node 2's
 * shows whether P2P traffic reaches nodes that do not hold the target. Idle
 * clients spread over all three show whether Redis's cost per message grows
 * with connected clients.
 */
import { startCli, type RunningCli } from '../test/helpers/cli.js'
import { startRedis, type TestRedis } from '../test/helpers/redis.js'
import { startIdle, traffic, type Idle, type MeasuredRun } from './scenario.js'
import { round, type TrafficOptions } from './load.js'

export interface ClusterRun extends MeasuredRun {
  idleClients: number
  qos: 0 | 1
  pairs: number
  /** node 3's CPU seconds over node 2's */
  thirdNodeFraction: number
  redisCpuMicrosecondsPerMessage: number
}

export interface ClusterOptions {
  pairs: number
  qos: Array<0 | 1>
  idleClients: number[]
  traffic: TrafficOptions
  warmupMs: number
}

export async function clusterBench (options: ClusterOptions, progress: (line: string) => void): Promise<ClusterRun[]> {
  const redis: TestRedis = await startRedis({ durable: false })
  const nodes: RunningCli[] = []
  let idle: Idle | undefined
  try {
    for (let i = 0; i < 3; i++) nodes.push(await startCli(['--port', '0', '--redis', redis.url, '--log-level', 'info']))
    const [node1, node2] = nodes as [RunningCli, RunningCli, RunningCli]
    const pids = [...nodes.map((node) => node.child.pid as number), redis.pid()]
    const runs: ClusterRun[] = []
    for (const idleClients of options.idleClients) {
      await idle?.stop()
      idle = idleClients === 0 ? undefined : await startIdle(nodes.map((node) => node.port), idleClients, 'idle-')
      for (const qos of options.qos) {
        const run = await traffic(pids, {
          port: node1.port,
          receiverPort: node2.port,
          pairs: options.pairs,
          route: 'p2p',
          qos,
          prefix: `cluster-q${qos}-i${idleClients}-`
        }, options.traffic, options.warmupMs)
        const [, cpu2, cpu3, redisCpu] = run.cpuSeconds as [number, number, number, number]
        const result: ClusterRun = {
          idleClients,
          qos,
          pairs: options.pairs,
          ...run,
          thirdNodeFraction: round(cpu3 / cpu2, 3),
          redisCpuMicrosecondsPerMessage: round(redisCpu * 1e6 / run.received, 2)
        }
        runs.push(result)
        progress(`cluster qos ${qos}, ${idleClients} idle: ${result.messagesPerSecond} msg/s, node 3 at ${result.thirdNodeFraction} of node 2, Redis ${result.redisCpuMicrosecondsPerMessage} µs/msg`)
      }
    }
    return runs
  } finally {
    await idle?.stop()
    await Promise.all(nodes.map((node) => node.stop('SIGKILL')))
    await redis.stop()
  }
}
