/**
 * Where Aedes 2 (2.0.0-beta.1) does less than Aedes 1.2, or publishes with
 * no client behind a message, and the plugin makes up for it on one broker.
 */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { brokerPerTest } from '../helpers/broker.js'
import { collect, until, waitFor } from '../helpers/messages.js'
import { speakMqtt5 } from '../helpers/protocol.js'
import { rawSession } from '../helpers/raw.js'

speakMqtt5()
const start = brokerPerTest()

it('stamps the will of a client whose node died with the will\'s owner', async () => {
  // Aedes publishes the wills of brokers it has not heard from in three heartbeats
  const t = await start({ aedes: { heartbeatInterval: 100 } })
  const bob = await t.connect('bob')
  const got = collect(bob)
  const persistence = (t.broker as unknown as { persistence: { putWill (client: object, packet: object): Promise<void> } }).persistence
  const will = { cmd: 'publish', topic: 'p2p/bob/bye', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { userProperties: { 'p2p-sender': 'forged' } }, brokerId: '' }
  await persistence.putWill({ id: 'ghost' }, will)
  // the in-memory store files a will under its own broker and keeps the object: this one is now a dead node's
  will.brokerId = 'a-node-that-died'
  await waitFor(got, 1, 10_000)
  assert.equal(got[0]?.topic, 'bye')
  assert.deepEqual({ ...got[0]?.packet.properties?.userProperties }, { 'p2p-sender': 'ghost' })
})

for (const [version, topic] of [[5, 'p2p/bob/x'], [5, 'news'], [4, 'p2p/bob/x']] as const) {
  it(`closes an MQTT ${version === 5 ? '5' : '3.1.1'} client that sends a 1001st QoS 2 message to ${topic} without releasing the others, as Aedes 1.2 does`, async () => {
    const t = await start()
    const bob = await t.connect('bob')
    const got = collect(bob)
    const flood = await rawSession({ tcp: t.port }, { clientId: 'flood', protocolVersion: version })
    // a client that never sends PUBREL: each message waits in the broker's store for it
    for (let id = 1; id <= 1001; id++) {
      const payload = Buffer.alloc(64)
      payload.writeUInt16BE(id)
      flood.send({ cmd: 'publish', topic, payload, qos: 2, messageId: id, retain: false, dup: false })
    }
    await flood.closed
    assert.ok(flood.packets.filter((p) => p.cmd === 'pubrec').length <= 1000)
    assert.ok((t.plugin.counters.limits.max_inflight_inbound ?? 0) >= 1)
    // the messages are handled concurrently: one refused by the store may have been delivered, unacknowledged, so its sender sends it again
    const ids = got.map((m) => m.payload.readUInt16BE(0))
    assert.equal(new Set(ids).size, ids.length, 'none twice')
    // and the broker serves everyone else
    const alice = await t.connect('alice')
    const before = got.length
    await alice.publishAsync('p2p/bob/after', 'still here', { qos: 2 })
    await waitFor(got, before + 1)
  })
}

it('counts the QoS 2 messages an id leaves waiting across its connections, and lets go of them when its session starts clean', async () => {
  const t = await start()
  const persistent = { clientId: 'hoarder', protocolVersion: 5 as const, clean: false }
  const leave = async (from: number, count: number): Promise<void> => {
    const raw = await rawSession({ tcp: t.port }, persistent)
    for (let id = from; id < from + count; id++) raw.send({ cmd: 'publish', topic: 'news', payload: Buffer.alloc(8), qos: 2, messageId: id, retain: false, dup: false })
    await until(() => raw.packets.filter((p) => p.cmd === 'pubrec').length === count, 5000, `${count} PUBRECs`)
    raw.destroy()
    await raw.closed
  }
  // two connections of one id, 600 each: the second passes the bound the store holds them by
  await leave(1, 600)
  const second = await rawSession({ tcp: t.port }, persistent)
  for (let id = 601; id <= 1200; id++) second.send({ cmd: 'publish', topic: 'news', payload: Buffer.alloc(8), qos: 2, messageId: id, retain: false, dup: false })
  await second.closed
  assert.ok((t.plugin.counters.limits.max_inflight_inbound ?? 0) >= 1)
  // a clean start ends the session, and what it left waiting: the id has its whole window again
  const fresh = await rawSession({ tcp: t.port }, { clientId: 'hoarder', protocolVersion: 5, clean: true })
  fresh.destroy()
  await fresh.closed
  await leave(1, 1000)
})
