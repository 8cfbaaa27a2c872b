/**
 * The record of who holds a client id, left behind by a cluster node that
 * died (docs/behaviour.md §8): a clean session's connection is recorded in
 * Redis with its node's id, and stops counting once that node misses three
 * heartbeats, so the id is not locked away for good. Until a node has been
 * up that long itself it cannot tell a dead node from one it has not heard
 * yet, and the record counts.
 */
import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'
import type { Aedes } from 'aedes'
import { startRedis, type TestRedis } from '../../harness/redis.js'
import { redisNode } from '../../src/cluster/redis.js'
import type { ClusterLimits, P2POptions } from '../../src/index.js'
import { ownerMarker } from '../../src/plugin/channel.js'
import { addSubscriptions, destroyPersistence, subscriptionsOf } from '../../src/plugin/host-store.js'
import { captureLog, connackCode, startBroker, type TestBroker } from '../helpers/broker.js'
import { until } from '../helpers/messages.js'

const HEARTBEAT_MS = 200
let redis: TestRedis
before(async () => { redis = await startRedis({ durable: false }) })
after(async () => { await redis.stop() })

function passwords (broker: Aedes): void {
  broker.authenticate = (_client, username, password, done) => { done(null, password?.toString() === `pw-${username ?? ''}`) }
}

// every test's nodes are closed after it, the last started first
const started: TestBroker[] = []
afterEach(async () => {
  for (const n of started.splice(0).reverse()) await n.close()
})

async function node (plugin: P2POptions = {}, limits: Partial<ClusterLimits> = {}): Promise<TestBroker> {
  const parts = redisNode(redis.url, captureLog(), limits)
  const broker = await startBroker({
    setup: passwords,
    plugin: { ...plugin, cluster: parts.cluster },
    aedes: { mq: parts.mq as never, persistence: parts.persistence as never, heartbeatInterval: HEARTBEAT_MS },
    teardown: destroyPersistence
  })
  started.push(broker)
  return broker
}

const eve = { username: 'eve', password: 'pw-eve' }

describe('two users connecting with one fresh id at once, on two nodes', () => {
  it('lets at most one of them in, and that one keeps the id; never locked for both', async () => {
    const a = await node()
    const b = await node()
    const login = (user: string): { username: string, password: string, clean: false } => ({ username: user, password: `pw-${user}`, clean: false })
    for (let i = 0; i < 10; i++) {
      const id = `race-${i}`
      let codes: Array<number | 'closed'> = []
      // both may read the store before the other writes; on reading back, a newcomer that finds the other
      // gives way; if both did, they try again, as clients do, not in the same millisecond
      for (let round = 0; round < 5 && !codes.includes(0); round++) {
        const later = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, round * 50)) }
        codes = await Promise.all([connackCode(a.port, id, login('alice')), later().then(async () => connackCode(b.port, id, login('bob')))])
        assert.ok(codes.filter((code) => code === 0).length <= 1, `${id}: not both in (alice ${codes[0]}, bob ${codes[1]})`)
      }
      assert.ok(codes.includes(0), `${id}: one got in within five rounds`)
      const [keeper, other] = codes[0] === 0 ? ['alice', 'bob'] : ['bob', 'alice']
      assert.equal(await connackCode(b.port, id, login(keeper)), 0, `${id}: ${keeper} keeps it`)
      assert.equal(await connackCode(a.port, id, login(other)), 5, `${id}: and ${other} does not get it`)
    }
  })
})

describe('the record of a clean connection on another node', () => {
  it('keeps the id its user\'s while that node lives, and not once a node that died has missed three heartbeats', async () => {
    const a = await node()
    const b = await node()
    const bornAt = Date.now()
    await a.connect('kiosk-1', { username: 'alice', password: 'pw-alice' })
    assert.equal(await connackCode(b.port, 'kiosk-1', eve), 5)
    // what a node that was SIGKILLed leaves: its record, and no heartbeat
    await addSubscriptions(b.broker, 'kiosk-2', [{ topic: ownerMarker('kiosk-2', 'alice', 'a-node-that-died'), qos: 0 }])
    if (Date.now() - bornAt < 2 * HEARTBEAT_MS) assert.equal(await connackCode(b.port, 'kiosk-2', eve), 5, 'too young to tell')
    await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS + 100 - (Date.now() - bornAt)))
    assert.equal(await connackCode(b.port, 'kiosk-2', eve), 0)
    const left = (await subscriptionsOf(b.broker, 'kiosk-2')).map((sub) => sub.topic)
    assert.deepEqual(left, [ownerMarker('kiosk-2', 'eve', b.broker.id)], 'the dead node\'s record is gone; eve\'s is there')
    // alice's node still beats: her id stays hers
    assert.equal(await connackCode(b.port, 'kiosk-1', eve), 5)
  })
})

