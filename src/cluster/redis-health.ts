/**
 * How a node knows its Redis connections are well (docs/behaviour.md §7):
 * each connection's losses and returns, logged once each; PINGs answered in
 * time; the commands still waiting on them.
 */
import { Cluster as RedisCluster, type Redis } from 'ioredis'
import type { Logger } from '../plugin/log.js'

// A Redis that takes longer than this to answer a PING counts as away, even
// while its connection stays open (a frozen server, a network partition).
const PING_EVERY_MS = 1000
const PING_WAIT_MS = 1000

/**
 * True while the last PING was answered in time; the watch ends with the
 * connection. On a Redis Cluster every master is asked: with one master
 * down the others still answer, but every command for its slots waits
 * until a replica takes them over, and a client let in meanwhile would
 * leave its session's reads waiting for it. A round waits for its answers
 * (ioredis fails those of a node it drops) before the next one is asked.
 */
export function pingWatch (redis: Redis | RedisCluster): () => boolean {
  let askedAt = 0
  let answered = true
  const ping = async (): Promise<unknown> => redis instanceof RedisCluster
    ? await Promise.all(redis.nodes('master').map(async (node) => await node.ping()))
    : await redis.ping()
  const timer = setInterval(() => {
    if (redis.status !== 'ready') return
    if (askedAt !== 0) {
      // the last one is still out
      if (Date.now() - askedAt > PING_WAIT_MS) answered = false
      return
    }
    askedAt = Date.now()
    ping().then(() => {
      askedAt = 0
      answered = true
    }, () => { askedAt = 0 })
  }, PING_EVERY_MS)
  timer.unref()
  redis.once('end', () => { clearInterval(timer) })
  return () => answered && (askedAt === 0 || Date.now() - askedAt <= PING_WAIT_MS)
}

/**
 * ioredis's own queues: sent and awaiting a reply, and held while it is not
 * connected; on a Redis Cluster, the cluster's and each node's.
 */
export function pendingCommands (redis: Redis | RedisCluster): number {
  const queued = (conn: unknown): number => {
    const queues = conn as { commandQueue?: { length: number }, offlineQueue?: { length: number } }
    return (queues.commandQueue?.length ?? 0) + (queues.offlineQueue?.length ?? 0)
  }
  return redis instanceof RedisCluster ? redis.nodes('all').reduce((sum, node) => sum + queued(node), queued(redis)) : queued(redis)
}

export interface Watched {
  /** lost, and not back yet */
  readonly down: boolean
}

export interface Phase {
  /** until the node has found Redis at start, or given up */
  starting: boolean
  lastError: string | undefined
}

/**
 * One line when a connection is lost and one when it is back, however many
 * reconnection attempts come in between. The connections keep commands
 * queued through an outage instead of failing them (redis.ts); what waits
 * is bounded by the clients it waits for (docs/behaviour.md §7).
 */
export function watch (redis: Redis | RedisCluster, role: string, log: Logger, phase: Phase): Watched {
  const state = { down: false, sinceStart: false }
  const lost = (reason: string): void => {
    if (state.down) return
    state.down = true
    state.sinceStart = phase.starting
    if (phase.starting) {
      log.warn({ redis: role, err: reason }, 'Redis unreachable: waiting for it before listening')
      return
    }
    log.error({ redis: role, err: reason }, 'Redis unreachable: clients connected here are served, new clients get CONNACK 3 until it is back')
  }
  redis.on('error', (err: Error) => {
    phase.lastError = err.message
    lost(err.message)
  })
  // a dropped connection that reconnects at the first try never raises 'error'
  redis.on('reconnecting', () => { lost('connection lost') })
  redis.on('ready', () => {
    if (!state.down) return
    state.down = false
    if (state.sinceStart) log.info({ redis: role }, 'Redis reached')
    else log.warn({ redis: role }, 'Redis connection restored')
  })
  return state
}
