/**
 * The record of who holds a client id, left behind by a cluster node that
 * died (docs/behaviour.md §8): a clean session's connection is recorded in
 * Redis with its node's id, and stops counting once that node misses three
 * heartbeats, so the id is not locked away for good. Until a node has been
 * up that long itself it cannot tell a dead node from one it has not heard
 * yet, and the record counts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Aedes } from 'aedes'
import { startRedis, type TestRedis } from '../../harness/redis.js'
import { redisNode } from '../../src/cluster/redis.js'
import { ownerMarker } from '../../src/plugin/channel.js'
import { addSubscriptions, destroyPersistence, subscriptionsOf } from '../../src/plugin/host-store.js'
import { captureLog, connackCode, startBroker, type TestBroker } from '../helpers/broker.js'

const HEARTBEAT_MS = 200
let redis: TestRedis
before(async () => { redis = await startRedis({ durable: false }) })
after(async () => { await redis.stop() })

function passwords (broker: Aedes): void {
  broker.authenticate = (_client, username, password, done) => { done(null, password?.toString() === `pw-${username ?? ''}`) }
}

async function node (): Promise<TestBroker> {
  const parts = redisNode(redis.url, captureLog())
  return startBroker({
    setup: passwords,
    plugin: { cluster: parts.cluster },
    aedes: { mq: parts.mq as never, persistence: parts.persistence as never, heartbeatInterval: HEARTBEAT_MS },
    teardown: destroyPersistence
  })
}

const eve = { username: 'eve', password: 'pw-eve' }

describe('the record of a clean connection on another node', () => {
  it('keeps the id its user\'s while that node lives, and not once a node that died has missed three heartbeats', async () => {
    const a = await node()
    const b = await node()
    const bornAt = Date.now()
    try {
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
    } finally {
      await b.close()
      await a.close()
    }
  })
})
