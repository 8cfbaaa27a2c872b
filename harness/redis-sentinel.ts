/**
 * A throwaway Redis Sentinel set: a master, its replicas and the sentinels
 * watching them, all real processes on free loopback ports.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { command, freePorts, info, spawnRedis, until, type RedisProcess } from './redis-proc.js'

export { redisMissing } from './redis-proc.js'

export interface TestSentinelSet {
  /** `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,…/<masterName>` */
  url: string
  masterName: string
  sentinelPorts: number[]
  /** the master's port, as the first sentinel that answers reports it */
  masterPort (): Promise<number>
  /** SIGKILLs the current master; resolves with its port once it has exited */
  killMaster (): Promise<number>
  /**
   * Resolves with the new master's port once every sentinel still running
   * names the same master other than `oldPort`, and it says it is one.
   */
  waitForFailover (oldPort: number, ms?: number): Promise<number>
  stop (): Promise<void>
}

export interface SentinelOptions {
  /** replicas of the master (default 1) */
  replicas?: number
  /** sentinel processes, at least 2 for the quorum of 2 (default 3) */
  sentinels?: number
  /** the name the sentinels know the master by (default 'p2pmaster') */
  masterName?: string
}

export async function startSentinelSet ({ replicas = 1, sentinels = 3, masterName = 'p2pmaster' }: SentinelOptions = {}): Promise<TestSentinelSet> {
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`replicas must be a non-negative integer, got ${String(replicas)} (${typeof replicas})`)
  if (!Number.isInteger(sentinels) || sentinels < 2) throw new Error(`sentinels must be an integer of at least 2, the quorum, got ${String(sentinels)} (${typeof sentinels})`)
  const dir = await mkdtemp(join(tmpdir(), 'p2p-redis-sentinel-'))
  const [firstPort, ...rest] = await freePorts(1 + replicas + sentinels)
  const masterPort = firstPort as number
  const replicaPorts = rest.slice(0, replicas)
  const sentinelPorts = rest.slice(replicas)
  const servers: RedisProcess[] = []
  const watchers: RedisProcess[] = []
  const stopAll = async (): Promise<void> => {
    await Promise.all([...servers, ...watchers].map(async (s) => s.stop()))
    await rm(dir, { recursive: true, force: true })
  }
  // a directory each: a replica's full sync writes dump.rdb, which others must not overwrite
  const server = async (port: number, args: string[]): Promise<RedisProcess> => {
    const own = join(dir, String(port))
    await mkdir(own)
    // any of them may be master after a failover; a master otherwise waits 5 s for more replicas before it sends the first copy
    return spawnRedis(port, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', own, '--repl-diskless-sync-delay', '0', ...args])
  }
  try {
    // every acknowledged write on disk too, as in production; a failover relies on the replicas
    servers.push(await server(masterPort, ['--appendonly', 'yes', '--appendfsync', 'always']))
    for (const port of replicaPorts) servers.push(await server(port, ['--appendonly', 'no', '--replicaof', '127.0.0.1', String(masterPort)]))
    // a sentinel finds the replicas in the master's INFO, which it reads every 10 s:
    // connected before the sentinels start, they are found at once
    await until('every replica to be in sync with the master', async () => {
      for (const port of replicaPorts) if ((await info(port, 'replication')).master_link_status !== 'up') return false
      return true
    })
    for (const port of sentinelPorts) {
      // a sentinel rewrites its configuration file with what it learns: one file each
      const file = join(dir, `sentinel-${port}.conf`)
      await writeFile(file, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        'sentinel resolve-hostnames no',
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        `sentinel parallel-syncs ${masterName} 1`,
        ''
      ].join('\n'))
      // the same binary as redis-sentinel, which is not installed everywhere redis-server is
      watchers.push(await spawnRedis(port, [file, '--sentinel'], '+monitor master'))
    }
    // sentinels find each other through hello messages on the master, every 2 s
    await until('every sentinel to know the master, its replicas and the other sentinels', async () => {
      for (const port of sentinelPorts) {
        const [, reported] = await command(port, 'SENTINEL', 'get-master-addr-by-name', masterName) as [string, string]
        if (Number(reported) !== masterPort) return false
        if ((await command(port, 'SENTINEL', 'replicas', masterName) as unknown[]).length !== replicas) return false
        if ((await command(port, 'SENTINEL', 'sentinels', masterName) as unknown[]).length !== sentinels - 1) return false
      }
      return true
    })
  } catch (err) {
    await stopAll()
    throw err
  }

  const current = async (port: number): Promise<number> => {
    const [, reported] = await command(port, 'SENTINEL', 'get-master-addr-by-name', masterName) as [string, string]
    return Number(reported)
  }
  const masterPortNow = async (): Promise<number> => {
    let last: unknown = new Error('no sentinel is running')
    for (const port of sentinelPorts) {
      try {
        return await current(port)
      } catch (err) {
        last = err
      }
    }
    throw last
  }
  return {
    url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${masterName}`,
    masterName,
    sentinelPorts,
    masterPort: masterPortNow,
    async killMaster () {
      const port = await masterPortNow()
      const master = servers.find((s) => s.port === port)
      if (master === undefined) throw new Error(`the sentinels name ${port} as master, which is none of ours`)
      await master.stop()
      return port
    },
    async waitForFailover (oldPort, ms = 30_000) {
      let promoted = -1
      await until(`a master other than ${oldPort}`, async () => {
        const live = sentinelPorts.filter((p) => watchers.find((w) => w.port === p)?.running() === true)
        const named = new Set(await Promise.all(live.map(current)))
        const [port] = named
        if (named.size !== 1 || port === undefined || port === oldPort) return false
        if ((await info(port, 'replication')).role !== 'master') return false
        promoted = port
        return true
      }, ms)
      return promoted
    },
    stop: stopAll
  }
}
