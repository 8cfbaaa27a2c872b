/**
 * What MQTT 5 adds (docs/behaviour.md §9), written once and run on every
 * topology beside the shared suite: the sender's properties kept end to end,
 * the expiry counted down, the `p2p-sender` stamp, the reason codes, and
 * request/response. Senders connect to one node and targets to the other.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { IClientPublishOptions, MqttClient } from 'mqtt'
import type { IPublishPacket } from 'mqtt-packet'
import { collect, fence, publishTold, until, waitFor, type Received } from '../helpers/messages.js'
import mqttPacket from 'mqtt-packet'
import { rawClient, rawSession } from '../helpers/raw.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'

type Properties = NonNullable<IPublishPacket['properties']>

/** Everything a sender can put on a PUBLISH that a target should see again. */
const sent: Properties = {
  payloadFormatIndicator: true,
  contentType: 'application/json',
  responseTopic: 'p2p/alice/answers',
  correlationData: Buffer.from([0, 1, 2, 255]),
  userProperties: { app: 'demo', tags: ['a', 'b'] },
  messageExpiryInterval: 600
}

/** What the target gets of `sent` from `sender`: everything, the stamp added, the expiry counted from 600 s. */
function assertCarried (got: Received | undefined, sender: string): void {
  assert.ok(got !== undefined, 'a message arrived')
  const p = got.packet.properties ?? {}
  assert.equal(p.payloadFormatIndicator, true)
  assert.equal(p.contentType, 'application/json')
  assert.equal(p.responseTopic, 'p2p/alice/answers')
  assert.deepEqual(p.correlationData, Buffer.from([0, 1, 2, 255]))
  // MQTT.js reads user properties into an object without a prototype
  assert.deepEqual({ ...p.userProperties }, { app: 'demo', tags: ['a', 'b'], 'p2p-sender': sender })
  const left = p.messageExpiryInterval ?? 0
  assert.ok(left > 590 && left <= 600, `expiry counted down from 600 s, got ${left}`)
  assert.equal(p.topicAlias, undefined)
  assert.equal(p.subscriptionIdentifier, undefined)
}

