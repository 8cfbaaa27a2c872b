/** Topic forms and delivery to the one target (docs/behaviour.md §1–2). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { closed, collect, fence, publishTold, until, waitFor } from '../helpers/messages.js'
import { told } from '../helpers/protocol.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'

export function delivery (topology: Topology): void {
  describe('delivery to the target', () => {
    const start = nodesPerTest(topology)

    it('delivers p2p/{id}/{topic} to the target on the delivered topic, with no subscription', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      await alice.publishAsync('p2p/bob/chat/room', 'hello', { qos: 1 })
      const [m] = await waitFor(got, 1)
      assert.equal(m?.topic, 'chat/room')
      assert.equal(m?.payload.toString(), 'hello')
    })

    it('keeps the payload byte for byte', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      const payload = Buffer.from([0, 1, 2, 255, 254, 0, 10, 13, 0x80])
      await alice.publishAsync('p2p/bob/bin', payload, { qos: 1 })
      await alice.publishAsync('p2p/bob/empty', Buffer.alloc(0), { qos: 1 })
      await waitFor(got, 2)
      assert.deepEqual(got[0]?.payload, payload)
      assert.equal(got[1]?.payload.length, 0)
    })

    it('delivers {topic}/p2p/{id} in suffix mode', async () => {
      const t = await start({ plugin: { mode: 'suffix' } })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      await alice.publishAsync('chat/room/p2p/bob', 'hi', { qos: 1 })
      const [m] = await waitFor(got, 1)
      assert.equal(m?.topic, 'chat/room')
    })

    it('accepts both forms in both mode, trying the prefix form first', async () => {
      const t = await start({ plugin: { mode: 'both' } })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const carol = await t.target.connect('carol')
      const toBob = collect(bob)
      const toCarol = collect(carol)
      await alice.publishAsync('p2p/bob/a', '1', { qos: 1 })
      await alice.publishAsync('b/p2p/bob', '2', { qos: 1 })
      await alice.publishAsync('p2p/bob/x/p2p/carol', '3', { qos: 1 })
      await waitFor(toBob, 3)
      assert.deepEqual(toBob.map((m) => m.topic), ['a', 'b', 'x/p2p/carol'])
      assert.deepEqual(await fence(alice, carol, toCarol), [])
    })

    it('routes only the first match: p2p/B/p2p/C/x goes to B on p2p/C/x', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const carol = await t.target.connect('carol')
      const toBob = collect(bob)
      const toCarol = collect(carol)
      await alice.publishAsync('p2p/bob/p2p/carol/x', 'm', { qos: 1 })
      await waitFor(toBob, 1)
      assert.equal(toBob[0]?.topic, 'p2p/carol/x')
      assert.deepEqual(await fence(alice, carol, toCarol), [])
    })

    it('delivers a retained P2P publish with retain 0 and never stores it', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      await alice.publishAsync('p2p/bob/state', 'on', { qos: 1, retain: true })
      await waitFor(got, 1)
      assert.equal(got[0]?.retain, false)
      for (const [i, node] of t.all.entries()) {
        // a retained copy would arrive with the SUBACK, before the fence
        const late = await node.connect(`late${i}`)
        const lateGot = collect(late)
        await late.subscribeAsync(['state', 'p2p/#', '#'], { qos: 1 })
        assert.deepEqual(await fence(alice, late, lateGot, `fence${i}`), [])
      }
    })

    it('lets a client send to itself', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const got = collect(alice)
      await alice.publishAsync('p2p/alice/note', 'to self', { qos: 1 })
      const [m] = await waitFor(got, 1)
      assert.equal(m?.topic, 'note')
    })

    it('keeps messages from one sender in order', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      const sent = Array.from({ length: 200 }, (_, i) => String(i))
      await Promise.all(sent.map(async (p) => alice.publishAsync('p2p/bob/seq', p, { qos: 1 })))
      await waitFor(got, sent.length)
      assert.deepEqual(got.map((m) => m.payload.toString()), sent)
    })

    it('delivers a will published to a P2P topic', async () => {
      const t = await start()
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      const alice = await t.sender.connect('alice', { will: { topic: 'p2p/bob/gone', payload: Buffer.from('alice left'), qos: 1, retain: false } })
      alice.stream.destroy()
      const [m] = await waitFor(got, 1)
      assert.equal(m?.topic, 'gone')
      assert.equal(m?.payload.toString(), 'alice left')
    })

    it('routes P2P topics published by server code', async () => {
      const t = await start()
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      t.sender.broker.publish({ cmd: 'publish', topic: 'p2p/bob/server', payload: Buffer.from('hi'), qos: 1, retain: false, dup: false }, () => {})
      // without a callback too, as Aedes's own publish allows
      const publish = t.sender.broker.publish as (packet: object) => void
      publish.call(t.sender.broker, { cmd: 'publish', topic: 'p2p/bob/again', payload: Buffer.from('hi'), qos: 1, retain: false, dup: false })
      publish.call(t.sender.broker, { cmd: 'publish', topic: 'p2p/nobody/x', payload: Buffer.from('hi'), qos: 1, retain: false, dup: false })
      publish.call(t.sender.broker, { cmd: 'publish', topic: 'p2p//x', payload: Buffer.from('hi'), qos: 0, retain: false, dup: false })
      await waitFor(got, 2)
      assert.deepEqual(got.map((m) => m.topic), ['server', 'again'])
    })

    it("sends from server code with the handle's send(), wherever the target is, and says what became of each message", async () => {
      const t = await start({ plugin: { mode: 'suffix' } })
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      for (const qos of [0, 1, 2] as const) {
        assert.deepEqual(await t.sender.plugin.send('bob', `q${qos}`, 'hi', { qos }), { outcome: 'accepted', connectedHere: t.sender === t.target })
      }
      await waitFor(got, 3)
      assert.deepEqual(got.map((m) => [m.topic, m.qos, m.payload.toString()]).sort(), [['q0', 0, 'hi'], ['q1', 1, 'hi'], ['q2', 2, 'hi']])
      // queued for an offline persistent session, here or on another node
      const carol = await t.target.connect('carol', { clean: false })
      await carol.endAsync()
      assert.equal((await t.sender.plugin.send('carol', 'later', 'kept', { qos: 1 })).outcome, 'accepted')
      const back = await t.target.connectCollecting('carol', { clean: false })
      await waitFor(back.got, 1)
      assert.equal(back.got[0]?.topic, 'later')
      const nobody = await t.sender.plugin.send('nobody', 'x', 'hi', { qos: 1 })
      assert.equal(nobody.outcome, topology.knowsPresence ? 'no_session' : 'accepted')
      await assert.rejects(t.sender.plugin.send('b/ob', 'x', 'hi'), { code: 'ERR_P2P_INVALID_MESSAGE' })
      await assert.rejects(t.sender.plugin.send('bob', '$SYS/x', 'hi'), { code: 'ERR_P2P_INVALID_MESSAGE' })
      t.sender.plugin.stop()
      await assert.rejects(t.sender.plugin.send('bob', 'x', 'hi'), { code: 'ERR_P2P_STOPPED' })
    })

    for (const keyword of ['sub', 'new', 'disconnect']) {
      it(`leaves the broker's own $-topic traffic alone whatever the keyword, e.g. '${keyword}' in suffix form`, async () => {
        // Aedes and its persistence publish $SYS/<id>/new/clients, $SYS/sub/add and the like, which a suffix-form keyword could take
        const t = await start({ plugin: { mode: 'both', keyword } })
        const alice = await t.sender.connect('alice')
        const first = await t.target.connect('bob', { clean: false })
        const firstClosed = closed(first)
        const bob = await t.sender.connect('bob', { clean: false })
        await firstClosed
        const got = collect(bob)
        await alice.publishAsync(`x/${keyword}/bob`, 'm', { qos: 1 })
        await waitFor(got, 1)
        assert.equal(got[0]?.topic, 'x')
        assert.equal(t.counters().dropped.malformed, 0)
      })
    }

    it('leaves ordinary publish/subscribe as it was', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      await bob.subscribeAsync(['sensors/+', 'p2p/x'], { qos: 1 })
      const got = collect(bob)
      await alice.publishAsync('sensors/t', '21', { qos: 1 })
      await alice.publishAsync('p2p/x', 'two levels are ordinary', { qos: 1 })
      await waitFor(got, 2)
      assert.deepEqual(got.map((m) => m.topic), ['sensors/t', 'p2p/x'])
    })
  })

  describe('malformed and undeliverable', () => {
    const start = nodesPerTest(topology)

    for (const topic of ['p2p//x', 'p2p/bob/']) {
      it(`rejects ${topic}: delivered to nobody, counted, warned once with the sender's id`, async () => {
        const t = await start()
        const alice = await t.sender.connect('alice')
        for (const [i, node] of t.all.entries()) {
          const eve = await node.connect(`eve${i}`)
          await eve.subscribeAsync('#', { qos: 1 })
          const got = collect(eve)
          assert.equal(await publishTold(alice, topic, 'm', { qos: 1 }), told(1, 0x90), 'topic name invalid')
          assert.deepEqual(await fence(alice, eve, got, `fence${i}`), [])
        }
        await until(() => t.counters().dropped.malformed === t.all.length, 5000, 'malformed counted')
        const warns = t.logLines().filter((l) => l.level === 'warn')
        assert.equal(warns.length, t.all.length, 'once per publish')
        assert.ok(warns.every((w) => (w.obj as { clientId: string }).clientId === 'alice'))
        assert.ok(alice.connected)
      })
    }

    for (const qos of [0, 1, 2] as const) {
      it(`drops a QoS ${qos} message to an unknown client, and the sender's flow completes`, async () => {
        const t = await start()
        const alice = await t.sender.connect('alice')
        // an MQTT 5 sender learns that nobody holds the target, where the node can tell
        assert.equal(await publishTold(alice, 'p2p/nobody/x', 'm', { qos }), told(qos, topology.knowsPresence ? 0x10 : 0))
        await alice.publishAsync('still/here', 'm', { qos: 1 })
        assert.ok(alice.connected)
        // nodes sharing an in-process emitter cannot tell whether another node holds the target: they forward
        await until(() => t.counters().dropped.no_session + t.counters().forwarded > 0, 5000, 'the message counted')
        const c = t.counters()
        assert.equal(topology.knowsPresence ? c.dropped.no_session : c.forwarded, 1)
        assert.equal(c.delivered, 0)
      })
    }

    it('drops a message to a client that left without a persistent session', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob', { clean: true })
      await bob.endAsync()
      assert.equal(await publishTold(alice, 'p2p/bob/x', 'm', { qos: 1 }), told(1, topology.knowsPresence ? 0x10 : 0))
      await until(() => t.counters().dropped.no_session + t.counters().forwarded > 0, 5000, 'the message counted')
      const c = t.counters()
      assert.equal(topology.knowsPresence ? c.dropped.no_session : c.forwarded, 1)
      const again = await t.target.connectCollecting('bob', { clean: false })
      assert.deepEqual(await fence(alice, again.client, again.got), [])
    })
  })
}
