/**
 * What the Redis Cluster and Sentinel harnesses share: starting a redis-server
 * that is killed when the test process exits, one-off commands, bounded polling.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { freePort } from './cli.js'

/** A reason to skip, when there is no redis-server to run; false when there is. */
export function redisMissing (): string | false {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' })
  return probe.error === undefined && probe.status === 0 ? false : 'redis-server is not installed'
}

// Every server still running. A test that throws before its stop() would
// otherwise leave them behind for as long as the machine stays up. Only an
// exit Node sees runs the hook: a test process killed by a signal leaves them.
const running = new Set<ChildProcess>()
let reaping = false
function reapOnExit (child: ChildProcess): void {
  running.add(child)
  child.once('exit', () => { running.delete(child) })
  if (reaping) return
  reaping = true
  // 'exit' handlers may only do synchronous work; kill() is
  process.once('exit', () => { for (const c of running) c.kill('SIGKILL') })
}

export interface RedisProcess {
  port: number
  child: ChildProcess
  pid (): number
  /** false once the process has exited, killed or not */
  running (): boolean
  /** SIGKILL, resolved once the process has exited */
  stop (): Promise<void>
}

/**
 * Runs `redis-server` with `args` (a config file first, if any) and resolves
 * once its log says `ready`: a server says it accepts connections, a sentinel
 * says it monitors its master (it never says the former).
 */
export async function spawnRedis (port: number, args: string[], ready = 'Ready to accept connections'): Promise<RedisProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] })
  reapOnExit(child)
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (out.includes(ready)) {
        // stop buffering the log, but keep reading it so the pipe never fills
        child.stdout?.off('data', onData)
        child.stdout?.resume()
        child.off('exit', onExit)
        resolve()
      }
    }
    const onExit = (code: number | null): void => { reject(new Error(`redis-server on port ${port} exited with ${code}: ${out}`)) }
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
    // not installed, or not runnable: an error to report, not an unhandled event
    child.once('error', reject)
  })
  return {
    port,
    child,
    pid: () => child.pid ?? -1,
    // a killed process has a signal code and no exit code
    running: () => child.exitCode === null && child.signalCode === null,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
  }
}

/**
 * One command on a fresh connection, closed afterwards. Polling a server that
 * may be down must fail fast rather than queue and reconnect, as a long-lived
 * client would.
 */
export async function command (port: number, ...args: Array<string | number>): Promise<unknown> {
  const [name, ...rest] = args
  if (name === undefined) throw new Error('command: no command given')
  const client = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null
  })
  // a refused connection is reported by connect(); the event would be noise
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call(String(name), ...rest.map(String))
  } finally {
    client.disconnect()
  }
}

/** `field:value` lines (INFO, CLUSTER INFO) as a record; `#` headers skipped. */
export function parseInfo (text: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon <= 0 || line.startsWith('#')) continue
    fields[line.slice(0, colon)] = line.slice(colon + 1)
  }
  return fields
}

export async function info (port: number, section?: string): Promise<Record<string, string>> {
  const text = await command(port, 'INFO', ...(section === undefined ? [] : [section]))
  return parseInfo(String(text))
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * Calls `check` every `every` ms until it returns true, at most `ms` in all.
 * A check that throws counts as not yet (a server still starting refuses);
 * the last error and `what` make the message when time runs out.
 */
export async function until (what: string, check: () => Promise<boolean>, ms = 20_000, every = 100): Promise<void> {
  const deadline = Date.now() + ms
  let last: unknown
  for (let round = 0; round <= Math.ceil(ms / every); round++) {
    try {
      if (await check()) return
    } catch (err) {
      last = err
    }
    if (Date.now() >= deadline) break
    await sleep(every)
  }
  const cause = last instanceof Error ? `: last error ${last.message}` : ''
  throw new Error(`timed out after ${ms} ms waiting for ${what}${cause}`)
}

/**
 * `count` loopback ports, distinct from each other and from `taken`. Each was
 * free a moment ago; nothing can hold it for us until the server binds it.
 */
export async function freePorts (count: number, taken: ReadonlySet<number> = new Set()): Promise<number[]> {
  const ports = new Set<number>()
  // the kernel rarely hands out the same port twice in a row; a few spares suffice
  for (let tries = 0; ports.size < count && tries < count * 10; tries++) {
    const port = await freePort()
    if (!taken.has(port)) ports.add(port)
  }
  if (ports.size < count) throw new Error(`could not find ${count} distinct free ports`)
  return [...ports]
}
