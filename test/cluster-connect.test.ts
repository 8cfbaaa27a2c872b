/**
 * SPEC §5, the moment a client connects to a node of a cluster: its channel
 * must be subscribed before it is told it is connected. Two brokers in this
 * process share one emitter and one persistence, as nodes share Redis; the
 * emitter takes its time to subscribe, as Redis does.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { AedesOptions } from 'aedes'
import { startBroker, type TestBroker } from './helpers/broker.js'
import { inbox, waitFor } from './helpers/messages.js'

type Listener = (packet: unknown, cb: () => void) => void
interface SharedEmitter { on (topic: string, listener: Listener, done?: () => void): void }

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

async function nodes (subscribeDelay: number | 'never'): Promise<[TestBroker, TestBroker]> {
  const first = await startBroker({ plugin: { cluster: true } })
  brokers.push(first)
  const shared = first.broker as unknown as { mq: SharedEmitter, persistence: AedesOptions['persistence'] }
  const second = await startBroker({
    plugin: { cluster: true },
    aedes: { mq: slowToSubscribe(shared.mq, subscribeDelay) as unknown as AedesOptions['mq'], persistence: shared.persistence }
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

  it('still lets a client connect and message locally when the emitter cannot subscribe', async () => {
    const [, node2] = await nodes('never')
    const started = Date.now()
    const bob = await node2.connect('cc-bob-2')
    const carol = await node2.connect('cc-carol-2')
    assert.ok(Date.now() - started < 3000, 'connects after a bounded wait')
    const got = inbox(bob)
    await carol.publishAsync('p2p/cc-bob-2/local', 'hi', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.payload.toString(), 'hi')
  })
})
