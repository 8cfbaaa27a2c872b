/**
 * The topologies the P2P behaviour suite runs on, the way mqemitter's
 * abstractTest serves every backend: one broker; two in-process brokers
 * sharing an emitter and a persistence; two nodes on a real Redis. Senders
 * connect to one node and targets to the other, so every message that can
 * cross nodes does.
 */
import { afterEach } from 'node:test'
import type { Aedes, AedesOptions } from 'aedes'
import { Redis } from 'ioredis'
import { startRedis, type TestRedis } from '../../harness/redis.js'
import { startRedisCluster, type TestRedisCluster } from '../../harness/redis-cluster.js'
import { redisNode, type RedisNode } from '../../src/cluster/redis.js'
import { emitterCluster, type CounterSnapshot, type P2POptions } from '../../src/index.js'
import { DROP_REASONS } from '../../src/plugin/counters.js'
import { destroyPersistence, subscriptionsByTopic } from '../../src/plugin/host-store.js'
import { captureLog, startBroker, type LogLine, type TestBroker } from './broker.js'

// how long a subscription may take to reach every node's index
const INDEX_WAIT_MS = 5000

export interface NodeOptions {
  plugin?: P2POptions
  /** runs on every node before register(), to install the user's own hooks first */
  setup?: (broker: Aedes) => void
}

export interface Nodes {
  /** where senders connect */
  sender: TestBroker
  /** where targets connect; the sender's node when there is one node */
  target: TestBroker
  all: TestBroker[]
  /** every node's counters, added up */
  counters (): CounterSnapshot
  /** every node's log */
  logLines (): LogLine[]
  /**
   * Resolves once every node's index of stored subscriptions holds
   * `clientId`'s subscription to `topic`. A node learns of one made on
   * another a moment later (aedes-persistence-redis broadcasts it), and
   * until then queues no ordinary message for it while it is offline.
   */
  indexed (clientId: string, topic: string): Promise<void>
  close (): Promise<void>
}

export interface Topology {
  readonly name: string
  /**
   * One broker holds every client, so a target not connected to it is
   * connected nowhere: a message to it counts as no_session (or queued),
   * where a cluster node forwards it (counted forwarded).
   */
  readonly alone: boolean
  /**
   * A node can tell that no node holds a target (one broker; Redis counts
   * who received each PUBLISH), so a message to it counts as no_session (or
   * queued) and an MQTT 5 sender gets 0x10. Nodes sharing an in-process
   * emitter cannot: they forward it.
   */
  readonly knowsPresence: boolean
  /** before the suite, e.g. start a Redis server */
  prepare (): Promise<void>
  /** after the suite */
  dispose (): Promise<void>
  start (opts?: NodeOptions): Promise<Nodes>
}

function nodes (all: TestBroker[], after: () => Promise<void> = async () => {}): Nodes {
  const [sender, target] = [all[0] as TestBroker, all[all.length - 1] as TestBroker]
  return {
    sender,
    target,
    all,
    counters () {
      const dropped = Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as CounterSnapshot['dropped']
      const sum: CounterSnapshot = { received: 0, delivered: 0, queued: 0, forwarded: 0, dropped, limits: {} }
      for (const { plugin } of all) {
        const c = plugin.counters
        sum.received += c.received
        sum.delivered += c.delivered
        sum.queued += c.queued
        sum.forwarded += c.forwarded
        for (const reason of DROP_REASONS) sum.dropped[reason] += c.dropped[reason]
        for (const [limit, hits] of Object.entries(c.limits)) sum.limits[limit] = (sum.limits[limit] ?? 0) + hits
      }
      return sum
    },
    logLines: () => all.flatMap((b) => b.log.lines),
    async indexed (clientId, topic) {
      const deadline = Date.now() + INDEX_WAIT_MS
      for (const { broker } of all) {
        while (!(await subscriptionsByTopic(broker, topic)).some((sub) => sub.clientId === clientId)) {
          if (Date.now() > deadline) throw new Error(`${clientId}'s subscription to ${topic} not in every node's index after ${INDEX_WAIT_MS} ms`)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      }
    },
    async close () {
      await Promise.all(all.map(async (b) => b.close()))
      await after()
    }
  }
}

export const oneBroker: Topology = {
  name: 'one in-memory broker',
  alone: true,
  knowsPresence: true,
  async prepare () {},
  async dispose () {},
  async start (opts = {}) {
    return nodes([await startBroker(opts)])
  }
}

export const twoBrokersSharingAnEmitter: Topology = {
  name: 'two in-process brokers sharing an emitter',
  alone: false,
  knowsPresence: false,
  async prepare () {},
  async dispose () {},
  async start (opts = {}) {
    const first = await startBroker({ ...opts, plugin: { ...opts.plugin, cluster: emitterCluster() } })
    const shared = first.broker as unknown as Required<Pick<AedesOptions, 'mq' | 'persistence'>>
    const second = await startBroker({
      ...opts,
      plugin: { ...opts.plugin, cluster: emitterCluster() },
      aedes: { mq: shared.mq, persistence: shared.persistence }
    })
    return nodes([first, second])
  }
}

/** A store for the Redis topologies: started once per suite, emptied after each test. */
interface RedisStore { url: string, flush (): Promise<void>, stop (): Promise<void> }

export function twoNodesOnRedis (): Topology {
  return nodesOnRedis('two nodes on a real Redis', async () => {
    const redis: TestRedis = await startRedis({ durable: false })
    return {
      url: redis.url,
      async flush () {
        const client = new Redis(redis.url)
        await client.flushall()
        await client.quit()
      },
      stop: async () => { await redis.stop() }
    }
  })
}

/**
 * Two nodes on a real 3-master Redis Cluster: client channels on sharded
 * pub/sub, ordinary topics on classic pub/sub, sessions spread over the shards.
 */
export function twoNodesOnRedisCluster (): Topology {
  return nodesOnRedis('two nodes on a 3-master Redis Cluster', async () => {
    const redis: TestRedisCluster = await startRedisCluster({ masters: 3 })
    return { url: redis.url, flush: async () => { await redis.flushAll() }, stop: async () => { await redis.stop() } }
  })
}

/** Two nodes made by redisNode() on the store `start` makes, as the broker makes them for --redis. */
function nodesOnRedis (name: string, start: () => Promise<RedisStore>): Topology {
  let store: RedisStore | undefined
  const url = (): string => {
    if (store === undefined) throw new Error('prepare() starts the Redis store first')
    return store.url
  }
  return {
    name,
    alone: false,
    knowsPresence: true,
    async prepare () { store = await start() },
    async dispose () { await store?.stop() },
    async start (opts = {}) {
      const parts: RedisNode[] = []
      const node = async (): Promise<TestBroker> => {
        const made = redisNode(url(), captureLog())
        parts.push(made)
        await made.connected(20_000)
        return startBroker({
          ...opts,
          plugin: { ...opts.plugin, cluster: made.cluster },
          aedes: { mq: made.mq, persistence: made.persistence },
          teardown: destroyPersistence
        })
      }
      const all = [await node(), await node()]
      // every test starts from an empty store: client ids are reused from test to test
      return nodes(all, async () => {
        for (const made of parts) made.disconnect()
        await store?.flush()
      })
    }
  }
}

/** For a suite: fresh nodes per test, closed after it. */
export function nodesPerTest (topology: Topology): (opts?: NodeOptions) => Promise<Nodes> {
  let current: Nodes | undefined
  afterEach(async () => {
    await current?.close()
    current = undefined
  })
  return async (opts) => {
    current = await topology.start(opts)
    return current
  }
}
