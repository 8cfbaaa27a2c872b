/**
 * The moment a client connects to a node of a cluster (docs/behaviour.md §5): its channel
 * must be subscribed before it is told it is connected. Two brokers in this
 * process share one emitter and one persistence, as nodes share Redis; the
 * emitter takes its time to subscribe, as Redis does.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { after, describe, it } from 'node:test'
import mqttPacket from 'mqtt-packet'
import type { AedesOptions } from 'aedes'
import { emitterCluster } from '../../src/index.js'
import { startBroker, type TestBroker } from '../helpers/broker.js'
import { fence, collect, waitFor } from '../helpers/messages.js'

type Listener = (packet: unknown, cb: () => void) => void
interface SharedEmitter {
  on (topic: string, listener: Listener, done?: () => void): void
  removeListener (topic: string, listener: Listener, done?: () => void): void
}

/** The same emitter, with subscriptions that take effect `ms` later (or never). */
function slowToSubscribe (mq: SharedEmitter, ms: number | 'never'): SharedEmitter {
  const slow = Object.create(mq) as SharedEmitter
  slow.on = (topic, listener, done) => {
    if (ms === 'never') return
    setTimeout(() => { mq.on(topic, listener, done) }, ms)
  }
  return slow
}

const brokers: TestBroker[] = []
after(async () => { await Promise.all(brokers.map(async (b) => b.close())) })

type Method = (...args: never[]) => unknown
type Persistence = Record<string, unknown>
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** The same persistence, with the methods named in `wraps` replaced by what each makes of the original. */
function wrapped (persistence: Persistence, wraps: Record<string, (original: (...args: unknown[]) => unknown) => Method>): Persistence {
  return new Proxy(persistence, {
    get (target, key) {
      const value = Reflect.get(target, key, target) as unknown
      if (typeof value !== 'function') return value
      const bound = (value as (...args: unknown[]) => unknown).bind(target)
      const wrap = typeof key === 'string' ? wraps[key] : undefined
      return wrap === undefined ? bound : wrap(bound)
    }
  })
}

/**
 * Calls `meanwhile`, then takes `ms`, in a clean client's connect step that
 * comes after authentication and before the CONNACK: that holds a client
 * between the two for as long as the test needs.
 */
const slowBeforeConnack = (ms: number, meanwhile: () => Promise<void>) => (original: (...args: unknown[]) => unknown) =>
  async (client: { id: string }) => {
    await meanwhile()
    await sleep(ms)
    return original(client)
  }

async function nodes (subscribeDelay: number | 'never', persistence = (p: Persistence): Persistence => p): Promise<[TestBroker, TestBroker]> {
  const first = await startBroker({ plugin: { cluster: emitterCluster() } })
  brokers.push(first)
  const shared = first.broker as unknown as { mq: SharedEmitter, persistence: Persistence }
  const second = await startBroker({
    plugin: { cluster: emitterCluster() },
    aedes: { mq: slowToSubscribe(shared.mq, subscribeDelay) as unknown as AedesOptions['mq'], persistence: persistence(shared.persistence) }
  })
  brokers.push(second)
  return [first, second]
}

