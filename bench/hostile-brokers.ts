/**
 * The two brokers the hostile part attacks, behind one interface: plain
 * Aedes (bench/broker.ts, nothing but Aedes on TCP and WebSocket) and the
 * aedes-p2p CLI broker as operators run it, with every limit at its
 * default. Only the CLI counts what its limits did, read from its /metrics.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { startCli, type RunningCli } from '../harness/cli.js'
import type { HostileCounts } from './results.js'
import { startBenchBroker } from './scenario.js'

export interface HostileBroker {
  pid: number
  port: number
  wsPort: number | undefined
  /** null while it runs; once it has exited, how */
  ended (): string | null
  /** what its limits counted so far; null for a broker that has none (plain Aedes) or is gone */
  counted (): Promise<HostileCounts | null>
  stop (): Promise<void>
}

export async function startPlain (): Promise<HostileBroker> {
  const broker = await startBenchBroker({ plugin: false, ws: true, role: 'hostile-plain' })
  return { ...broker, counted: async () => null }
}

/**
 * The CLI broker on free loopback ports, its admin API on for /metrics.
 * `args` come after the CLI's own: `--redis URL`, `--config FILE`.
 * It is stopped with SIGKILL: a clean shutdown waits up to 10 s for a
 * Redis that is away, and nothing it would flush is measured.
 */
export async function startCliBroker (args: readonly string[] = []): Promise<HostileBroker & { cli: RunningCli }> {
  const cli = await startCli(['--port', '0', '--ws-port', '0', '--admin-port', '0', '--log-level', 'info', ...args])
  const listening = async (name: string): Promise<number> => {
    for (let i = 0; i < 100; i++) {
      const line = cli.lines.find((l) => l.listener === name)
      if (line !== undefined) return line.port as number
      await sleep(20)
    }
    await cli.stop('SIGKILL')
    throw new Error(`the CLI broker logged no ${name} listener`)
  }
  const wsPort = await listening('ws')
  const adminPort = await listening('admin')
  const { child } = cli
  return {
    cli,
    pid: child.pid as number,
    port: cli.port,
    wsPort,
    ended () {
      if (child.exitCode === null && child.signalCode === null) return null
      const how = child.signalCode ?? `exit code ${child.exitCode}`
      const stderr = cli.stderr().trim().slice(-4000)
      return stderr === '' ? how : `${how}: ${stderr}`
    },
    async counted () {
      try {
        const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(5000) })
        return limitCounts(await res.text())
      } catch {
        return null
      }
    },
    async stop () { await cli.stop('SIGKILL') }
  }
}

const SAMPLE = /^(mqtt_limit_hits_total|p2p_messages_dropped_total)\{(?:limit|reason)="([^"]+)"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm

/**
 * From Prometheus text: mqtt_limit_hits_total by limit and
 * p2p_messages_dropped_total by reason, those above zero.
 */
export function limitCounts (metrics: string): HostileCounts {
  const counts: HostileCounts = { limits: {}, dropped: {} }
  for (const [, family, label, value] of metrics.matchAll(SAMPLE)) {
    const n = Number(value)
    if (n > 0) counts[family === 'mqtt_limit_hits_total' ? 'limits' : 'dropped'][label as string] = n
  }
  return counts
}
