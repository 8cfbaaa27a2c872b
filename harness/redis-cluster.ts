/**
 * A throwaway Redis Cluster: real redis-server processes on free loopback
 * ports, joined by `redis-cli --cluster create`.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { command, freePorts, info as serverInfo, parseInfo, spawnRedis, until, type RedisProcess } from './redis-proc.js'

export { redisMissing } from './redis-proc.js'

const run = promisify(execFile)
const SLOTS = 16384

export interface ClusterNode {
  port: number
  role: 'master' | 'replica'
  pid (): number
  /** SIGKILL, resolved once the process has exited */
  stop (): Promise<void>
}

export interface PublishCounters {
  /** cluster bus messages carrying a classic PUBLISH, sent by all nodes together */
  publish: number
  /** cluster bus messages carrying an SPUBLISH, sent by all nodes together */
  publishshard: number
}

export interface TestRedisCluster {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`, the masters */
  url: string
  nodes: ClusterNode[]
  /** CLUSTER INFO of one node; with a section, INFO <section> instead */
  info (port: number, section?: string): Promise<Record<string, string>>
  /** summed over the nodes still running */
  publishCounters (): Promise<PublishCounters>
  /** FLUSHALL on every master still running */
  flushAll (): Promise<void>
  /** the port of the master serving the slot of `key` */
  slotOwner (key: string): Promise<number>
  stop (): Promise<void>
}

export interface ClusterOptions {
  /** at least 3, as redis-cli requires (default 3) */
  masters?: number
  /** replicas of each master (default 0) */
  replicasPerMaster?: number
}

export async function startRedisCluster ({ masters = 3, replicasPerMaster = 0 }: ClusterOptions = {}): Promise<TestRedisCluster> {
  if (!Number.isInteger(masters) || masters < 3) throw new Error(`masters must be an integer of at least 3, got ${String(masters)} (${typeof masters})`)
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) throw new Error(`replicasPerMaster must be a non-negative integer, got ${String(replicasPerMaster)} (${typeof replicasPerMaster})`)
  const count = masters * (1 + replicasPerMaster)
  const dir = await mkdtemp(join(tmpdir(), 'p2p-redis-cluster-'))
  // each node needs a second port for the cluster bus; by default it is port+10000,
  // which nobody checked was free, so every bus port is chosen and passed explicitly
  const ports = await freePorts(count * 2)
  const servers: RedisProcess[] = []
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.map(async (s) => s.stop()))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < count; i++) {
      const port = ports[i] as number
      const busPort = ports[count + i] as number
      servers.push(await spawnRedis(port, [
        '--port', String(port), '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
        '--save', '', '--appendonly', 'no', '--dir', dir,
        // a master otherwise waits 5 s for more replicas before it sends the first copy
        '--repl-diskless-sync-delay', '0'
      ]))
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`)
    // redis-cli waits for the nodes to agree on the configuration itself; the bound is
    // for a redis-cli that hangs, not a measure of how long it should take
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { timeout: 30_000 })
    await until('every node to see the whole cluster, all slots served', async () => {
      for (const s of servers) {
        const fields = parseInfo(String(await command(s.port, 'CLUSTER', 'INFO')))
        if (fields.cluster_state !== 'ok' || fields.cluster_slots_ok !== String(SLOTS) || fields.cluster_known_nodes !== String(count)) return false
        if (!settled(String(await command(s.port, 'CLUSTER', 'NODES')), masters, masters * replicasPerMaster)) return false
      }
      return true
    })
    const roles = await Promise.all(servers.map(async (s) => {
      const [role] = await command(s.port, 'ROLE') as [string]
      return role === 'master' ? 'master' : 'replica'
    }))
    const nodes: ClusterNode[] = servers.map((s, i) => ({ port: s.port, role: roles[i] ?? 'master', pid: s.pid, stop: s.stop }))
    // a replica in the cluster is not yet a copy of its master until its first sync is done
    await until('every replica to be in sync with its master', async () => {
      for (const n of nodes) {
        if (n.role === 'replica' && (await serverInfo(n.port, 'replication')).master_link_status !== 'up') return false
      }
      return true
    })
    return cluster(nodes, servers, stopAll)
  } catch (err) {
    await stopAll()
    throw err
  }
}

/** `servers[i]` is the process of `nodes[i]`. */
function cluster (nodes: ClusterNode[], servers: RedisProcess[], stopAll: () => Promise<void>): TestRedisCluster {
  const live = (): ClusterNode[] => nodes.filter((_n, i) => servers[i]?.running() === true)
  const info = async (port: number, section?: string): Promise<Record<string, string>> =>
    section === undefined ? parseInfo(String(await command(port, 'CLUSTER', 'INFO'))) : serverInfo(port, section)
  // the first node that answers; a test may have stopped some
  const ask = async (...args: Array<string | number>): Promise<unknown> => {
    let last: unknown = new Error('no node of the cluster is running')
    for (const n of live()) {
      try {
        return await command(n.port, ...args)
      } catch (err) {
        last = err
      }
    }
    throw last
  }
  const masters = nodes.filter((n) => n.role === 'master')
  return {
    url: `redis+cluster://${masters.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    nodes,
    info,
    async publishCounters () {
      const counters = { publish: 0, publishshard: 0 }
      for (const n of live()) {
        const fields = await info(n.port)
        counters.publish += Number(fields.cluster_stats_messages_publish_sent ?? 0)
        counters.publishshard += Number(fields.cluster_stats_messages_publishshard_sent ?? 0)
      }
      return counters
    },
    async flushAll () {
      // only masters take writes; each replica follows its master
      await Promise.all(live().filter((n) => n.role === 'master').map(async (n) => command(n.port, 'FLUSHALL')))
    },
    async slotOwner (key) {
      const slot = Number(await ask('CLUSTER', 'KEYSLOT', key))
      // [[first, last, [ip, port, id], ...replicas], ...]
      const ranges = await ask('CLUSTER', 'SLOTS') as Array<[number, number, [string, number, string], ...unknown[]]>
      const range = ranges.find(([first, last]) => first <= slot && slot <= last)
      if (range === undefined) throw new Error(`no master serves slot ${slot} (key ${key})`)
      return range[2][1]
    },
    stop: stopAll
  }
}

/**
 * True when a node's CLUSTER NODES shows every master and every replica
 * attached to its master, with a link up to each. Slots are served before
 * that: a master may not know its replica yet, and then sends it no SPUBLISH;
 * a node without a link to another sends that one no PUBLISH.
 */
function settled (nodesText: string, masters: number, replicas: number): boolean {
  let seenMasters = 0
  let seenReplicas = 0
  // <id> <ip:port@bus> <flags> <master id or -> <ping> <pong> <epoch> <link> <slots…>
  for (const line of nodesText.split('\n')) {
    if (line === '') continue
    const [, , flags = '', master = '-', , , , link = ''] = line.split(' ')
    if (link !== 'connected' || /fail|handshake|noaddr/.test(flags)) return false
    if (flags.includes('master')) seenMasters++
    else if (flags.includes('slave') && master !== '-') seenReplicas++
  }
  return seenMasters === masters && seenReplicas === replicas
}
