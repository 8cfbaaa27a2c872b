/**
 * The Redis connections of a cluster node (docs/behaviour.md §5): every node
 * shares one Redis through the Aedes ecosystem's own packages —
 * mqemitter-redis for pub/sub and aedes-persistence-redis for sessions and
 * queues — and routes P2P messages with emitterCluster(). P2P traffic rides
 * on exact per-client channels, so Redis routes each message to the one node
 * holding the target and its per-message cost does not grow with connected
 * clients.
 */
import type { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { Redis } from 'ioredis'
import type { Logger } from '../plugin/log.js'
import { emitterCluster } from './emitter.js'
import type { Cluster } from './strategy.js'

const require = createRequire(import.meta.url)
// both are CommonJS with no ESM entry
const MQEmitterRedis = require('mqemitter-redis') as (opts: object) => unknown
const redisPersistence = require('aedes-persistence-redis') as (opts: object) => unknown

/** What Aedes.createBroker() and register() take to make a broker one node of the cluster. */
export interface RedisNode {
  mq: unknown
  persistence: unknown
  cluster: Cluster
}

export function redisNode (url: string, log: Logger): RedisNode {
  // named so `CLIENT LIST` shows which node and role each connection is
  const connect = (role: string): Redis => watch(new Redis(url, { maxRetriesPerRequest: null, connectionName: `aedes-p2p:${process.pid}:${role}` }), role, log)
  const mq = MQEmitterRedis({ subConn: connect('pubsub-in'), pubConn: connect('pubsub-out') }) as { state: EventEmitter }
  // mqemitter-redis re-emits every connection error here, and an 'error'
  // event nobody listens to would kill the process; watch() already logs it
  mq.state.on('error', (err: Error) => { log.debug({ err: err.message }, 'Redis emitter error') })
  return { mq, persistence: redisPersistence({ conn: connect('persistence') }), cluster: emitterCluster() }
}

/**
 * One line when a connection is lost and one when it is back, however many
 * reconnection attempts come in between. `maxRetriesPerRequest: null` above
 * keeps commands queued through an outage instead of failing them.
 */
function watch (redis: Redis, role: string, log: Logger): Redis {
  let down = false
  const lost = (reason: string): void => {
    if (down) return
    down = true
    log.error({ redis: role, err: reason }, 'Redis unreachable; local clients are still served, cluster traffic waits')
  }
  redis.on('error', (err: Error) => { lost(err.message) })
  // a dropped connection that reconnects at the first try never raises 'error'
  redis.on('reconnecting', () => { lost('connection lost') })
  redis.on('ready', () => {
    if (!down) return
    down = false
    log.warn({ redis: role }, 'Redis connection restored')
  })
  return redis
}
