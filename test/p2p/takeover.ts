/** A client id that connects again takes the session over (docs/behaviour.md §2). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Aedes } from 'aedes'
import { closed, collect, fence, until, waitFor } from '../helpers/messages.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'

export function takeover (topology: Topology): void {
  describe('session takeover', () => {
    const start = nodesPerTest(topology)

    for (const where of ['the same node', 'the sender\'s node'] as const) {
      it(`sends new messages to the new connection once it has its CONNACK, taken over on ${where}`, async () => {
        const t = await start()
        const alice = await t.sender.connect('alice')
        // Aedes tells the other nodes of each new connection, and a node closes its own
        // connection with that id when it hears of one: the notice of the first must
        // be heard before the second connects, or it closes the second (as on any Aedes)
        const across = t.sender !== t.target && where === 'the sender\'s node'
        const heard = across ? announced(t.sender.broker, 'bob') : undefined
        const first = await t.target.connect('bob')
        await heard
        const firstGot = collect(first)
        const firstClosed = closed(first)
        const second = await (where === 'the same node' ? t.target : t.sender).connect('bob')
        const secondGot = collect(second)
        // sent before the old connection is seen to close: it must not get it in the meantime
        await alice.publishAsync('p2p/bob/after', 'm', { qos: 1 })
        await waitFor(secondGot, 1)
        await firstClosed
        assert.equal(firstGot.length, 0, 'nothing reached the old connection before it closed')
        assert.equal((await fence(alice, second, secondGot)).length, 1, 'the new connection got it once')
        await until(() => t.counters().delivered > 0, 5000, 'the delivery counted')
        assert.equal(t.counters().delivered, 1)
      })
    }

    for (const clean of [false, true]) {
      it(`answers two ${clean ? 'clean' : 'persistent'} connects with one id at once, and the one left connected gets the messages`, async () => {
        const t = await start()
        const alice = await t.sender.connect('alice')
        const both = Promise.allSettled([t.target.connectCollecting('bob', { clean }), t.target.connectCollecting('bob', { clean })])
        const answered = await Promise.race([both, new Promise<'hung'>((resolve) => setTimeout(() => { resolve('hung') }, 4000))])
        assert.notEqual(answered, 'hung', 'each connect got its CONNACK or was closed within 4 s')
        const sessions = (await both).flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
        assert.ok(sessions.length > 0)
        await until(() => sessions.filter((s) => s.client.connected).length === 1, 5000, 'one connection left')
        const left = sessions.find((s) => s.client.connected)
        if (left === undefined) throw new Error('no connection left')
        await alice.publishAsync('p2p/bob/x', 'm', { qos: 1 })
        await waitFor(left.got, 1)
        assert.equal(left.got[0]?.topic, 'x')
      })
    }

    it('delivers a persistent session\'s queue to the connection that took it over', async () => {
      const t = await start()
      const alice = await t.sender.connect('alice')
      const first = await t.target.connect('bob', { clean: false })
      await first.endAsync()
      await alice.publishAsync('p2p/bob/q', 'queued', { qos: 1 })
      const second = await t.target.connectCollecting('bob', { clean: false })
      const third = await t.target.connectCollecting('bob', { clean: false })
      await alice.publishAsync('p2p/bob/q', 'live', { qos: 1 })
      await waitFor(third.got, 1)
      const atThird = (await fence(alice, third.client, third.got)).map((m) => m.payload.toString())
      const atSecond = second.got.map((m) => m.payload.toString())
      assert.ok(atThird.includes('live'), 'new messages go to the newest connection')
      // a copy at both is allowed: the second's PUBACK may race the takeover (QoS 1 is at least once)
      assert.ok([...atSecond, ...atThird].includes('queued'), 'the queued message reached one of them')
      assert.ok(!atSecond.includes('live'))
    })
  })
}

/** Resolves once `broker` has heard, through the emitter, that a client with this id connected to another node. */
async function announced (broker: Aedes, clientId: string): Promise<void> {
  return new Promise((resolve) => {
    const heard = (packet: { payload: Buffer | string }, cb: () => void): void => {
      cb()
      if (packet.payload.toString() !== clientId) return
      broker.unsubscribe('$SYS/+/new/clients', heard, () => {})
      resolve()
    }
    broker.subscribe('$SYS/+/new/clients', heard, () => {})
  })
}
