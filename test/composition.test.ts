/** The plugin composes with the host's hooks (SPEC §3–4). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Aedes } from 'aedes'
import { register } from '../src/index.js'
import { fence, inbox, waitFor } from './helpers/messages.js'
import { brokerPerTest, captureLog } from './helpers/broker.js'

const broker = brokerPerTest()

describe('composition with the host broker', () => {
  it('runs the user\'s authorizePublish on the original p2p/... topic', async () => {
    const seen: string[] = []
    const b = await broker({
      setup (aedes) {
        aedes.authorizePublish = (client, packet, cb) => { seen.push(packet.topic); cb(null) }
      }
    })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/x', 'm', { qos: 1 })
    await waitFor(got, 1)
    assert.deepEqual(seen, ['p2p/bob/x'])
  })

  it('lets the user\'s topic ACL refuse a P2P publish', async () => {
    const b = await broker({
      setup (aedes) {
        aedes.authorizePublish = (client, packet, cb) => {
          cb(packet.topic.startsWith('p2p/bob/') ? new Error('not allowed') : null)
        }
      }
    })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    alice.publish('p2p/bob/x', 'm', { qos: 0 })
    const carol = await b.connect('carol')
    assert.deepEqual(await fence(carol, bob, got), [])
    assert.equal(b.plugin.counters.received, 0)
  })

  it('still runs the user\'s authorizeSubscribe', async () => {
    const b = await broker({
      setup (aedes) {
        aedes.authorizeSubscribe = (client, sub, cb) => { cb(null, sub.topic === 'forbidden' ? null : sub) }
      }
    })
    const alice = await b.connect('alice')
    const granted = await new Promise<number[]>((resolve) => {
      alice.on('packetreceive', (packet) => { if (packet.cmd === 'suback') resolve(packet.granted as number[]) })
      alice.subscribe(['forbidden', 'fine'], { qos: 1 }, () => {})
    })
    assert.deepEqual(granted, [128, 1])
  })

  it('runs the user\'s authorizeForward on the delivered message, which it may refuse', async () => {
    const forwarded: string[] = []
    const b = await broker({
      setup (aedes) {
        aedes.authorizeForward = (client, packet) => {
          forwarded.push(`${client.id}:${packet.topic}`)
          return packet.topic === 'blocked' ? null : packet
        }
      }
    })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/blocked', 'm', { qos: 1 })
    await alice.publishAsync('p2p/bob/open', 'm', { qos: 1 })
    await waitFor(got, 1)
    assert.deepEqual(got.map((m) => m.topic), ['open'])
    assert.deepEqual(forwarded, ['bob:blocked', 'bob:open'])
  })

  it('runs the user\'s authorizeForward when a queued message is replayed', async () => {
    const forwarded: string[] = []
    const b = await broker({
      setup (aedes) {
        aedes.authorizeForward = (client, packet) => { forwarded.push(packet.topic); return packet }
      }
    })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob', { clean: false })
    await bob.endAsync()
    await alice.publishAsync('p2p/bob/later', 'm', { qos: 1 })
    const again = await b.connectCollecting('bob', { clean: false })
    await waitFor(again.got, 1)
    assert.deepEqual(forwarded, ['later'])
  })

  it('refuses to register twice on one broker', async () => {
    const aedes = await Aedes.createBroker()
    try {
      await register(aedes, { logger: captureLog() })
      await assert.rejects(register(aedes, { logger: captureLog() }), /already registered/)
    } finally {
      aedes.close()
    }
  })

  it('rejects options it does not know', async () => {
    const aedes = await Aedes.createBroker()
    try {
      await assert.rejects(register(aedes, { mdoe: 'suffix' } as never), /unknown key 'mdoe'/)
    } finally {
      aedes.close()
    }
  })
})

describe('P2P authorize hook', () => {
  it('drops and counts a message the hook refuses; the sender stays connected', async () => {
    const b = await broker({ plugin: { authorize: (m) => m.target !== 'admin' } })
    const alice = await b.connect('alice')
    const admin = await b.connect('admin')
    const got = inbox(admin)
    await alice.publishAsync('p2p/admin/x', 'm', { qos: 1 })
    assert.deepEqual(await fence(alice, admin, got), [])
    assert.equal(b.plugin.counters.dropped.refused, 1)
    assert.ok(alice.connected)
  })

  it('is told the sender, target and delivered topic, and may answer asynchronously', async () => {
    const asked: string[] = []
    const b = await broker({
      plugin: {
        authorize: async (m) => {
          asked.push(`${m.senderId}->${m.target}:${m.topic}:${m.qos}:${m.payload.toString()}`)
          return true
        }
      }
    })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/x/y', 'hi', { qos: 2 })
    await waitFor(got, 1)
    assert.deepEqual(asked, ['alice->bob:x/y:2:hi'])
  })

  it('refuses when the hook returns neither true nor a promise', async () => {
    const b = await broker({ plugin: { authorize: (() => undefined) as never } })
    const alice = await b.connect('alice')
    await alice.publishAsync('p2p/alice/x', 'm', { qos: 1 })
    assert.equal(b.plugin.counters.dropped.refused, 1)
    assert.ok(alice.connected)
  })

  it('refuses when the hook throws', async () => {
    const b = await broker({ plugin: { authorize: () => { throw new Error('boom') } } })
    const alice = await b.connect('alice')
    const bob = await b.connect('bob')
    const got = inbox(bob)
    await alice.publishAsync('p2p/bob/x', 'm', { qos: 1 })
    assert.deepEqual(await fence(alice, bob, got), [])
    assert.equal(b.plugin.counters.dropped.refused, 1)
  })
})