const withProperties = (qos: 0 | 1 | 2, properties: Properties = sent): IClientPublishOptions => ({ qos, properties })

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export function mqtt5 (topology: Topology): void {
  describe(`MQTT 5 on ${topology.name}`, () => {
    before(async () => { await topology.prepare() })
    after(async () => { await topology.dispose() })
    const start = nodesPerTest(topology)

    describe('every property of the sender\'s PUBLISH, end to end', () => {
      for (const qos of [0, 1, 2] as const) {
        it(`reaches a connected target at QoS ${qos}, without the sender's topic alias or the target's subscription identifier`, async () => {
          // the sender may use topic aliases; the target holds a subscription with an identifier on the delivered topic
          const t = await start({ setup (broker) { (broker as unknown as { topicAliasMaximum: number }).topicAliasMaximum = 10 } })
          const bob = await t.target.connect('bob')
          await bob.subscribeAsync('chat', { qos: 1, properties: { subscriptionIdentifier: 7 } })
          const got = collect(bob)
          const alice = await t.sender.connect('alice')
          await alice.publishAsync('p2p/bob/chat', '{"n":1}', withProperties(qos, { ...sent, topicAlias: 1 }))
          // the alias alone names the topic now: Aedes resolves it before the plugin reads the topic
          await alice.publishAsync('', '{"n":2}', withProperties(qos, { ...sent, topicAlias: 1 }))
          await waitFor(got, 2)
          assert.deepEqual(got.map((m) => m.payload.toString()), ['{"n":1}', '{"n":2}'])
          for (const m of got) assertCarried(m, 'alice')
        })
      }

      for (const qos of [1, 2] as const) {
        it(`waits at QoS ${qos} with an offline target's session, and reaches it on the node it comes back to`, async () => {
          const t = await start()
          await (await t.target.connect('bob', { clean: false })).endAsync()
          const alice = await t.sender.connect('alice')
          await alice.publishAsync('p2p/bob/chat', 'queued', withProperties(qos))
          const again = await t.target.connectCollecting('bob', { clean: false })
          await waitFor(again.got, 1)
          assertCarried(again.got[0], 'alice')
        })
      }

      it('reaches a persistent session that is connected, through its queue', async () => {
        const t = await start()
        const bob = await t.target.connect('bob', { clean: false })
        const got = collect(bob)
        const alice = await t.sender.connect('alice')
        await alice.publishAsync('p2p/bob/chat', 'live', withProperties(1))
        await waitFor(got, 1)
        assertCarried(got[0], 'alice')
      })
    })

    describe('message expiry', () => {
      it('counts the expiry down while the message waits, and drops it once it runs out', async () => {
        const t = await start()
        await (await t.target.connect('bob', { clean: false })).endAsync()
        const alice = await t.sender.connect('alice')
        await alice.publishAsync('p2p/bob/x', 'short', withProperties(1, { messageExpiryInterval: 1 }))
        await alice.publishAsync('p2p/bob/x', 'long', withProperties(1, { messageExpiryInterval: 30 }))
        await sleep(2100)
        const again = await t.target.connectCollecting('bob', { clean: false })
        await waitFor(again.got, 1)
        assert.deepEqual(await fence(alice, again.client, again.got), [again.got[0]])
        assert.equal(again.got[0]?.payload.toString(), 'long')
        const left = again.got[0]?.packet.properties?.messageExpiryInterval ?? 0
        assert.ok(left >= 26 && left <= 28, `30 s less the 2 s it waited, got ${left}`)
        await until(() => t.counters().dropped.expired === 1, 5000, 'the expired one counted')
      })

      it('drops an expired message for a 3.1.1 target too: the sender\'s expiry always applies', async () => {
        const t = await start()
        await (await t.target.connect('old', { clean: false, protocolVersion: 4 })).endAsync()
        const alice = await t.sender.connect('alice')
        await alice.publishAsync('p2p/old/x', 'gone', withProperties(1, { messageExpiryInterval: 1 }))
        await alice.publishAsync('p2p/old/x', 'kept', { qos: 1 })
        await sleep(1500)
        const again = await t.target.connectCollecting('old', { clean: false, protocolVersion: 4 })
        await waitFor(again.got, 1)
        assert.deepEqual((await fence(alice, again.client, again.got)).map((m) => m.payload.toString()), ['kept'])
        assert.equal(again.got[0]?.packet.properties, undefined)
      })
    })

    describe('the p2p-sender stamp', () => {
      it('replaces a p2p-sender the sender wrote itself, however it wrote it', async () => {
        const t = await start()
        const bob = await t.target.connect('bob')
        const got = collect(bob)
        const eve = await t.sender.connect('eve')
        await eve.publishAsync('p2p/bob/pay', '1', withProperties(1, { userProperties: { 'p2p-sender': 'bank' } }))
        await eve.publishAsync('p2p/bob/pay', '2', withProperties(1, { userProperties: { 'p2p-sender': ['bank', 'eve'], note: 'x' } }))
        await waitFor(got, 2)
        assert.deepEqual(got.map((m) => ({ ...m.packet.properties?.userProperties })), [{ 'p2p-sender': 'eve' }, { note: 'x', 'p2p-sender': 'eve' }])
      })

      it('stamps a 3.1.1 sender\'s message, and gives a 3.1.1 target an MQTT 5 message plainly', async () => {
        const t = await start()
        const bob = await t.target.connect('bob')
        const old = await t.target.connect('old', { protocolVersion: 4 })
        const bobGot = collect(bob)
        const oldGot = collect(old)
        const legacy = await t.sender.connect('legacy', { protocolVersion: 4 })
        await legacy.publishAsync('p2p/bob/x', 'from 3.1.1', { qos: 1 })
        const alice = await t.sender.connect('alice')
        await alice.publishAsync('p2p/old/x', 'from 5', withProperties(1))
        await waitFor(bobGot, 1)
        await waitFor(oldGot, 1)
        assert.deepEqual(Object.keys(bobGot[0]?.packet.properties ?? {}), ['userProperties'])
        assert.deepEqual({ ...bobGot[0]?.packet.properties?.userProperties }, { 'p2p-sender': 'legacy' })
        assert.equal(oldGot[0]?.payload.toString(), 'from 5')
        assert.equal(oldGot[0]?.packet.properties, undefined)
      })

      it('names a will\'s owner, and nobody for a message from server code', async () => {
        const t = await start()
        const bob = await t.target.connect('bob')
        const got = collect(bob)
        const dying = await t.sender.connect('dying', {
          will: { topic: 'p2p/bob/bye', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { userProperties: { 'p2p-sender': 'someone-else' } } }
        })
        dying.stream.destroy()
        await waitFor(got, 1)
        assert.equal(got[0]?.topic, 'bye')
        assert.deepEqual({ ...got[0]?.packet.properties?.userProperties }, { 'p2p-sender': 'dying' })
        t.sender.broker.publish({ cmd: 'publish', topic: 'p2p/bob/notice', payload: Buffer.from('from the server'), qos: 1, retain: false, dup: false, properties: { userProperties: { 'p2p-sender': 'forged' } } } as unknown as Parameters<typeof t.sender.broker.publish>[0], () => {})
        await waitFor(got, 2)
        assert.equal(got[1]?.topic, 'notice')
        assert.equal(got[1]?.packet.properties?.userProperties?.['p2p-sender'], undefined)
      })
    })

    describe('reason codes, with the connection kept', () => {
      it('tells a QoS 2 sender 0x10 in its PUBREC for a target nobody holds, and completes the flow', { skip: !topology.knowsPresence && 'these nodes cannot tell' }, async () => {
        const t = await start()
        const alice = await t.sender.connect('alice')
        assert.equal(await publishTold(alice, 'p2p/nobody/x', 'm', { qos: 2 }), 0x10)
        assert.equal(await publishTold(alice, 'p2p/nobody/x', 'm', { qos: 1 }), 0x10)
        assert.ok(alice.connected)
        await until(() => t.counters().dropped.no_session === 2, 5000, 'both counted')
      })

      it('tells a QoS 2 sender 0x97 when the target\'s queue is full, and keeps the queue as it was', async () => {
        const t = await start({ plugin: { limits: { max_queued_messages: 1 } } })
        await (await t.target.connect('bob', { clean: false })).endAsync()
        const alice = await t.sender.connect('alice')
        assert.equal(await publishTold(alice, 'p2p/bob/x', 'first', { qos: 2 }), 0)
        assert.equal(await publishTold(alice, 'p2p/bob/x', 'second', { qos: 2 }), 0x97)
        assert.ok(alice.connected)
        const again = await t.target.connectCollecting('bob', { clean: false })
        await waitFor(again.got, 1)
        assert.deepEqual((await fence(alice, again.client, again.got)).map((m) => m.payload.toString()), ['first'])
      })

      it('tells 0x87 before anything else: a refused sender learns nothing of the target', async () => {
        const t = await start({ plugin: { rules: [{ action: 'deny', target: 'secret-*' }] } })
        const alice = await t.sender.connect('alice')
        for (const qos of [1, 2] as const) assert.equal(await publishTold(alice, 'p2p/secret-1/x', 'm', { qos }), 0x87)
        assert.ok(alice.connected)
      })

      it('routes a QoS 2 message the sender sends again before its PUBREL once', async () => {
        const t = await start()
        const bob = await t.target.connect('bob')
        const got = collect(bob)
        const alice = await rawSession({ tcp: t.sender.port }, { clientId: 'alice', protocolVersion: 5 })
        const publish = { cmd: 'publish', topic: 'p2p/bob/x', payload: Buffer.from('once'), qos: 2, messageId: 7, retain: false, dup: false } as const
        alice.send(publish)
        await alice.next('pubrec')
        alice.send({ ...publish, dup: true })
        await until(() => alice.packets.filter((p) => p.cmd === 'pubrec').length === 2, 5000, 'the second PUBREC')
        alice.send({ cmd: 'pubrel', messageId: 7 })
        await alice.next('pubcomp')
        await waitFor(got, 1)
        const carol = await t.sender.connect('carol')
        assert.deepEqual((await fence(carol, bob, got)).map((m) => m.payload.toString()), ['once'])
        alice.destroy()
      })
    })

    describe('what a sender cannot make the broker hold or send', () => {
      it('refuses a message whose strings MQTT cannot carry once written again, and its target keeps its connection', async () => {
        const t = await start()
        const bob = await t.target.connect('bob')
        const got = collect(bob)
        const eve = await rawSession({ tcp: t.sender.port }, { clientId: 'eve', protocolVersion: 5 })
        // 30,000 bytes of invalid UTF-8 are read as 30,000 U+FFFD: 90,000 bytes once written again
        const packet = mqttPacket.generate({ cmd: 'publish', topic: 'p2p/bob/x', payload: Buffer.from('m'), qos: 1, messageId: 1, retain: false, dup: false, properties: { contentType: 'A'.repeat(30_000) } }, { protocolVersion: 5 })
        const at = packet.indexOf('A'.repeat(64))
        packet.fill(0xff, at, at + 30_000)
        eve.send(packet)
        const ack = await eve.next('puback') as { reasonCode?: number }
        assert.equal(ack.reasonCode, 0x90)
        await (await t.sender.connect('alice')).publishAsync('p2p/bob/x', 'after', { qos: 1 })
        await waitFor(got, 1)
        assert.deepEqual(got.map((m) => m.payload.toString()), ['after'])
        assert.equal(t.counters().dropped.malformed, 1)
        eve.destroy()
      })

      it('refuses to carry a message from a client id too long for MQTT once written again, on every node', async () => {
        const t = await start()
        const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 'B'.repeat(21_846), clean: true, keepalive: 0 }, { protocolVersion: 5 })
        const at = connect.indexOf('B'.repeat(64))
        connect.fill(0xff, at, at + 21_846)
        const odd = await rawClient({ tcp: t.sender.port }, 5)
        odd.send(connect)
        await odd.next('connack')
        odd.send({ cmd: 'publish', topic: 'p2p/nobody/x', payload: Buffer.from('m'), qos: 1, messageId: 1, retain: false, dup: false })
        assert.equal((await odd.next('puback') as { reasonCode?: number }).reasonCode, 0x90)
        odd.destroy()
        const bob = await t.target.connect('bob')
        const got = collect(bob)
        await (await t.sender.connect('alice')).publishAsync('p2p/bob/x', 'the node lives', { qos: 1 })
        await waitFor(got, 1)
      })

      it('counts an MQTT 5 sender\'s properties against max_queued_bytes, for ordinary messages too', async () => {
        const t = await start({ plugin: { limits: { max_queued_bytes: 1024 * 1024 } } })
        const bob = await t.target.connect('bob', { clean: false })
        await bob.subscribeAsync('news', { qos: 1 })
        await t.indexed('bob', 'news')
        await bob.endAsync()
        const alice = await t.sender.connect('alice')
        // an MQTT string holds 64 KiB at most: four of them, 240 KB a message
        const heavy = { userProperties: { padding: Array.from({ length: 4 }, () => 'x'.repeat(60_000)) } }
        for (let i = 0; i < 6; i++) await alice.publishAsync('news', 'x', { qos: 1, properties: heavy })
        await until(() => (t.counters().limits.max_queued_bytes ?? 0) >= 2, 5000, 'the bound to bite')
      })

      it('tells a QoS 1 sender 0x97 for a message a target on its node that stopped reading did not take', { skip: !topology.alone && 'a sender on another node is answered once Redis has the message' }, async () => {
        const t = await start({ plugin: { limits: { max_pending_bytes: 64 * 1024 } } })
        const bob = await rawSession({ tcp: t.target.port }, { clientId: 'bob', protocolVersion: 5 })
        bob.stopReading()
        const alice = await t.sender.connect('alice')
        const codes: number[] = []
        // far more than the sockets on both sides buffer: the bound is reached
        for (let i = 0; i < 2000 && !codes.includes(0x97); i++) codes.push(await publishTold(alice, 'p2p/bob/x', Buffer.alloc(16 * 1024), { qos: 1 }))
        assert.ok(codes.includes(0x97), 'the sender learns it was not taken')
        assert.ok(alice.connected)
        bob.destroy()
      })
    })

    describe('the Maximum Packet Size a target asks for', () => {
      it('drops a live P2P message that would pass it, and sends the ones that fit', async () => {
        const t = await start()
        const bob = await t.target.connect('bob', { properties: { maximumPacketSize: 256 } })
        const got = collect(bob)
        const alice = await t.sender.connect('alice')
        for (const qos of [0, 1] as const) await alice.publishAsync('p2p/bob/x', Buffer.alloc(512), { qos })
        await alice.publishAsync('p2p/bob/x', 'small', { qos: 1 })
        await waitFor(got, 1)
        assert.deepEqual((await fence(alice, bob, got)).map((m) => m.payload.toString()), ['small'])
        assert.ok(bob.connected)
        await until(() => t.counters().dropped.too_large === 2, 5000, 'both counted')
      })

      it('drops a queued one rather than sending it at every reconnect, and keeps the rest of the queue', async () => {
        const t = await start()
        const small = { clean: false, properties: { maximumPacketSize: 256 } }
        await (await t.target.connect('bob', small)).endAsync()
        const alice = await t.sender.connect('alice')
        await alice.publishAsync('p2p/bob/x', Buffer.alloc(512), { qos: 1 })
        await alice.publishAsync('p2p/bob/x', 'fits', { qos: 1 })
        const again = await t.target.connectCollecting('bob', small)
        await waitFor(again.got, 1)
        assert.deepEqual((await fence(alice, again.client, again.got)).map((m) => m.payload.toString()), ['fits'])
        await again.client.endAsync()
        // gone from the queue: a connection that would take it does not get it either
        const later = await t.target.connectCollecting('bob', { clean: false })
        assert.deepEqual(await fence(alice, later.client, later.got), [])
      })
    })

    describe('request/response', () => {
      /** answers every request on `p2p/<me>/requests` to its response topic, with its correlation data */
      function serve (responder: MqttClient): void {
        responder.on('message', (topic, payload, packet) => {
          const p = packet.properties
          if (topic !== 'requests' || p?.responseTopic === undefined) return
          responder.publish(p.responseTopic, `answer to ${payload.toString()}`, { qos: 1, properties: { correlationData: p.correlationData } })
        })
      }

      // the service answers without waiting for each PUBACK: the two answers keep their order
      it('answers a request on its response topic, with its correlation data', async () => {
        const t = await start()
        const service = await t.target.connect('service')
        serve(service)
        const alice = await t.sender.connect('alice')
        const got = collect(alice)
        for (const id of ['r1', 'r2']) {
          await alice.publishAsync('p2p/service/requests', id, { qos: 1, properties: { responseTopic: 'p2p/alice/responses', correlationData: Buffer.from(id) } })
        }
        await waitFor(got, 2)
        assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.packet.properties?.correlationData?.toString()]), [
          ['responses', 'answer to r1', 'r1'],
          ['responses', 'answer to r2', 'r2']
        ])
        // and the answer's sender is the service, stamped by the broker
        assert.ok(got.every((m) => m.packet.properties?.userProperties?.['p2p-sender'] === 'service'))
      })

      it('lets a receiver answer whoever the stamp names, which a sender cannot forge', async () => {
        const t = await start()
        const echo = await t.target.connect('echo')
        echo.on('message', (topic, payload, packet) => {
          const from = packet.properties?.userProperties?.['p2p-sender']
          if (typeof from === 'string') echo.publish(`p2p/${from}/echo`, payload, { qos: 1 })
        })
        const alice = await t.sender.connect('alice')
        const bob = await t.sender.connect('bob')
        const aliceGot = collect(alice)
        const bobGot = collect(bob)
        // alice claims to be bob: the answer still comes back to alice
        await alice.publishAsync('p2p/echo/x', 'hi', withProperties(1, { userProperties: { 'p2p-sender': 'bob' } }))
        await waitFor(aliceGot, 1)
        assert.equal(aliceGot[0]?.payload.toString(), 'hi')
        assert.deepEqual(await fence(alice, bob, bobGot), [])
      })
    })
  })
}
