/** The plugin composes with the host's hooks, and adds its own checks (docs/behaviour.md §3–4). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { closed, collect, fence, publishTold, until, waitFor } from '../helpers/messages.js'
import { subscribeRefused, told, v5 } from '../helpers/protocol.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'

export function composition (topology: Topology): void {
  describe('composition with the host broker', () => {
    const start = nodesPerTest(topology)

    it('runs the user\'s authorizePublish on the original p2p/... topic', async () => {
      const seen: string[] = []
      const t = await start({
        setup (aedes) {
          aedes.authorizePublish = (client, packet, cb) => { seen.push(packet.topic); cb(null) }
        }
      })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      await alice.publishAsync('p2p/bob/x', 'm', { qos: 1 })
      await waitFor(got, 1)
      assert.deepEqual(seen, ['p2p/bob/x'])
    })

    it('lets the user\'s topic ACL refuse a P2P publish', async () => {
      const t = await start({
        setup (aedes) {
          aedes.authorizePublish = (client, packet, cb) => {
            cb(packet.topic.startsWith('p2p/bob/') ? new Error('not allowed') : null)
          }
        }
      })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      if (v5()) {
        // Aedes 2 tells an MQTT 5 sender 0x87 and keeps it connected
        assert.equal(await publishTold(alice, 'p2p/bob/x', 'm', { qos: 1 }), 0x87)
        assert.deepEqual(await fence(alice, bob, got), [])
      } else {
        // Aedes closes a 3.1.1 client once it has refused its publish: that close is the fence for what it sent
        alice.publish('p2p/bob/x', 'm', { qos: 0 })
        await closed(alice)
        const carol = await t.sender.connect('carol')
        assert.deepEqual(await fence(carol, bob, got), [])
      }
      assert.equal(t.counters().received, 0)
    })

    it('still runs the user\'s authorizeSubscribe', async () => {
      const t = await start({
        setup (aedes) {
          aedes.authorizeSubscribe = (client, sub, cb) => { cb(null, sub.topic === 'forbidden' ? null : sub) }
        }
      })
      const bob = await t.target.connect('bob')
      const granted = await new Promise<number[]>((resolve) => {
        bob.on('packetreceive', (packet) => { if (packet.cmd === 'suback') resolve(packet.granted as number[]) })
        bob.subscribe(['forbidden', 'fine'], { qos: 1 }, () => {})
      })
      assert.deepEqual(granted, [subscribeRefused(), 1])
    })

    it('runs the user\'s authorizeForward on the delivered message, which it may refuse', async () => {
      const forwarded: string[] = []
      const t = await start({
        setup (aedes) {
          aedes.authorizeForward = (client, packet) => {
            forwarded.push(`${client.id}:${packet.topic}`)
            return packet.topic === 'blocked' ? null : packet
          }
        }
      })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      await alice.publishAsync('p2p/bob/blocked', 'm', { qos: 1 })
      await alice.publishAsync('p2p/bob/open', 'm', { qos: 1 })
      await waitFor(got, 1)
      assert.deepEqual(got.map((m) => m.topic), ['open'])
      assert.deepEqual(forwarded, ['bob:blocked', 'bob:open'])
    })

    it('runs the user\'s authorizeForward when a queued message is replayed', async () => {
      const forwarded: string[] = []
      const t = await start({
        setup (aedes) {
          aedes.authorizeForward = (client, packet) => { forwarded.push(packet.topic); return packet }
        }
      })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob', { clean: false })
      await bob.endAsync()
      await alice.publishAsync('p2p/bob/later', 'm', { qos: 1 })
      const again = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(again.got, 1)
      assert.deepEqual(forwarded, ['later'])
    })
  })

  describe('P2P authorization: rules and the authorize hook', () => {
    const start = nodesPerTest(topology)

    it('drops and counts a message the hook refuses; the sender stays connected', async () => {
      const t = await start({ plugin: { authorize: (m) => m.target !== 'admin' } })
      const alice = await t.sender.connect('alice')
      const admin = await t.target.connect('admin')
      const got = collect(admin)
      assert.equal(await publishTold(alice, 'p2p/admin/x', 'm', { qos: 1 }), told(1, 0x87))
      assert.deepEqual(await fence(alice, admin, got), [])
      await until(() => t.counters().dropped.refused === 1, 5000, 'the refusal counted')
      assert.ok(alice.connected)
    })

    it('tells the hook the sender, target and delivered topic, and lets it answer asynchronously', async () => {
      const asked: string[] = []
      const t = await start({
        plugin: {
          authorize: async (m) => {
            asked.push(`${m.senderId}->${m.target}:${m.topic}:${m.qos}:${m.payload.toString()}`)
            return true
          }
        }
      })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      await alice.publishAsync('p2p/bob/x/y', 'hi', { qos: 2 })
      await waitFor(got, 1)
      assert.deepEqual(asked, ['alice->bob:x/y:2:hi'])
    })

    it('refuses when the hook returns neither true nor a promise', async () => {
      const t = await start({ plugin: { authorize: (() => undefined) as never } })
      const alice = await t.sender.connect('alice')
      const got = collect(alice)
      assert.equal(await publishTold(alice, 'p2p/alice/x', 'm', { qos: 1 }), told(1, 0x87))
      assert.deepEqual(await fence(alice, alice, got), [])
      await until(() => t.counters().dropped.refused === 1, 5000, 'the refusal counted')
      assert.ok(alice.connected)
    })

    it('refuses when the hook throws or rejects, and logs the failure', async () => {
      let calls = 0
      const t = await start({
        plugin: {
          authorize: () => {
            calls++
            if (calls === 1) throw new Error('boom')
            return Promise.reject(new Error('async boom'))
          }
        }
      })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      assert.equal(await publishTold(alice, 'p2p/bob/x', 'm', { qos: 1 }), told(1, 0x87))
      assert.equal(await publishTold(alice, 'p2p/bob/y', 'm', { qos: 1 }), told(1, 0x87))
      assert.deepEqual(await fence(alice, bob, got), [])
      await until(() => t.counters().dropped.refused === 2, 5000, 'both refusals counted')
      assert.equal(t.logLines().filter((l) => l.level === 'error' && l.msg === 'P2P authorize hook failed; message refused').length, 2)
    })

    it('drops and counts a message a rule refuses, warning with the reason; the sender stays connected', async () => {
      const t = await start({ plugin: { rules: [{ action: 'deny', sender: 'guest-*', target: 'admin' }] } })
      const guest = await t.sender.connect('guest-1')
      const admin = await t.target.connect('admin')
      const got = collect(admin)
      assert.equal(await publishTold(guest, 'p2p/admin/x', 'm', { qos: 1 }), told(1, 0x87))
      assert.deepEqual(await fence(guest, admin, got), [])
      await until(() => t.counters().dropped.refused === 1, 5000, 'the refusal counted')
      assert.ok(guest.connected)
      assert.ok(t.logLines().some((l) => l.level === 'warn' && (l.obj as { reason?: string }).reason === 'refused by rule'))
    })

    it('matches rules on the username the sender connected with', async () => {
      const t = await start({ plugin: { rules: [{ action: 'allow', target: '${username}-*' }, { action: 'deny' }] } })
      const sender = await t.sender.connect('c1', { username: 'alice' })
      const mine = await t.target.connect('alice-phone')
      const theirs = await t.target.connect('bob-phone')
      const mineGot = collect(mine)
      const theirsGot = collect(theirs)
      await sender.publishAsync('p2p/alice-phone/x', 'ok', { qos: 1 })
      assert.equal(await publishTold(sender, 'p2p/bob-phone/x', 'no', { qos: 1 }), told(1, 0x87))
      await waitFor(mineGot, 1)
      assert.deepEqual(await fence(sender, theirs, theirsGot), [])
    })
  })
}
