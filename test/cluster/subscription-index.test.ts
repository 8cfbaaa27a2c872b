/**
 * What a node holds of the sessions in Redis (docs/cluster.md, "Start-up
 * cost"): the persistence's index of every stored subscription, on every
 * node, without the plugin's own records of each session (its channel, its
 * owner), which are asked of the store instead; loaded at start with reads
 * in flight together rather than one round trip per session.
 */
import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'
import { startRedis, type TestRedis } from '../../harness/redis.js'
import { redisNode } from '../../src/cluster/redis.js'
import { channelOf, ownerMarker, SESSIONS_TOPIC } from '../../src/plugin/channel.js'
import { addSubscriptions, clientsSubscribedTo, destroyPersistence, subscriptionsByTopic } from '../../src/plugin/host-store.js'
import { captureLog, startBroker, type TestBroker } from '../helpers/broker.js'
import { waitFor } from '../helpers/messages.js'

// more than the reads kept in flight at start (512), so the look-ahead refills many times
const SESSIONS = 1500
// an id the store's keys and the channel both have to escape
const ODD_ID = 'dev/ü 1+#*'
const ids = [ODD_ID, ...Array.from({ length: SESSIONS - 1 }, (_, i) => `dev-${i}`)]

let redis: TestRedis
before(async () => { redis = await startRedis({ durable: false }) })
after(async () => { await redis.stop() })

const started: TestBroker[] = []
afterEach(async () => {
  for (const n of started.splice(0).reverse()) await n.close()
})

async function node (): Promise<TestBroker> {
  const parts = redisNode(redis.url, captureLog())
  await parts.connected(20_000)
  const broker = await startBroker({
    plugin: { cluster: parts.cluster },
    aedes: { mq: parts.mq as never, persistence: parts.persistence as never },
    teardown: destroyPersistence
  })
  started.push(broker)
  return broker
}

/** What the plugin stores for a persistent session with an owner, beside the client's own subscription. */
const session = (id: string, i: number): Array<{ topic: string, qos: number }> => [
  { topic: channelOf(id), qos: 2 },
  { topic: SESSIONS_TOPIC, qos: 1 },
  { topic: ownerMarker(id, 'owner'), qos: 1 },
  { topic: `devices/${i}/commands`, qos: 1 }
]

async function listed (n: TestBroker): Promise<Set<string>> {
  const all = new Set<string>()
  for await (const id of clientsSubscribedTo(n.broker, SESSIONS_TOPIC)) all.add(id)
  return all
}

describe('the subscription index each node holds', () => {
  it('has every stored subscription and the list of sessions, but none of the plugin\'s records, whether stored before the node started or after', async () => {
    const first = await node()
    // the store's real write path: the record, then the broadcast every node indexes from
    for (let i = 0; i < SESSIONS; i += 100) {
      await Promise.all(ids.slice(i, i + 100).map(async (id, j) => { await addSubscriptions(first.broker, id, session(id, i + j)) }))
    }
    const late = await node()
    for (const n of [first, late]) {
      const which = n === first ? 'the node that saw them written' : 'the node started after'
      for (const [i, id] of [[0, ODD_ID], [SESSIONS - 1, ids[SESSIONS - 1] as string]] as const) {
        assert.deepEqual((await subscriptionsByTopic(n.broker, `devices/${i}/commands`)).map((s) => s.clientId), [id], `${which}: a client's own subscription`)
        assert.deepEqual(await subscriptionsByTopic(n.broker, channelOf(id)), [], `${which}: no channel record`)
        assert.deepEqual(await subscriptionsByTopic(n.broker, ownerMarker(id, 'owner')), [], `${which}: no owner record`)
      }
      assert.equal((await listed(n)).size, SESSIONS, `${which}: every session listed`)
    }
  })

  it('still finds a session that is in no index, and queues for it from another node', async () => {
    // addressable in a topic: no '/', '+' or '#'
    const bobId = 'bob ü*%'
    const holder = await node()
    const bob = await holder.connect(bobId, { clean: false })
    await bob.endAsync()
    const sender = await node()
    const alice = await sender.connect('alice')
    await alice.publishAsync(`p2p/${bobId}/hello`, 'queued', { qos: 1 })
    assert.equal(sender.plugin.counters.queued, 1, 'queued, not dropped as no_session')
    await alice.publishAsync('p2p/nobody-here/hello', 'lost', { qos: 1 })
    assert.equal(sender.plugin.counters.dropped.no_session, 1)
    const back = await holder.connectCollecting(bobId, { clean: false })
    await waitFor(back.got, 1)
    assert.deepEqual(back.got.map((m) => [m.topic, m.payload.toString()]), [['hello', 'queued']])
  })
})
