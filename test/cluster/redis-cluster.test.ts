/**
 * Broker processes on a real 3-master Redis Cluster (docs/behaviour.md
 * §10), as operators run them with `--redis redis+cluster://…`: P2P traffic
 * between two nodes stays on the shard that holds the target's channel
 * (sharded pub/sub), where ordinary traffic is broadcast to every shard, and
 * a node knows when no node holds a target. The P2P behaviour itself runs
 * on this topology in test/p2p/redis-cluster.test.ts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startRedisCluster, type TestRedisCluster } from '../../harness/redis-cluster.js'
import { until as eventually } from '../../harness/redis-proc.js'
import { channelOf } from '../../src/plugin/channel.js'
import { connackCode } from '../helpers/broker.js'
import { carefulSender } from '../helpers/careful-sender.js'
import { collect, until, waitFor } from '../helpers/messages.js'
import { brokerProcesses } from '../helpers/processes.js'

let redis: TestRedisCluster
const processes = brokerProcesses(after)

before(async () => { redis = await startRedisCluster({ masters: 3, replicasPerMaster: 1 }) })
after(async () => { await redis.stop() })

describe('nodes on a Redis Cluster', () => {
  it('keeps each P2P message on one shard, where an ordinary one goes to every node of the cluster', async () => {
    const [n1, n2] = [await processes.start('--redis', redis.url), await processes.start('--redis', redis.url)]
    const alice = await processes.client(n1, 'alice')
    const bob = await processes.client(n2, 'bob')
    const watcher = await processes.client(n2, 'watcher')
    await watcher.subscribeAsync('news', { qos: 1 })
    const [toBob, news] = [collect(bob), collect(watcher)]
    const messages = 100

    const beforeP2P = await redis.publishCounters()
    for (let i = 0; i < messages; i++) await alice.publishAsync('p2p/bob/x', `m${i}`, { qos: 1 })
    await waitFor(toBob, messages)
    const afterP2P = await redis.publishCounters()

    for (let i = 0; i < messages; i++) await alice.publishAsync('news', `n${i}`, { qos: 1 })
    await waitFor(news, messages)
    const afterOrdinary = await redis.publishCounters()

    // an SPUBLISH goes to its shard's replica only (one bus message); a PUBLISH to all five other nodes
    assert.equal(afterP2P.publishshard - beforeP2P.publishshard, messages)
    assert.ok(afterP2P.publish - beforeP2P.publish < messages / 10, `P2P broadcast ${afterP2P.publish - beforeP2P.publish} times`)
    assert.ok(afterOrdinary.publish - afterP2P.publish >= messages * 5, 'ordinary messages are broadcast, as the control')
  })

  it('counts no_session for a target no node holds, and forwarded for one another node holds', async () => {
    const [n1, n2] = [await processes.start('--redis', redis.url, '--admin-port', '0'), await processes.start('--redis', redis.url)]
    const alice = await processes.client(n1, 'alice')
    const carol = await processes.client(n2, 'carol')
    const got = collect(carol)
    await alice.publishAsync('p2p/nobody/x', 'lost', { qos: 1 })
    await alice.publishAsync('p2p/carol/x', 'found', { qos: 1 })
    await waitFor(got, 1)
    const admin = n1.lines.find((l) => l.listener === 'admin')
    const stats = await (await fetch(`http://127.0.0.1:${admin?.port as number}/api/v1/stats`)).json() as { p2p: { forwarded: number, dropped: { no_session: number } } }
    assert.deepEqual([stats.p2p.dropped.no_session, stats.p2p.forwarded], [1, 1])
  })

  it('refuses new clients while a master does not answer, and lets them in once its slots are served again', { timeout: 90_000 }, async () => {
    const n = await processes.start('--redis', redis.url, '--admin-port', '0')
    await eventually('the admin listener', async () => n.lines.some((l) => l.listener === 'admin'), 5000)
    const admin = n.lines.find((l) => l.listener === 'admin')?.port as number
    const ready = async (): Promise<number> => (await fetch(`http://127.0.0.1:${admin}/ready`)).status
    const inside = await processes.client(n, 'freeze-inside')
    assert.equal(await ready(), 200)
    // frozen, not killed: the other masters still answer a PING, but nothing for its slots is served
    const frozen = redis.nodes.find((node) => node.role === 'master') as { pid: () => number }
    process.kill(frozen.pid(), 'SIGSTOP')
    try {
      await eventually('/ready to answer 503', async () => await ready() === 503, 10_000)
      assert.equal(await connackCode(n.port, 'freeze-newcomer'), 3)
    } finally {
      process.kill(frozen.pid(), 'SIGCONT')
    }
    // it answers again, or a replica took its slots over meanwhile
    await eventually('/ready to answer 200 again', async () => await ready() === 200, 30_000)
    assert.equal(await connackCode(n.port, 'freeze-newcomer'), 0)
    assert.ok(inside.connected, 'a client connected before is served throughout')
  })

  // last: it leaves the cluster with one master fewer
  it('keeps QoS 1 P2P traffic flowing when the master serving the target\'s channel is killed, losing nothing acknowledged', { timeout: 90_000 }, async () => {
    const [n1, n2] = [await processes.start('--redis', redis.url), await processes.start('--redis', redis.url)]
    const bob = await processes.client(n2, 'failover-bob', { clean: false })
    const got = collect(bob)
    const alice = await carefulSender(n1.port, 'failover-alice', 'p2p/failover-bob/x')
    for (let i = 0; i < 50; i++) await alice.send(`before-${i}`)
    const channel = channelOf('failover-bob')
    const port = await redis.slotOwner(channel)
    const victim = redis.nodes.find((n) => n.port === port)
    assert.ok(victim !== undefined)
    await victim.stop()
    const sending = (async () => { for (let i = 0; i < 200; i++) await alice.send(`during-${i}`) })()
    await eventually('a replica to take the slot over', async () => await redis.slotOwner(channel) !== port, 30_000)
    await sending
    for (let i = 0; i < 50; i++) await alice.send(`after-${i}`)
    const received = (): Set<string> => new Set(got.map((m) => m.payload.toString()))
    await until(() => alice.acked.every((p) => received().has(p)), 20_000, 'every acknowledged message at bob')
    assert.equal(alice.acked.length, 300)
    assert.ok(bob.connected, 'bob kept its connection: no store write failed during the failover')
    alice.end()
  })
})
