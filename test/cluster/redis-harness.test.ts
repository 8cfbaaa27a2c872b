/**
 * The Redis Cluster and Sentinel harnesses themselves: that what they start is
 * what the tests built on them take it to be.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Cluster, Redis } from 'ioredis'
import { redisMissing, startRedisCluster } from '../../harness/redis-cluster.js'
import { startSentinelSet } from '../../harness/redis-sentinel.js'

const skip = redisMissing()

describe('Redis Cluster harness', { skip }, () => {
  it('starts three masters that serve every slot, and counts where a publish went', { timeout: 60_000 }, async (t) => {
    const redis = await startRedisCluster()
    t.after(async () => { await redis.stop() })
    assert.equal(redis.nodes.length, 3)
    assert.ok(redis.nodes.every((n) => n.role === 'master'))
    assert.equal(redis.url, `redis+cluster://${redis.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`)
    for (const n of redis.nodes) {
      const info = await redis.info(n.port)
      assert.equal(info.cluster_state, 'ok')
      assert.equal(info.cluster_slots_ok, '16384')
    }

    const client = new Cluster([{ host: '127.0.0.1', port: redis.nodes[0]?.port ?? 0 }])
    t.after(() => { client.disconnect() })
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`)
    for (const key of keys) await client.set(key, key)
    for (const key of keys) assert.equal(await client.get(key), key)
    // the owner answers a plain connection itself rather than redirecting it
    const owner = new Redis(await redis.slotOwner('key-0'), '127.0.0.1')
    t.after(() => { owner.disconnect() })
    assert.equal(await owner.get('key-0'), 'key-0')
    // keys spread over more than one shard, or the test above proves little
    const owners = new Set(await Promise.all(keys.map(async (k) => redis.slotOwner(k))))
    assert.ok(owners.size > 1, `all 20 keys on one master: ${[...owners].join(',')}`)

    // A node counts a bus message as sent when it queues it, before it answers
    // the command, so the counters can be read at once. A classic PUBLISH goes
    // from the node that takes it to each of the other nodes: 2 messages here.
    // An SPUBLISH goes only to the other nodes of its shard: with no replicas
    // there are none, so neither counter moves.
    const before = await redis.publishCounters()
    await client.publish('channel', 'classic')
    const classic = await redis.publishCounters()
    assert.deepEqual(classic, { publish: before.publish + 2, publishshard: before.publishshard })
    await client.spublish('channel', 'sharded')
    assert.deepEqual(await redis.publishCounters(), classic)

    await redis.flushAll()
    assert.equal(await client.get('key-0'), null)
  })

  it('gives each master a replica, and an SPUBLISH reaches only the replica of its shard', { timeout: 60_000 }, async (t) => {
    const redis = await startRedisCluster({ replicasPerMaster: 1 })
    t.after(async () => { await redis.stop() })
    assert.deepEqual(redis.nodes.map((n) => n.role).sort(), ['master', 'master', 'master', 'replica', 'replica', 'replica'])
    const masters = redis.nodes.filter((n) => n.role === 'master').map((n) => `127.0.0.1:${n.port}`)
    assert.equal(redis.url, `redis+cluster://${masters.join(',')}`)

    const client = new Cluster([{ host: '127.0.0.1', port: redis.nodes[0]?.port ?? 0 }])
    t.after(() => { client.disconnect() })
    const before = await redis.publishCounters()
    // to the five other nodes, replicas included
    await client.publish('channel', 'classic')
    const classic = await redis.publishCounters()
    assert.deepEqual(classic, { publish: before.publish + 5, publishshard: before.publishshard })
    // to the one other node of the shard
    await client.spublish('channel', 'sharded')
    assert.deepEqual(await redis.publishCounters(), { publish: classic.publish, publishshard: classic.publishshard + 1 })
  })
})

describe('Redis Sentinel harness', { skip }, () => {
  it('fails over to the replica, and a client that follows the sentinels keeps its data', { timeout: 60_000 }, async (t) => {
    const redis = await startSentinelSet()
    t.after(async () => { await redis.stop() })
    assert.equal(redis.url, `redis+sentinel://${redis.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/p2pmaster`)

    const client = new Redis({
      sentinels: redis.sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
      name: redis.masterName,
      // commands wait through the failover rather than fail
      maxRetriesPerRequest: null
    })
    // each refused reconnection while the master is down is reported; that is expected here
    client.on('error', () => {})
    t.after(() => { client.disconnect() })
    await client.set('before', 'failover')
    // the replica has the key before its master dies
    assert.equal(await client.wait(1, 2000), 1)

    const old = await redis.killMaster()
    const promoted = await redis.waitForFailover(old)
    assert.notEqual(promoted, old)
    assert.equal(await redis.masterPort(), promoted)

    await client.set('after', 'failover')
    assert.equal(await client.get('before'), 'failover')
    assert.equal(await client.get('after'), 'failover')
    // the client is on the promoted replica, not on something that happened to answer
    assert.deepEqual(await client.config('GET', 'port'), ['port', String(promoted)])
  })
})
