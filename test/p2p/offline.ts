/** The offline queue of a persistent session (docs/behaviour.md §2). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fence, collect, until, waitFor, type Received } from '../helpers/messages.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'

/** Per QoS, the payloads in arrival order: a client hands a QoS 2 message over only after PUBREL, so the two interleave freely. */
function byQos (got: Received[], qos: 1 | 2): string[] {
  return got.filter((m) => m.qos === qos).map((m) => m.payload.toString())
}

export function offline (topology: Topology): void {
  describe('persistent sessions', () => {
    const start = nodesPerTest(topology)
    const sent: Array<[string, 1 | 2]> = [['a', 1], ['b', 2], ['c', 1], ['d', 2], ['e', 1], ['f', 1], ['g', 2]]
    const expect = (qos: 1 | 2): string[] => sent.filter(([, q]) => q === qos).map(([p]) => p)

    it('queues QoS 1 and 2 for an offline target and delivers them in order on reconnect', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob', { clean: false })
      await bob.endAsync()
      for (const [p, qos] of sent) await alice.publishAsync('p2p/bob/q', p, { qos })
      await alice.publishAsync('p2p/bob/q', 'qos0 is not queued', { qos: 0 })
      const counted = (): number => { const c = t.counters(); return c.queued + c.forwarded + c.dropped.no_session }
      await until(() => counted() === sent.length + 1, 5000, 'every message counted')
      const c = t.counters()
      if (topology.knowsPresence) {
        assert.equal(c.queued, sent.length)
        assert.equal(c.dropped.no_session, 1, 'the QoS 0 one')
      } else {
        // queued all the same; the node also sends each on, in case the target is connected elsewhere
        assert.equal(c.forwarded, sent.length + 1)
      }

      const again = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(again.got, sent.length)
      assert.deepEqual(byQos(again.got, 1), expect(1))
      assert.deepEqual(byQos(again.got, 2), expect(2))
      assert.ok(again.got.every((m) => m.topic === 'q' && !m.retain))
      assert.equal((await fence(alice, again.client, again.got)).length, sent.length, 'each once, and not the QoS 0 one')
    })

    it('delivers the queue on whichever node the target comes back to', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob', { clean: false })
      await bob.endAsync()
      for (const [p, qos] of sent) await alice.publishAsync('p2p/bob/q', p, { qos })
      const again = await t.sender.connectCollecting('bob', { clean: false })
      await waitFor(again.got, sent.length)
      assert.deepEqual(byQos(again.got, 1), expect(1))
      assert.deepEqual(byQos(again.got, 2), expect(2))
    })

    it('does not deliver a queued message twice once it was acknowledged', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob', { clean: false })
      await bob.endAsync()
      await alice.publishAsync('p2p/bob/q', 'once', { qos: 1 })
      const first = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(first.got, 1)
      await first.client.endAsync()
      const second = await t.target.connectCollecting('bob', { clean: false })
      assert.deepEqual(await fence(alice, second.client, second.got), [])
    })

    it('reports no session on a first persistent connect, and the session present once it queued for it', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const first = await t.target.connectCollecting('bob', { clean: false })
      assert.equal(first.sessionPresent, false)
      await first.client.endAsync()
      await alice.publishAsync('p2p/bob/x', 'm', { qos: 1 })
      const again = await t.target.connectCollecting('bob', { clean: false })
      await waitFor(again.got, 1)
      assert.equal(again.sessionPresent, true)
    })

    it('delivers live to a connected persistent client at its QoS, and does not replay what it acknowledged', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob', { clean: false })
      const got = collect(bob)
      await alice.publishAsync('p2p/bob/x', 'live', { qos: 2 })
      const [m] = await waitFor(got, 1)
      assert.equal(m?.qos, 2)
      await bob.endAsync()
      const again = await t.target.connectCollecting('bob', { clean: false })
      assert.deepEqual(await fence(alice, again.client, again.got), [], 'acknowledged, so not replayed')
    })
  })
}
