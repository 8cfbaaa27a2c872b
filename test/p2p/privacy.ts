/** Nobody but the target reads a P2P message (docs/behaviour.md §2). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fence, collect, publishTold, until, waitFor } from '../helpers/messages.js'
import { refusal, subscribeRefused, told } from '../helpers/protocol.js'
import { connackCode } from '../helpers/broker.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'

export function privacy (topology: Topology): void {
  describe('privacy', () => {
    const start = nodesPerTest(topology)

    it('reaches no other subscriber on any node: not #, p2p/#, the delivered topic, +/+/+ or $-topics', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const eves = await Promise.all(t.all.map(async (node, i) => node.connect(`eve${i}`)))
      for (const eve of eves) await eve.subscribeAsync(['#', 'p2p/#', 'secret', '+/+/+', '$SYS/#'], { qos: 1 })
      const eveGot = eves.map((eve) => collect(eve))
      const bobGot = collect(bob)
      await alice.publishAsync('p2p/bob/secret', 'for bob only', { qos: 1 })
      await waitFor(bobGot, 1)
      for (const [i, eve] of eves.entries()) {
        // one fence topic for all: every eve reads every fence through its #
        const leaked = (await fence(alice, eve, eveGot[i] ?? [])).filter((m) => !m.topic.startsWith('$SYS/'))
        assert.deepEqual(leaked, [])
      }
    })

    it('refuses subscriptions into the channels\' namespace', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const eve = await t.target.connect('eve')
      const filters = ['$p2p/#', '$p2p/bob', '$p2p/+', '$p2p']
      const granted = await new Promise<number[]>((resolve) => {
        eve.on('packetreceive', (packet) => { if (packet.cmd === 'suback') resolve(packet.granted as number[]) })
        eve.subscribe(filters, { qos: 1 }, () => {})
      })
      assert.deepEqual(granted, filters.map(subscribeRefused))
      const eveGot = collect(eve)
      const bobGot = collect(bob)
      await alice.publishAsync('p2p/bob/secret', 'for bob only', { qos: 1 })
      await waitFor(bobGot, 1)
      assert.deepEqual(await fence(alice, eve, eveGot), [])
    })

    it('refuses a client id that names what every JavaScript object has, which would end an Aedes 2 node, and serves the others', async () => {
      const t = await start()
      for (const id of ['toString', '__proto__', 'constructor']) assert.equal(await connackCode(t.target.port, id), refusal(2))
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      await (await t.sender.connect('alice')).publishAsync('p2p/bob/x', 'still here', { qos: 1 })
      await waitFor(got, 1)
    })

    it('never lets a client id holding +, # or / match another client\'s messages', async () => {
      const t = await start({ plugin: { mode: 'both' } })
      const alice = await t.sender.connect('alice')
      const bob = await t.target.connect('bob')
      const odd = await Promise.all(['#', '+', 'bob/#', 'p2p/bob', '+/bob', 'b*', '%24p2p'].map(async (id) => t.target.connect(id)))
      const oddGot = odd.map((c) => collect(c))
      const bobGot = collect(bob)
      await alice.publishAsync('p2p/bob/x', '1', { qos: 1 })
      await alice.publishAsync('x/p2p/bob', '2', { qos: 1 })
      await waitFor(bobGot, 2)
      for (const [i, c] of odd.entries()) {
        assert.deepEqual(await fence(alice, c, oddGot[i] ?? [], `fence${i}`), [])
      }
    })

    it('drops a publish forged onto a channel, and keeps the forger connected', async () => {
      const t = await start()
      const mallory = await t.sender.connect('mallory')
      const bob = await t.target.connect('bob')
      const got = collect(bob)
      assert.equal(await publishTold(mallory, '$p2p/bob', Buffer.from([1, 0, 1, 120, 33]), { qos: 1 }), told(1, 0x87))
      assert.deepEqual(await fence(mallory, bob, got), [])
      await until(() => t.counters().dropped.refused === 1, 5000, 'the forgery counted')
      assert.ok(mallory.connected)
    })
  })
}
