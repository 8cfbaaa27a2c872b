/** SPEC §1–2 through real MQTT clients on a real broker. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fence, inbox, waitFor } from './helpers/messages.js'
import { brokerPerTest } from './helpers/broker.js'

const broker = brokerPerTest()

describe('delivery to the target', () => {
  it('delivers p2p/{id}/{topic} to the target on the delivered topic, with no subscription', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/chat/room', 'hello', { qos: 1 })
    const [m] = await waitFor(got, 1)
    assert.equal(m?.topic, 'chat/room')
    assert.equal(m?.payload.toString(), 'hello')
  })

  it('keeps the payload byte for byte', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    const payload = Buffer.from([0, 1, 2, 255, 254, 0, 10, 13, 0x80])
    await alice.publishAsync('p2p/bob/bin', payload, { qos: 1 })
    await alice.publishAsync('p2p/bob/empty', Buffer.alloc(0), { qos: 1 })
    await waitFor(got, 2)
    assert.deepEqual(got[0]?.payload, payload)
    assert.equal(got[1]?.payload.length, 0)
  })

  it('delivers {topic}/p2p/{id} in suffix mode', async () => {
    const b = await broker({ plugin: { mode: 'suffix' } })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await alice.publishAsync('chat/room/p2p/bob', 'hi', { qos: 1 })
    const [m] = await waitFor(got, 1)
    assert.equal(m?.topic, 'chat/room')
  })

  it('accepts both forms in both mode, trying the prefix form first', async () => {
    const b = await broker({ plugin: { mode: 'both' } })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const carol = await b.connect('carol')
    const toBob = inbox(bob)
    const toCarol = inbox(carol)
    await alice.publishAsync('p2p/bob/a', '1', { qos: 1 })
    await alice.publishAsync('b/p2p/bob', '2', { qos: 1 })
    await alice.publishAsync('p2p/bob/x/p2p/carol', '3', { qos: 1 })
    await waitFor(toBob, 3)
    assert.deepEqual(toBob.map((m) => m.topic), ['a', 'b', 'x/p2p/carol'])
    assert.deepEqual(await fence(alice, carol, toCarol), [])
  })

  it('routes only the first match: p2p/B/p2p/C/x goes to B on p2p/C/x', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const carol = await b.connect('carol')
    const toBob = inbox(bob)
    const toCarol = inbox(carol)
    await alice.publishAsync('p2p/bob/p2p/carol/x', 'm', { qos: 1 })
    await waitFor(toBob, 1)
    assert.equal(toBob[0]?.topic, 'p2p/carol/x')
    assert.deepEqual(await fence(alice, carol, toCarol), [])
  })

  for (const qos of [0, 1, 2] as const) {
    it(`delivers at the publisher's QoS ${qos}`, async () => {
      const b = await broker()
      const alice = await b.connect('alice')
      const bob = await b.connect('bob')
      const got = inbox(bob)
      await alice.publishAsync('p2p/bob/q', 'm', { qos })
      const [m] = await waitFor(got, 1)
      assert.equal(m?.qos, qos)
    })
  }

  it('does not lower the QoS to that of the target\'s own subscription, nor add a copy', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    await bob.subscribeAsync('news', { qos: 0 })
    await bob.subscribeAsync('#', { qos: 0 })
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/news', 'm', { qos: 2 })
    const rest = await fence(alice, bob, got)
    assert.equal(rest.length, 1)
    assert.equal(rest[0]?.topic, 'news')
    assert.equal(rest[0]?.qos, 2)
  })

  it('delivers a retained P2P publish with retain 0 and never stores it', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/state', 'on', { qos: 1, retain: true })
    await waitFor(got, 1)
    assert.equal(got[0]?.retain, false)
    const late = await b.connect('late')
    const lateGot = inbox(late)
    await late.subscribeAsync(['state', 'p2p/#', '#'], { qos: 1 })
    assert.deepEqual(await fence(alice, late, lateGot), [])
  })

  it('lets a client send to itself', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const got = inbox(alice)
    await alice.publishAsync('p2p/alice/note', 'to self', { qos: 1 })
    const [m] = await waitFor(got, 1)
    assert.equal(m?.topic, 'note')
  })

  it('keeps messages from one sender in order', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    const sent = Array.from({ length: 200 }, (_, i) => String(i))
    await Promise.all(sent.map(async (p) => alice.publishAsync('p2p/bob/seq', p, { qos: 1 })))
    await waitFor(got, sent.length)
    assert.deepEqual(got.map((m) => m.payload.toString()), sent)
  })

  it('sends new messages to the new connection after a session takeover', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const first = await b.connect('bob')
    const firstGot = inbox(first)
    const closed = new Promise<void>((resolve) => { first.once('close', () => { resolve() }) })
    const second = await b.connect('bob')
    await closed
    const secondGot = inbox(second)
    await alice.publishAsync('p2p/bob/after', 'm', { qos: 1 })
    await waitFor(secondGot, 1)
    assert.equal(firstGot.length, 0)
  })

  it('delivers a will published to a P2P topic', async () => {
    const b = await broker()
    const bob = await b.connect('bob')
    const got = inbox(bob)
    const alice = await b.connect('alice', { will: { topic: 'p2p/bob/gone', payload: Buffer.from('alice left'), qos: 1, retain: false } })
    alice.stream.destroy()
    const [m] = await waitFor(got, 1)
    assert.equal(m?.topic, 'gone')
    assert.equal(m?.payload.toString(), 'alice left')
  })

  it('routes P2P topics published by server code', async () => {
    const b = await broker()
    const bob = await b.connect('bob')
    const got = inbox(bob)
    b.broker.publish({ cmd: 'publish', topic: 'p2p/bob/server', payload: Buffer.from('hi'), qos: 1, retain: false, dup: false }, () => {})
    const [m] = await waitFor(got, 1)
    assert.equal(m?.topic, 'server')
  })

  it('leaves ordinary publish/subscribe as it was', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    await bob.subscribeAsync(['sensors/+', 'p2p/x'], { qos: 1 })
    const got = inbox(bob)
    await alice.publishAsync('sensors/t', '21', { qos: 1 })
    await alice.publishAsync('p2p/x', 'two levels are ordinary', { qos: 1 })
    await waitFor(got, 2)
    assert.deepEqual(got.map((m) => m.topic), ['sensors/t', 'p2p/x'])
  })
})

describe('privacy', () => {
  it('reaches no other subscriber: not #, p2p/#, the delivered topic, +/+/+ or $-topics', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const eve = await b.connect('eve')
    await eve.subscribeAsync(['#', 'p2p/#', 'secret', '+/+/+', '$SYS/#'], { qos: 1 })
    const eveGot = inbox(eve)
    const bobGot = inbox(bob)
    await alice.publishAsync('p2p/bob/secret', 'for bob only', { qos: 1 })
    await waitFor(bobGot, 1)
    const leaked = (await fence(alice, eve, eveGot)).filter((m) => !m.topic.startsWith('$SYS/'))
    assert.deepEqual(leaked, [])
  })

  it('refuses subscriptions into the internal namespace', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const eve = await b.connect('eve')
    const filters = ['$p2p/#', '$p2p/bob', '$p2p/+', '$p2p']
    const granted = await new Promise<number[]>((resolve) => {
      eve.on('packetreceive', (packet) => { if (packet.cmd === 'suback') resolve(packet.granted as number[]) })
      eve.subscribe(filters, { qos: 1 }, () => {})
    })
    assert.deepEqual(granted, [128, 128, 128, 128])
    const eveGot = inbox(eve)
    const bobGot = inbox(bob)
    await alice.publishAsync('p2p/bob/secret', 'for bob only', { qos: 1 })
    await waitFor(bobGot, 1)
    assert.deepEqual(await fence(alice, eve, eveGot), [])
  })

  it('never lets a client id holding +, # or / match another client\'s messages', async () => {
    const b = await broker({ plugin: { mode: 'both' } })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const odd = await Promise.all(['#', '+', 'bob/#', 'p2p/bob', '+/bob', 'b*', '%24p2p'].map(async (id) => b.connect(id)))
    const oddGot = odd.map((c) => inbox(c))
    const bobGot = inbox(bob)
    await alice.publishAsync('p2p/bob/x', '1', { qos: 1 })
    await alice.publishAsync('x/p2p/bob', '2', { qos: 1 })
    await waitFor(bobGot, 2)
    for (const [i, c] of odd.entries()) {
      assert.deepEqual(await fence(alice, c, oddGot[i] ?? [], `fence${i}`), [])
    }
  })

  it('drops a publish forged onto the internal namespace', async () => {
    const b = await broker()
    const mallory = await b.connect('mallory')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await mallory.publishAsync('$p2p/bob', Buffer.from([1, 0, 1, 120, 33]), { qos: 1 })
    assert.deepEqual(await fence(mallory, bob, got), [])
    assert.equal(b.plugin.counters.dropped.refused, 1)
    assert.ok(mallory.connected)
  })
})

describe('malformed and undeliverable', () => {
  for (const topic of ['p2p//x', 'p2p/bob/']) {
    it(`rejects ${topic}: delivered to nobody, counted, warned once with the sender's id`, async () => {
      const b = await broker()
      const alice = await b.connect('alice')
      const eve = await b.connect('eve')
      await eve.subscribeAsync('#', { qos: 1 })
      const got = inbox(eve)
      await alice.publishAsync(topic, 'm', { qos: 1 })
      assert.deepEqual(await fence(alice, eve, got), [])
      assert.equal(b.plugin.counters.dropped.malformed, 1)
      const warns = b.log.lines.filter((l) => l.level === 'warn')
      assert.equal(warns.length, 1)
      assert.equal((warns[0]?.obj as { clientId: string }).clientId, 'alice')
      assert.ok(alice.connected)
    })
  }

  for (const qos of [0, 1, 2] as const) {
    it(`drops a QoS ${qos} message to an unknown client, and the sender's flow completes`, async () => {
      const b = await broker()
      const alice = await b.connect('alice')
      await alice.publishAsync('p2p/nobody/x', 'm', { qos })
      await alice.publishAsync('still/here', 'm', { qos: 1 })
      assert.ok(alice.connected)
      assert.equal(b.plugin.counters.dropped.no_session, 1)
    })
  }

  it('drops a message to a client that left without a persistent session', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob', { clean: true })
    await bob.endAsync()
    await alice.publishAsync('p2p/bob/x', 'm', { qos: 1 })
    assert.equal(b.plugin.counters.dropped.no_session, 1)
    const again = await b.connect('bob', { clean: false })
    const got = inbox(again)
    assert.deepEqual(await fence(alice, again, got), [])
  })
})

describe('persistent sessions', () => {
  it('queues QoS 1 and 2 for an offline target and delivers them in order on reconnect', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob', { clean: false })
    await bob.endAsync()
    const sent: Array<[string, 1 | 2]> = [['a', 1], ['b', 2], ['c', 1], ['d', 2], ['e', 1]]
    for (const [p, qos] of sent) await alice.publishAsync('p2p/bob/q', p, { qos })
    await alice.publishAsync('p2p/bob/q', 'qos0 is not queued', { qos: 0 })
    assert.equal(b.plugin.counters.queued, 5)

    const again = await b.connectCollecting('bob', { clean: false })
    await waitFor(again.got, 5)
    // in order per QoS: a client hands a QoS 2 message over only after PUBREL
    for (const qos of [1, 2]) {
      const expected = sent.filter(([, q]) => q === qos).map(([p]) => p)
      assert.deepEqual(again.got.filter((m) => m.qos === qos).map((m) => m.payload.toString()), expected)
    }
    assert.ok(again.got.every((m) => m.topic === 'q' && !m.retain))
  })

  it('does not deliver a queued message twice once it was acknowledged', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob', { clean: false })
    await bob.endAsync()
    await alice.publishAsync('p2p/bob/q', 'once', { qos: 1 })
    const first = await b.connectCollecting('bob', { clean: false })
    await waitFor(first.got, 1)
    await first.client.endAsync()
    const second = await b.connectCollecting('bob', { clean: false })
    assert.deepEqual(await fence(alice, second.client, second.got), [])
  })

  it('queues for a session that outlives a clean disconnect of its connection, and reports the session present', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob', { clean: false })
    await bob.endAsync()
    await alice.publishAsync('p2p/bob/x', 'm', { qos: 1 })
    const again = await b.connectCollecting('bob', { clean: false })
    await waitFor(again.got, 1)
    assert.equal(again.sessionPresent, true)
  })

  it('delivers live to a connected persistent client at its QoS', async () => {
    const b = await broker()
    const alice = await b.connect('alice')
    const bob = await b.connect('bob', { clean: false })
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/x', 'live', { qos: 2 })
    const [m] = await waitFor(got, 1)
    assert.equal(m?.qos, 2)
    await bob.endAsync()
    const again = await b.connectCollecting('bob', { clean: false })
    assert.deepEqual(await fence(alice, again.client, again.got), [], 'acknowledged, so not replayed')
  })
})
