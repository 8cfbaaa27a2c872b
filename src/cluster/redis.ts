/**
 * The Redis connections of a cluster node (docs/behaviour.md §5, §10): every
 * node shares one Redis, a Redis Cluster or a Sentinel set through the Aedes
 * ecosystem's own packages — mqemitter-redis for pub/sub and
 * aedes-persistence-redis for sessions and queues — and routes P2P messages
 * on exact per-client channels, so each message goes to the one node holding
 * the target and its per-message cost does not grow with connected clients.
 * On a Redis Cluster the channels ride on sharded pub/sub (sharded.ts).
 */
import type { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { Cluster as RedisCluster, Redis } from 'ioredis'
import type { Logger } from '../plugin/log.js'
import { ConfigError } from '../plugin/errors.js'
import { channelCluster, emitterChannels, type ReceiverCount } from './emitter.js'
import { redisTarget, type RedisTarget } from './redis-target.js'
import { onePublisher } from './cluster-publish.js'
import { orderQueues } from './ordered-queues.js'
import { pendingCommands, pingWatch, watch, type Phase, type Watched } from './redis-health.js'
import { shardedChannels } from './sharded.js'
import { loadAhead, sessionRecorded, unindexedRecords } from './subscription-index.js'
import type { Cluster, ClusterLimits } from './strategy.js'

const require = createRequire(import.meta.url)
// both are CommonJS with no ESM entry
const MQEmitterRedis = require('mqemitter-redis') as (opts: object) => unknown
const redisPersistence = require('aedes-persistence-redis') as (opts: object) => unknown

// How long a command to a Redis Cluster waits, at least, for a failed
// master's slots to be served again (so many tries, each after a slot
// refresh), and how often it tries meanwhile.
const FAILOVER_WAIT_MS = 30_000
const FAILOVER_RETRY_MS = 200

/** What Aedes.createBroker() and register() take to make a broker one node of the cluster. */
export interface RedisNode {
  mq: unknown
  persistence: unknown
  cluster: Cluster
  /** false while any of the node's connections to Redis is down or Redis does not answer */
  available (): boolean
  /** Commands written to Redis or waiting for it that have no answer yet. */
  unanswered (): number
  /**
   * Resolves once every connection is up, or with `up: false` and the last
   * connection error if that takes longer than `ms`. Until it is called and
   * settled, a lost connection is logged as one being waited for: nothing is
   * served yet.
   */
  connected (ms: number): Promise<{ up: boolean, lastError?: string }>
  /** Drops every connection at once, whatever it still has to send: for a shutdown that cannot wait. */
  disconnect (): void
}

export function redisNode (url: string, log: Logger, limits: Partial<ClusterLimits> = {}): RedisNode {
  const target = redisTarget(url)
  if (typeof target === 'string') throw new ConfigError(`--redis ${target}`, 'cluster.redis')
  const connections: Array<Redis | RedisCluster> = []
  const states: Watched[] = []
  const phase: Phase = { starting: true, lastError: undefined }
  // named so `CLIENT LIST` shows which node and role each connection is
  const connect = <T extends Redis | RedisCluster>(role: string, sharded = false): T => {
    const redis = connection(target, `aedes-p2p:${process.pid}:${role}`, sharded) as T
    states.push(watch(redis, role, log, phase))
    connections.push(redis)
    return redis
  }
  const pubConn = connect('pubsub-out')
  const subConn = connect('pubsub-in')
  const mq = MQEmitterRedis({ subConn, pubConn: target.kind === 'cluster' ? onePublisher(pubConn as RedisCluster) : pubConn }) as { state: EventEmitter }
  // mqemitter-redis re-emits every connection error here, and an 'error'
  // event nobody listens to would kill the process; watch() already logs it
  mq.state.on('error', (err: Error) => { log.debug({ err: err.message }, 'Redis emitter error') })
  unindexedRecords(mq)
  const store = connect('persistence')
  loadAhead(store)
  const hasSession = sessionRecorded(store)
  const answering = pingWatch(store)
  // On a Redis Cluster a classic PUBLISH reaches every shard: client channels
  // go on sharded pub/sub instead, on a subscriber connection per shard,
  // made now with the others so that the wait for Redis at start covers it
  const channelsIn = target.kind === 'cluster' ? connect<RedisCluster>('channels-in', true) : undefined
  const cluster = channelsIn !== undefined
    ? channelCluster(limits, (broker) => {
      // Aedes closes the emitter's connections and the store's; this one is the strategy's own
      broker.once('closed', () => { channelsIn.quit().catch(() => { channelsIn.disconnect() }) })
      return shardedChannels(channelsIn, pubConn as RedisCluster, log, (then) => { afterRestored(channelsIn, then) })
    }, hasSession)
    : channelCluster(limits, (broker) => ({
      ...emitterChannels(broker, receiverCount(pubConn as Redis)),
      heardAgain: (then) => { afterRestored(subConn, then) }
    }), hasSession)
  return {
    mq,
    // told it is a cluster, the persistence keeps retained messages where a cluster can scan them
    persistence: target.kind === 'cluster' ? orderedOnCluster(redisPersistence({ conn: store, cluster: true })) : redisPersistence({ conn: store }),
    cluster,
    // a connection still being made at start is not a lost one: its commands wait a moment
    available: () => answering() && states.every((state) => !state.down),
    unanswered: () => connections.reduce((sum, c) => sum + pendingCommands(c), 0),
    async connected (ms) {
      const deadline = Date.now() + ms
      // polled rather than awaited: a connection may be up, then down again before the others are
      while (!connections.every((c) => c.status === 'ready') || !mastersReady(pubConn)) {
        if (Date.now() >= deadline) {
          phase.starting = false
          return { up: false, lastError: phase.lastError }
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      phase.starting = false
      return { up: true }
    },
    disconnect () {
      for (const c of connections) c.disconnect(false)
    }
  }
}

// ioredis subscribes again once a connection is back: what was sent before
// that is looked for in the queues a moment later
const RESUBSCRIBED_MS = 1000

/** Calls `then` a moment after each time `conn` is back from a loss (and has subscribed again). */
function afterRestored (conn: Redis | RedisCluster, then: () => void): void {
  let lost = false
  let timer: NodeJS.Timeout | undefined
  conn.on('close', () => { lost = true })
  // One catch-up however many connections come back at once, each of which
  // reads every persistent client's queue: a moment after the last of them.
  // A Redis Cluster's subscribers may come back, be lost and come back again
  // in a failover, and only the last return is the one that hears everything.
  const back = (): void => {
    if (!lost) return
    lost = false
    clearTimeout(timer)
    timer = setTimeout(then, RESUBSCRIBED_MS)
    timer.unref()
  }
  conn.on('ready', back)
  // a Redis Cluster's sharded subscribers come back after a failover or a reshard, the cluster itself staying up
  conn.on('-subscriber', () => { lost = true })
  conn.on('subscribersReady', back)
}

/**
 * On a Redis Cluster, the publishing connection's connection to each master
 * is up. ioredis writes a PUBLISH or SPUBLISH (commands Redis takes while
 * loading) to a connection still in its handshake, ahead of those it queued
 * while connecting: two messages sent back to back could swap. A cluster's
 * node connections are made at their first command, so the publishing
 * ones are made here, at start, before any message is sent.
 */
function mastersReady (conn: Redis | RedisCluster): boolean {
  if (!(conn instanceof RedisCluster)) return true
  let ready = true
  for (const node of conn.nodes('master')) {
    if (node.status === 'ready') continue
    ready = false
    if (node.status === 'wait') node.connect().catch(() => { /* the next poll sees it still down */ })
  }
  return ready
}

/** The package's callback-style persistence, its queues kept in order: Aedes uses the promise-based one inside it. */
function orderedOnCluster (persistence: unknown): unknown {
  orderQueues((persistence as { asyncPersistence: Parameters<typeof orderQueues>[0] }).asyncPersistence)
  return persistence
}

/**
 * One connection to the target: a Redis, a Redis Cluster (through any of its
 * nodes), or the master a Sentinel set names now, followed through failovers.
 * `maxRetriesPerRequest: null` keeps commands queued through an outage
 * instead of failing them; what waits is bounded by the clients it waits
 * for (docs/behaviour.md §7).
 */
function connection (target: RedisTarget, connectionName: string, sharded: boolean): Redis | RedisCluster {
  if (target.kind === 'single') return new Redis(target.url, { maxRetriesPerRequest: null, connectionName })
  const auth = { username: target.username, password: target.password, ...(target.tls ? { tls: {} } : {}) }
  if (target.kind === 'sentinel') {
    // ioredis uses TLS to the master a sentinel names only when told to in both places
    return new Redis({ sentinels: target.sentinels, name: target.name, ...auth, enableTLSForSentinelMode: target.tls, maxRetriesPerRequest: null, connectionName })
  }
  return new RedisCluster(target.nodes, {
    redisOptions: { ...auth, maxRetriesPerRequest: null, connectionName },
    shardedSubscribers: sharded,
    // A command waits through a failover or a reshard rather than failing:
    // ioredis sends it again every FAILOVER_RETRY_MS, for FAILOVER_WAIT_MS or
    // more in all, where by default it gives up after 16 tries (1.6 s), sooner
    // than a replica is promoted. A failed write would close the connection
    // it was for (Aedes closes a client whose store write fails).
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    retryDelayOnFailover: FAILOVER_RETRY_MS,
    retryDelayOnClusterDown: FAILOVER_RETRY_MS,
    maxRedirections: Math.ceil(FAILOVER_WAIT_MS / FAILOVER_RETRY_MS)
  })
}

/**
 * Redis answers each PUBLISH with the number of subscribers it reached;
 * mqemitter-redis drops that answer. Its emit() makes its PUBLISH on the
 * connection it is given, synchronously, and chains its callback on the
 * promise that PUBLISH returns, so a wrapper around the connection's publish
 * sees the one PUBLISH an emit makes, and reads its answer first.
 */
function receiverCount (pub: Redis): ReceiverCount {
  let slot: { count: number | undefined } | undefined
  const publish = pub.publish.bind(pub) as (channel: string, message: Buffer | string) => Promise<number>
  ;(pub as unknown as { publish: typeof publish }).publish = (channel, message) => {
    const filling = slot
    slot = undefined
    const sent = publish(channel, message)
    if (filling !== undefined) sent.then((count) => { filling.count = count }, () => {})
    return sent
  }
  return {
    counting (emit) {
      const filling = { count: undefined }
      slot = filling
      try {
        emit()
      } finally {
        slot = undefined
      }
      return filling
    }
  }
}
