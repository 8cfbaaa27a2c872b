/**
 * max_packet_size (docs/behaviour.md §7): a packet that announces more than
 * the limit closes its connection before its body is read — before and
 * after CONNECT, over TCP, TLS and WebSocket — and nobody else notices.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import mqttPacket from 'mqtt-packet'
import { WebSocket } from 'ws'
import { connectClient } from '../helpers/broker.js'
import { collect, closed, fence, until, waitFor } from '../helpers/messages.js'
import { announcing, connectPacket, rawClient, rawSession, type Transport } from '../helpers/raw.js'
import { limitHits, serverPerTest, type TestServer } from '../helpers/server.js'
import { testCertificate } from '../helpers/tls.js'

const MAX = 64 * 1024
const server = serverPerTest()
const CONNECT = 1
const PUBLISH = 3

/** The broker still serves: a P2P message between two fresh clients arrives. */
async function stillServes (s: TestServer): Promise<void> {
  const port = s.addresses.mqtt?.port ?? 0
  const alice = await connectClient(port, 'still-alice')
  const bob = await connectClient(port, 'still-bob')
  const got = collect(bob)
  await alice.publishAsync('p2p/still-bob/ok', 'served', { qos: 1 })
  await waitFor(got, 1)
  await alice.endAsync()
  await bob.endAsync()
}

/** Sends a fixed header announcing `bytes` more, then waits for the broker to hang up without being sent them. */
async function announceAndBeClosed (to: Transport, type: number, bytes: number, first?: mqttPacket.Packet): Promise<void> {
  const raw = first === undefined ? await rawClient(to) : await rawSession(to, first as never)
  raw.send(Buffer.concat([announcing(type, bytes), Buffer.alloc(16)]))
  await Promise.race([raw.closed, new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('still open')) }, 5000))])
}