describe('connecting to a cluster node', () => {
  it('reaches a client from another node as soon as it has its CONNACK', async () => {
    const [node1, node2] = await nodes(100)
    const alice = await node1.connect('cc-alice')
    const { client: bob, got } = await node2.connectCollecting('cc-bob')
    // sent the moment bob is told it is connected, through the shared emitter
    await alice.publishAsync('p2p/cc-bob/now', 'first', { qos: 0 })
    const [message] = await waitFor(got, 1, 2000)
    assert.equal(message?.topic, 'now')
    assert.equal(message?.payload.toString(), 'first')
    await bob.endAsync()
  })

  it('holds a message that arrives between authentication and CONNACK, and writes it once, after the CONNACK', async () => {
    const sender: { client?: Awaited<ReturnType<TestBroker['connect']>> } = {}
    const sent: string[] = []
    const [node1, node2] = await nodes(0, (p) => wrapped(p, {
      cleanSubscriptions: slowBeforeConnack(300, async () => {
        // bob's channel is subscribed by now: the cluster strategy answers authentication only after that
        if (sender.client === undefined) return
        sent.push('early')
        await sender.client.publishAsync('p2p/cc-held/early', 'before the CONNACK', { qos: 1 })
      })
    }))
    const alice = sender.client = await node1.connect('cc-alice-3')
    const { client: bob, got } = await node2.connectCollecting('cc-held')
    assert.deepEqual(sent, ['early'], 'the message was sent while bob waited for its CONNACK')
    await alice.publishAsync('p2p/cc-held/late', 'after', { qos: 1 })
    await waitFor(got, 2)
    assert.deepEqual((await fence(alice, bob, got)).map((m) => m.topic), ['early', 'late'], 'in order, once each')
    await bob.endAsync()
  })

  it('queues for a persistent session that leaves right after its first CONNACK, however slow the store', async () => {
    // the session's record takes 200 ms to land in the store: long after the CONNACK, unless the CONNACK waits for it
    const [node1, node2] = await nodes(0, (p) => wrapped(p, {
      addSubscriptions: (original) => async (...args: unknown[]) => {
        await sleep(200)
        return original(...args)
      }
    }))
    const alice = await node1.connect('cc-alice-4')
    const first = await node2.connectCollecting('cc-fleeting', { clean: false })
    assert.equal(first.sessionPresent, false)
    await first.client.endAsync()
    await alice.publishAsync('p2p/cc-fleeting/x', 'kept', { qos: 1 })
    const again = await node2.connectCollecting('cc-fleeting', { clean: false })
    await waitFor(again.got, 1)
    assert.equal(again.got[0]?.payload.toString(), 'kept')
    await again.client.endAsync()
  })

  it('keeps a sender\'s order for messages that arrive before the CONNACK and while the session queue is replayed', async () => {
    const sender: { client?: Awaited<ReturnType<TestBroker['connect']>> } = {}
    const send = async (payload: string): Promise<void> => { await sender.client?.publishAsync('p2p/cc-order/t', payload, { qos: 0 }) }
    const [node1, node2] = await nodes(0, (p) => wrapped(p, {
      cleanSubscriptions: slowBeforeConnack(100, async () => { await send('M1') }),
      // the replay starts after the CONNACK: M2 arrives while it runs
      outgoingStream: (original) => (client: { id: string }) => Readable.from((async function * () {
        await send('M2')
        await sleep(200)
        yield * original(client) as AsyncIterable<unknown>
      })())
    }))
    sender.client = await node1.connect('cc-alice-5')
    const { client: bob, got } = await node2.connectCollecting('cc-order')
    await waitFor(got, 2)
    assert.deepEqual(got.map((m) => m.payload.toString()), ['M1', 'M2'])
    await bob.endAsync()
  })

  it('leaves no channel subscription behind a client that hangs up during a slow password check', async () => {
    const first = await startBroker({ plugin: { cluster: emitterCluster() } })
    brokers.push(first)
    const shared = first.broker as unknown as { mq: SharedEmitter, persistence: Persistence }
    let channels = 0
    const counting = Object.create(shared.mq) as SharedEmitter
    counting.on = (topic, listener, done) => {
      if (topic.startsWith('$p2p/')) channels++
      shared.mq.on(topic, listener, done)
    }
    counting.removeListener = (topic, listener, done) => {
      if (topic.startsWith('$p2p/')) channels--
      shared.mq.removeListener(topic, listener, done)
    }
    let asked = (): void => {}
    let answered = (): void => {}
    const checking = new Promise<void>((resolve) => { asked = resolve })
    const answer = new Promise<void>((resolve) => { answered = resolve })
    const second = await startBroker({
      plugin: { cluster: emitterCluster() },
      aedes: { mq: counting as unknown as AedesOptions['mq'], persistence: shared.persistence },
      setup (broker) {
        broker.authenticate = (_client, _username, _password, callback) => {
          asked()
          setTimeout(() => {
            callback(null, true)
            answered()
          }, 100)
        }
      }
    })
    brokers.push(second)
    const socket = connect(second.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'cc-gone', clean: true, keepalive: 0 }))
    await checking
    socket.destroy()
    await answer
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(channels, 0, 'no channel subscribed for the client that left')
    // and the count does move: a client that stays has its channel
    const stays = await second.connect('cc-stays')
    assert.equal(channels, 1)
    await stays.endAsync()
  })

  it('still lets a client connect and message locally when the emitter cannot subscribe', async () => {
    const [, node2] = await nodes('never')
    const started = Date.now()
    const bob = await node2.connect('cc-bob-2')
    const carol = await node2.connect('cc-carol-2')
    assert.ok(Date.now() - started < 3000, 'connects after a bounded wait')
    const got = collect(bob)
    await carol.publishAsync('p2p/cc-bob-2/local', 'hi', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.payload.toString(), 'hi')
  })
})
