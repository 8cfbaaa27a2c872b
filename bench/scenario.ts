/**
 * The processes a benchmark run is made of, and one measured run: pairs
 * connected, warmed up, then traffic with the CPU of every process under
 * test read from /proc before and after.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { BrokerReady, Collected } from './broker.js'
import { forkOn } from './cores.js'
import type { IdleRequest } from './idle.js'
import type { Pairs, TrafficOptions } from './load.js'
import { cpuSeconds, rssBytes } from '../harness/proc.js'
import type { MeasuredRun } from './results.js'
import { round } from './stats.js'

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

export interface BenchBroker {
  pid: number
  port: number
  /** MQTT over WebSocket, when asked for */
  wsPort: number | undefined
  /** null while it runs; once it has exited, how: its exit code or signal, and the end of its stderr */
  ended (): string | null
  /**
   * Once garbage collection has given back what it will: the RSS, and the
   * JavaScript heap in use (steadier, but blind to memory outside V8)
   */
  settledMemory (): Promise<{ rss: number, heap: number }>
  stop (): Promise<void>
}

export interface BrokerOptions {
  plugin: boolean
  /** connections go through the CLI broker's checks (max_connections, max_packet_size) first */
  guarded?: boolean
  /** listens for MQTT over WebSocket too */
  ws?: boolean
  /** runs on Aedes 2 (the `aedes2` dependency), which speaks MQTT 5, instead of Aedes 1.2 */
  mqtt5?: boolean
  /** names the broker's CPU profile */
  role: string
  /** where to write a CPU profile (node --cpu-prof) when the broker stops */
  profileDir?: string | undefined
  /** the cores it runs on (a taskset list); anywhere if not given */
  cores?: string | undefined
}

export async function startBenchBroker ({ plugin, guarded = false, ws = false, mqtt5 = false, role, profileDir, cores }: BrokerOptions): Promise<BenchBroker> {
  const profile = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${role}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.cpuprofile`]
  const args = [...(plugin ? ['--plugin'] : []), ...(guarded ? ['--guarded'] : []), ...(ws ? ['--ws'] : []), ...(mqtt5 ? ['--mqtt5'] : [])]
  // stderr passes through, each line named by the broker's role, and its
  // end is kept to say how a broker that died ended
  const child = fork(here('./broker.js'), args, { ...forkOn(cores, ['--expose-gc', ...profile]), stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString()
    process.stderr.write(text.replace(/^(?=.)/gm, `[${role}] `))
    stderr = (stderr + text).slice(-4000)
  })
  let ended: string | null = null
  child.once('close', (code, signal) => { ended = `${signal === null ? `exit code ${code}` : signal}${stderr === '' ? '' : `: ${stderr.trim()}`}` })
  const [ready] = await once(child, 'message') as [BrokerReady]
  return {
    pid: child.pid as number,
    port: ready.port,
    wsPort: ready.wsPort,
    ended: () => ended,
    async settledMemory () {
      // V8 returns freed pages to the OS lazily, over several collections;
      // settled is when three in a row give back no more than 0.5%
      let rss = Infinity
      let heap = 0
      for (let i = 0, calm = 0; i < 40 && calm < 3; i++) {
        child.send('gc')
        const [collected] = await once(child, 'message') as [Collected]
        heap = collected.heapUsed
        await new Promise((resolve) => setTimeout(resolve, 100))
        const now = rssBytes(child.pid as number)
        calm = now < rss * 0.995 ? 0 : calm + 1
        rss = Math.min(rss, now)
      }
      return { rss, heap }
    },
    stop: () => stopChild(child)
  }
}

export interface Idle { stop (): Promise<void> }

// Each client is a file descriptor, and a process may hold only so many
// (often 1,024 by default, 20,000 on the machine the figures come from).
const IDLE_PER_PROCESS = 5000

/** `count` idle clients spread over `ports`, from as many processes as that takes; MQTT 5 ones with `mqtt5`. */
export async function startIdle (ports: number[], count: number, prefix: string, mqtt5 = false): Promise<Idle> {
  const children = await startAll(Array.from({ length: Math.ceil(count / IDLE_PER_PROCESS) }, (_, i) => async (): Promise<ChildProcess> => {
    const share = Math.min(IDLE_PER_PROCESS, count - i * IDLE_PER_PROCESS)
    const child = fork(here('./idle.js'))
    try {
      child.send({ ports, count: share, prefix: `${prefix}${i}-`, mqtt5 } satisfies IdleRequest)
      const [connected] = await Promise.race([
        once(child, 'message') as Promise<[number]>,
        once(child, 'exit').then(() => { throw new Error('idle clients process failed') })
      ])
      if (connected !== share) throw new Error(`only ${connected} of ${share} idle clients connected`)
      return child
    } catch (err) {
      await stopChild(child)
      throw err
    }
  }), stopChild)
  return { stop: () => Promise.all(children.map(stopChild)).then(() => undefined) }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.disconnect()
  await exited
}

/**
 * Starts several things at once. Settled, not all: when one fails, the ones
 * that did start are stopped before the error is thrown, and none is left
 * starting after the cleanup.
 */
export async function startAll<T> (starts: Array<() => Promise<T>>, stop: (started: T) => Promise<unknown>): Promise<T[]> {
  const outcomes = await Promise.allSettled(starts.map((start) => start()))
  const started = outcomes.flatMap((o) => o.status === 'fulfilled' ? [o.value] : [])
  const failed = outcomes.find((o) => o.status === 'rejected')
  if (failed === undefined) return started
  await Promise.all(started.map(stop))
  throw failed.reason
}

export interface Contender {
  /** the processes whose CPU is read; the first one's makes perCpuSecond */
  pids: number[]
  clients: Pairs
}

/**
 * The side-by-side method: every contender's pairs warm up, then all of them
 * carry traffic at the same moment, round after round. The runs come back
 * per contender, in the order given.
 */
export async function runTogether (contenders: Contender[], { rounds, warmupMs, traffic }: { rounds: number, warmupMs: number, traffic: TrafficOptions }): Promise<MeasuredRun[][]> {
  await Promise.all(contenders.map(({ clients }) => clients.run({ ...traffic, durationMs: warmupMs })))
  const runs = contenders.map((): MeasuredRun[] => [])
  for (let r = 0; r < rounds; r++) {
    const round = await Promise.all(contenders.map(({ pids, clients }) => measure(pids, clients, traffic)))
    round.forEach((run, i) => { runs[i]?.push(run) })
  }
  return runs
}

/** One run on pairs already connected, with the CPU of `pids` read around it. */
export async function measure (pids: number[], clients: Pairs, options: TrafficOptions): Promise<MeasuredRun> {
  let before: number[] = []
  const result = await clients.run(options, () => { before = pids.map(cpuSeconds) })
  const used = pids.map((pid, i) => round(cpuSeconds(pid) - (before[i] as number), 4))
  return { ...result, cpuSeconds: used, perCpuSecond: Math.round(result.received / (used[0] as number)) }
}
