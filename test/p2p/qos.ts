/** Delivery at the publisher's QoS, whatever the target subscribed to (docs/behaviour.md §2). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fence, collect, waitFor } from '../helpers/messages.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'

export function qos (topology: Topology): void {
  describe('QoS', () => {
    const start = nodesPerTest(topology)

    for (const qos of [0, 1, 2] as const) {
      for (const clean of [true, false]) {
        it(`delivers at the publisher's QoS ${qos} to a ${clean ? 'clean' : 'persistent'} session`, async () => {
          const t = await start()
          const alice = await t.sender.connect('alice')
          const bob = await t.target.connect('bob', { clean })
          const got = collect(bob)
          await alice.publishAsync('p2p/bob/q', 'm', { qos })
          const [m] = await waitFor(got, 1)
          assert.equal(m?.qos, qos)
        })
      }
    }

    it('does not lower the QoS to that of the target\'s own subscription, nor add a copy', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      await bob.subscribeAsync('news', { qos: 0 })
      await bob.subscribeAsync('#', { qos: 0 })
      const got = collect(bob)
      await alice.publishAsync('p2p/bob/news', 'm', { qos: 2 })
      await waitFor(got, 1)
      const rest = await fence(alice, bob, got)
      assert.equal(rest.length, 1)
      assert.equal(rest[0]?.topic, 'news')
      assert.equal(rest[0]?.qos, 2)
    })
  })
}
