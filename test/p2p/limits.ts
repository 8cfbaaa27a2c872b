/**
 * What the plugin bounds (docs/behaviour.md §7): session queues, what a
 * reader that stops reading may leave unsent, and how long a queued message
 * or an offline session lasts. P2P and ordinary traffic alike.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import type { IPublishPacket } from 'mqtt-packet'
import { closed, collect, fence, publishTold, until, waitFor } from '../helpers/messages.js'
import { v5 } from '../helpers/protocol.js'
import { rawSession, type RawClient } from '../helpers/raw.js'
import { nodesPerTest, type Nodes, type Topology } from '../helpers/topology.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** A numbered payload of `size` bytes, so order and loss can be read back. */
function numbered (i: number, size: number): Buffer {
  const payload = Buffer.alloc(size)
  payload.writeUInt32BE(i, 0)
  return payload
}

/** The numbers a raw client has received, in order, acknowledging each as a well-behaved client would. */
function numbersOf (raw: RawClient, acked: Set<number>): number[] {
  const out: number[] = []
  for (const p of raw.packets) {
    if (p.cmd !== 'publish') continue
    const publish = p as IPublishPacket
    if (publish.qos === 1 && publish.messageId !== undefined && !acked.has(publish.messageId)) {
      acked.add(publish.messageId)
      raw.send({ cmd: 'puback', messageId: publish.messageId })
    }
    out.push((publish.payload as Buffer).readUInt32BE(0))
  }
  return out
}

/**
 * Sends a QoS 1 message past a full queue and checks it is refused, not
 * acknowledged: an MQTT 5 sender is told 0x97 (quota exceeded) and stays
 * connected; MQTT 3.1.1 has no negative acknowledgement, so the sender's
 * connection is closed, and its client sends the message again later.
 */
async function refusedAsFull (client: MqttClient, topic: string, payload: Buffer): Promise<void> {
  if (v5()) {
    assert.equal(await publishTold(client, topic, payload, { qos: 1 }), 0x97)
    assert.ok(client.connected)
    return
  }
  const refused = client.publishAsync(topic, payload, { qos: 1 })
  await closed(client)
  assert.equal(await Promise.race([refused.then(() => 'acknowledged', () => 'failed'), sleep(200).then(() => 'no PUBACK')]), 'no PUBACK')
}

/** Sends `count` numbered messages, each acknowledged before the next. */
async function send (client: MqttClient, topic: string, count: number, size: number, qos: 0 | 1): Promise<void> {
  for (let i = 0; i < count; i++) await client.publishAsync(topic, numbered(i, size), { qos })
}