describe('target_user while Redis does not answer', () => {
  it('holds the messages waiting for the target\'s owner within max_buffered_bytes, and refuses them within a second', async () => {
    const rules: P2POptions['rules'] = [{ action: 'allow', target_user: '${username}' }, { action: 'deny' }]
    const a = await node({ rules }, { max_buffered_bytes: 4 * 1024 * 1024 })
    const b = await node({ rules })
    const frozen = redis.pid()
    const tablet = await b.connect('bob-tablet', { username: 'bob', password: 'pw-bob' })
    const laptop = await a.connect('bob-laptop', { username: 'bob', password: 'pw-bob' })
    process.kill(frozen, 'SIGSTOP')
    try {
      // 100 x 256 KiB: the owner of a target on the other node is read from Redis, which is frozen
      const payload = Buffer.alloc(256 * 1024)
      for (let i = 0; i < 100; i++) laptop.publish('p2p/bob-tablet/x', payload, { qos: 0 })
      await until(() => a.plugin.counters.dropped.cluster_unavailable + a.plugin.counters.dropped.refused === 100, 10_000, 'every message answered')
      const { cluster_unavailable: unavailable, refused } = a.plugin.counters.dropped
      assert.ok(unavailable >= 80, `past 4 MiB they are not held: ${unavailable} dropped at once, ${refused} refused after the wait`)
    } finally {
      // the nodes close against a Redis that answers
      process.kill(frozen, 'SIGCONT')
    }
    await tablet.endAsync()
  })
})

describe('a newcomer trying an id while its owner reconnects', () => {
  it('does not take it: in the moment the owner\'s clean reconnect has wiped its records, the newcomer gives way', async () => {
    const a = await node()
    const b = await node()
    type Store = { addSubscriptions: (c: { id: string }, subs: unknown[]) => Promise<void>, subscriptionsByClient: (c: { id: string }) => Promise<unknown[]> }
    const storeOf = (n: TestBroker): Store => (n.broker as unknown as { persistence: Store }).persistence
    const gate = (): { wait: Promise<void>, open: () => void } => {
      let open = (): void => {}
      const wait = new Promise<void>((resolve) => { open = resolve })
      return { wait, open }
    }
    const zoe = { username: 'zoe', password: 'pw-zoe' }
    const held = await a.connect('zoe-phone', { ...zoe, clean: false })
    await held.endAsync()
    // node A: zoe's records, written again after Aedes wiped them for her clean reconnect, wait for the gate
    const zoeWrites = gate()
    const storeA = storeOf(a)
    const addA = storeA.addSubscriptions.bind(storeA)
    storeA.addSubscriptions = async (c, subs) => { if (c.id === 'zoe-phone') await zoeWrites.wait; return addA(c, subs) }
    // node B: aaron's read-back (his second read of the id) waits for the other gate
    const aaronReadsBack = gate()
    const storeB = storeOf(b)
    const readB = storeB.subscriptionsByClient.bind(storeB)
    let reads = 0
    storeB.subscriptionsByClient = async (c) => { if (c.id === 'zoe-phone' && ++reads === 2) await aaronReadsBack.wait; return readB(c) }

    // zoe stays connected: her record stays, as it does for an owner who is back
    const zoeBack = a.connect('zoe-phone', zoe)
    // until Aedes has wiped zoe's records, aaron is refused outright
    let aaron: Promise<number | 'closed'> | undefined
    for (let i = 0; i < 100 && aaron === undefined; i++) {
      if ((await readB({ id: 'zoe-phone' })).length === 0) aaron = connackCode(b.port, 'zoe-phone', { username: 'aaron', password: 'pw-aaron' })
      else await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.ok(aaron !== undefined, 'zoe\'s records were wiped')
    while (reads < 2) await new Promise((resolve) => setTimeout(resolve, 10))
    // aaron is in and recorded; now zoe writes and reads back, then aaron reads back
    zoeWrites.open()
    const zoeClient = await zoeBack
    aaronReadsBack.open()
    assert.notEqual(await aaron, 0, 'aaron gives way')
    assert.equal(zoeClient.connected, true, 'zoe is in')
    const left = (await subscriptionsOf(b.broker, 'zoe-phone')).map((sub) => sub.topic)
    assert.ok(!left.some((topic) => topic.includes('/aaron')), `no record of aaron's is left: ${left.join(', ')}`)
    assert.ok(left.includes(ownerMarker('zoe-phone', 'zoe', a.broker.id)), 'zoe\'s is')
    // aaron's connection was closed a moment ago: its node lets go of his channel before it closes its Redis connections
    await new Promise((resolve) => setTimeout(resolve, 200))
  })
})