describe('max_packet_size', () => {
  it('closes a connection whose CONNECT announces 250 MB, without reading the body', async () => {
    const s = await server({ limits: { max_packet_size: MAX } })
    await announceAndBeClosed({ tcp: s.addresses.mqtt?.port ?? 0 }, CONNECT, 250 * 1024 * 1024)
    assert.equal(await limitHits(s, 'max_packet_size'), 1)
    await stillServes(s)
  })

  it('closes a logged-in client that publishes more than the limit, and delivers nothing of it', async () => {
    const s = await server({ limits: { max_packet_size: MAX } })
    const port = s.addresses.mqtt?.port ?? 0
    const bob = await connectClient(port, 'bob')
    const got = collect(bob)
    const mallory = await connectClient(port, 'mallory')
    mallory.publish('p2p/bob/big', Buffer.alloc(MAX), { qos: 0 })
    await closed(mallory)
    const carol = await connectClient(port, 'carol')
    await carol.subscribeAsync('fence')
    assert.deepEqual(await fence(carol, bob, got), [], 'bob got nothing of it')
    assert.equal(await limitHits(s, 'max_packet_size'), 1)
    await stillServes(s)
  })

  it('takes a packet of exactly the limit, and refuses one byte more', async () => {
    const s = await server({ limits: { max_packet_size: MAX } })
    const port = s.addresses.mqtt?.port ?? 0
    const bob = await connectClient(port, 'bob')
    const got = collect(bob)
    const alice = await connectClient(port, 'alice')
    const topic = 'p2p/bob/edge'
    // the fixed header of a packet this size takes 1 + 3 bytes; the topic 2 + its length
    const payload = Buffer.alloc(MAX - 4 - 2 - topic.length)
    assert.equal(mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }).length, MAX)
    await alice.publishAsync(topic, payload, { qos: 0 })
    await waitFor(got, 1)
    assert.equal(got[0]?.payload.length, payload.length)
    alice.publish(topic, Buffer.alloc(payload.length + 1), { qos: 0 })
    await closed(alice)
  })

  it('counts what a client sends before its CONNACK against one max_packet_size', async () => {
    const s = await server({ limits: { max_packet_size: 16 * 1024 } })
    const raw = await rawClient({ tcp: s.addresses.mqtt?.port ?? 0 })
    const publish = (i: number): Buffer => mqttPacket.generate({ cmd: 'publish', topic: `flood/${i}`, payload: Buffer.alloc(8 * 1024), qos: 0, retain: false, dup: false })
    // each packet is under the limit; all of them, sent before any CONNACK, are not
    raw.send(Buffer.concat([mqttPacket.generate(connectPacket({ clientId: 'piler' })), publish(1), publish(2)]))
    await raw.closed
    assert.equal(await limitHits(s, 'max_packet_size'), 1)
    // the same packets after the CONNACK are fine
    const fair = await rawSession({ tcp: s.addresses.mqtt?.port ?? 0 }, { clientId: 'fair' })
    fair.send(publish(1))
    fair.send(publish(2))
    fair.send({ cmd: 'pingreq' })
    await fair.next('pingresp')
    assert.equal(fair.isClosed(), false)
    fair.destroy()
  })

  it('bounds what all connections still connecting hold together, and still lets a client in', async () => {
    // 64 × 64 KiB together; each attacker holds 20 KiB of a CONNECT it never finishes, under any one connection's bound
    const s = await server({ limits: { max_packet_size: 64 * 1024 } })
    const port = s.addresses.mqtt?.port ?? 0
    const attackers = await Promise.all(Array.from({ length: 300 }, async () => rawClient({ tcp: port })))
    for (const raw of attackers) raw.send(Buffer.concat([announcing(CONNECT, 60 * 1024), Buffer.alloc(20 * 1024)]))
    await until(() => attackers.filter((raw) => raw.isClosed()).length >= 50, 5000, 'the ones past the bound closed')
    assert.ok(await limitHits(s, 'max_packet_size') >= 50)
    await stillServes(s)
    for (const raw of attackers) raw.destroy()
  })

  it('closes a connection over TLS the same way', async () => {
    const tls = await testCertificate()
    const s = await server({ limits: { max_packet_size: MAX }, listeners: { tls_port: 0, tls_cert: tls.cert, tls_key: tls.key } })
    await announceAndBeClosed({ tls: s.addresses.mqtts?.port ?? 0, ca: tls.pem }, CONNECT, 250 * 1024 * 1024)
    await announceAndBeClosed({ tls: s.addresses.mqtts?.port ?? 0, ca: tls.pem }, PUBLISH, MAX, connectPacket({ clientId: 'tls-mallory' }))
    assert.equal(await limitHits(s, 'max_packet_size'), 2)
  })

  it('closes a connection over WebSocket for an MQTT packet announcing too much, however it is framed', async () => {
    const s = await server({ limits: { max_packet_size: MAX }, listeners: { ws_port: 0 } })
    const url = `ws://127.0.0.1:${s.addresses.ws?.port}/mqtt`
    await announceAndBeClosed({ ws: url }, CONNECT, 250 * 1024 * 1024)
    await announceAndBeClosed({ ws: url }, PUBLISH, MAX, connectPacket({ clientId: 'ws-mallory' }))
    assert.equal(await limitHits(s, 'max_packet_size'), 2)
  })

  it('closes a WebSocket that sends one message larger than the limit, before it is buffered whole', async () => {
    const s = await server({ limits: { max_packet_size: MAX }, listeners: { ws_port: 0 } })
    const ws = new WebSocket(`ws://127.0.0.1:${s.addresses.ws?.port}/mqtt`, 'mqtt')
    await once(ws, 'open')
    ws.on('error', () => {})
    const closing = once(ws, 'close')
    ws.send(Buffer.alloc(MAX + 1))
    const [code] = await closing as [number]
    assert.equal(code, 1009, 'message too big')
    assert.equal(await limitHits(s, 'max_packet_size'), 1)
    await stillServes(s)
  })

  it('logs a flood of oversized packets at a bounded rate', async () => {
    const s = await server({ limits: { max_packet_size: MAX } })
    for (let i = 0; i < 60; i++) await announceAndBeClosed({ tcp: s.addresses.mqtt?.port ?? 0 }, CONNECT, MAX + 1)
    assert.equal(await limitHits(s, 'max_packet_size'), 60)
    const lines = s.logs.filter((l) => l.limit === 'max_packet_size')
    assert.ok(lines.length <= 20, `${lines.length} warnings for 60 hits`)
  })
})