export function limits (topology: Topology): void {
  describe('limits', () => {
    const start = nodesPerTest(topology)

    /** bob has a persistent session and is offline; alice is connected */
    async function bobAway (t: Nodes, subscribe?: string): Promise<MqttClient> {
      const bob = await t.target.connect('bob', { clean: false })
      if (subscribe !== undefined) {
        await bob.subscribeAsync(subscribe, { qos: 1 })
        await t.indexed('bob', subscribe)
      }
      await bob.endAsync()
      return t.sender.connect('alice')
    }

    it('refuses the newest P2P message past max_queued_messages without acknowledging it, and keeps the oldest', async () => {
      const t = await start({ plugin: { limits: { max_queued_messages: 5 } } })
      const alice = await bobAway(t)
      await send(alice, 'p2p/bob/q', 5, 4, 1)
      await refusedAsFull(alice, 'p2p/bob/q', numbered(5, 4))
      assert.equal(t.counters().dropped.queue_full, 1)
      assert.equal(t.counters().limits.max_queued_messages, 1)
      const again = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(again.got, 5)
      const carol = await t.sender.connect('carol')
      assert.deepEqual((await fence(carol, again.client, again.got)).map((m) => m.payload.readUInt32BE(0)), [0, 1, 2, 3, 4])
    })

    it('bounds a queue by its bytes too', async () => {
      // an envelope adds 21 bytes, the topic's and the sender's to each payload: 300 + 27 each, three fit in 1000
      const t = await start({ plugin: { limits: { max_queued_bytes: 1000 } } })
      const alice = await bobAway(t)
      await send(alice, 'p2p/bob/q', 3, 300, 1)
      await refusedAsFull(alice, 'p2p/bob/q', numbered(3, 300))
      assert.equal(t.counters().dropped.queue_full, 1)
      assert.equal(t.counters().limits.max_queued_bytes, 1)
      const again = await t.target.connectCollecting('bob', { clean: false })
      const carol = await t.sender.connect('carol')
      assert.equal((await fence(carol, again.client, await waitFor(again.got, 3))).length, 3)
    })

    it('bounds all queues together on a broker with a store of its own', { skip: !topology.alone && 'a cluster\'s queues are in Redis' }, async () => {
      // each session may hold 1000 bytes; all of them together, 1500
      const t = await start({ plugin: { limits: { max_queued_bytes: 1000, max_queued_bytes_total: 1500 } } })
      for (const id of ['bob', 'carol']) await (await t.target.connect(id, { clean: false })).endAsync()
      const alice = await t.sender.connect('alice')
      await send(alice, 'p2p/bob/q', 3, 300, 1)
      await send(alice, 'p2p/carol/q', 1, 300, 1)
      await refusedAsFull(alice, 'p2p/carol/q', numbered(1, 300))
      assert.equal(t.counters().limits.max_queued_bytes_total, 1)
      // a queue that empties makes room for the others
      const bob = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(bob.got, 3)
      await bob.client.endAsync()
      const dave = await t.sender.connect('dave')
      await send(dave, 'p2p/carol/q', 2, 300, 1)
      assert.equal(dave.connected, true)
    })

    it('bounds the queue of an offline subscriber to an ordinary topic the same way', async () => {
      const t = await start({ plugin: { limits: { max_queued_messages: 5 } } })
      const alice = await bobAway(t, 'news')
      await send(alice, 'news', 8, 4, 1)
      await until(() => t.counters().limits.max_queued_messages === 3, 5000, 'three refused')
      const again = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(again.got, 5)
      assert.deepEqual((await fence(alice, again.client, again.got)).map((m) => m.payload.readUInt32BE(0)), [0, 1, 2, 3, 4])
    })

    it('makes room in a queue as its messages are delivered', async () => {
      const t = await start({ plugin: { limits: { max_queued_messages: 5 } } })
      const alice = await bobAway(t)
      await send(alice, 'p2p/bob/q', 5, 4, 1)
      const again = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(again.got, 5)
      await fence(alice, again.client, again.got)
      await again.client.endAsync()
      await send(alice, 'p2p/bob/q', 5, 4, 1)
      const third = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(third.got, 5)
      assert.equal(t.counters().dropped.queue_full, 0)
    })

    for (const route of ['P2P', 'ordinary'] as const) {
      it(`sends a persistent ${route} target that stopped reading all it missed, in order and once, when it reads again`, async () => {
        const t = await start({ plugin: { limits: { max_pending_bytes: 64 * 1024 } } })
        const bob = await rawSession({ tcp: t.target.port }, { clientId: 'bob', clean: false })
        const topic = route === 'P2P' ? 'p2p/bob/x' : 'news'
        if (route === 'ordinary') {
          bob.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'news', qos: 1 }] })
          await bob.next('suback')
        }
        bob.stopReading()
        const alice = await t.sender.connect('alice')
        // far more than the socket buffers on both sides hold: the bound is reached
        await send(alice, topic, 600, 16 * 1024, 1)
        await until(() => (t.counters().limits.max_pending_bytes ?? 0) > 0, 5000, 'the bound reached')
        bob.startReading()
        const acked = new Set<number>()
        await until(() => numbersOf(bob, acked).length >= 600, 20_000, 'all 600 caught up')
        const numbers = numbersOf(bob, acked)
        assert.deepEqual(numbers, Array.from({ length: 600 }, (_, i) => i))
        assert.equal(bob.isClosed(), false, 'without reconnecting')
        bob.destroy()
      })
    }

    it('reads the queue again when the store fails a catch-up\'s read, and the reader still gets everything, in order', async () => {
      let failNext = false
      const t = await start({
        plugin: { limits: { max_pending_bytes: 64 * 1024 } },
        setup (broker) {
          // the store fails the first read of a queue once told to, as a Redis Cluster does mid-failover
          const persistence = (broker as unknown as { persistence: { outgoingStream: (client: { id: string }) => AsyncIterable<unknown> } }).persistence
          const stream = persistence.outgoingStream.bind(persistence)
          persistence.outgoingStream = (client) => {
            if (!failNext) return stream(client)
            failNext = false
            return { [Symbol.asyncIterator]: () => ({ next: async () => { throw new Error('the store is failing over') } }) }
          }
        }
      })
      const bob = await rawSession({ tcp: t.target.port }, { clientId: 'bob', clean: false })
      bob.stopReading()
      const alice = await t.sender.connect('alice')
      await send(alice, 'p2p/bob/x', 300, 16 * 1024, 1)
      await until(() => (t.counters().limits.max_pending_bytes ?? 0) > 0, 5000, 'the bound reached')
      // the next read of a queue is the catch-up's, once bob reads again
      failNext = true
      bob.startReading()
      const acked = new Set<number>()
      await until(() => numbersOf(bob, acked).length >= 300, 20_000, 'all 300 caught up')
      assert.equal(failNext, false, 'a read failed')
      assert.deepEqual(numbersOf(bob, acked), Array.from({ length: 300 }, (_, i) => i))
      assert.ok(t.logLines().some((l) => l.msg.includes('reading it again')))
      bob.destroy()
    })

    it('drops P2P messages at QoS 0 to a target that does not read, past max_pending_bytes, and serves the others', async () => {
      const t = await start({ plugin: { limits: { max_pending_bytes: 64 * 1024 } } })
      const bob = await rawSession({ tcp: t.target.port }, { clientId: 'bob' })
      bob.stopReading()
      const alice = await t.sender.connect('alice')
      await send(alice, 'p2p/bob/x', 600, 16 * 1024, 0)
      await until(() => t.counters().dropped.slow_consumer > 0, 5000, 'some dropped')
      const carol = await t.target.connect('carol')
      const got = collect(carol)
      await alice.publishAsync('p2p/carol/x', 'still served', { qos: 1 })
      await waitFor(got, 1)
      assert.equal(alice.connected, true)
      bob.destroy()
    })

    it('drops a queued P2P message older than message_expiry when the queue is replayed', async () => {
      const t = await start({ plugin: { limits: { message_expiry: 1 } } })
      const alice = await bobAway(t)
      await alice.publishAsync('p2p/bob/q', 'stale', { qos: 1 })
      await sleep(1500)
      await alice.publishAsync('p2p/bob/q', 'fresh', { qos: 1 })
      const again = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(again.got, 1)
      assert.deepEqual((await fence(alice, again.client, again.got)).map((m) => m.payload.toString()), ['fresh'])
      assert.equal(t.counters().dropped.expired, 1)
      assert.equal(t.counters().limits.message_expiry, 1)
    })

    it('ends a persistent session offline longer than session_expiry, with its queue', async () => {
      const t = await start({ plugin: { limits: { session_expiry: 1 } } })
      const alice = await bobAway(t)
      await alice.publishAsync('p2p/bob/q', 'never delivered', { qos: 1 })
      await until(() => (t.counters().limits.session_expiry ?? 0) === 1, 5000, 'the session ended')
      const again = await t.target.connectCollecting('bob', { clean: false })
      assert.equal(again.sessionPresent, false)
      assert.deepEqual(await fence(alice, again.client, again.got), [])
    })

    it('keeps the session of a client that comes back before session_expiry', async () => {
      const t = await start({ plugin: { limits: { session_expiry: 2 } } })
      const alice = await bobAway(t)
      await alice.publishAsync('p2p/bob/q', 'kept', { qos: 1 })
      const again = await t.target.connectCollecting('bob', { clean: false })
      assert.equal(again.sessionPresent, true)
      await waitFor(again.got, 1)
      await sleep(3000)
      assert.equal(t.counters().limits.session_expiry, undefined, 'a connected session has no clock')
    })
  })
}
