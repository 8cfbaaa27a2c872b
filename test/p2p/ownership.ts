/**
 * A client id belongs to its user (docs/behaviour.md §8): once a user holds
 * an id, by a live connection or a persistent session, no other user may
 * take it over, on any node; and `target_user` rules ask who owns the
 * target, also when it is offline or on another node. The host decides who
 * a client is: here an authenticate hook that lets `<name>` in with the
 * password `pw-<name>`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Aedes } from 'aedes'
import type { IClientOptions } from 'mqtt'
import { connackCode } from '../helpers/broker.js'
import { collect, fence, publishTold, until, waitFor } from '../helpers/messages.js'
import { refusal, told } from '../helpers/protocol.js'
import { nodesPerTest, type Topology } from '../helpers/topology.js'
import type { RuleConfig } from '../../src/index.js'


function passwords (broker: Aedes): void {
  broker.authenticate = (_client, username, password, done) => {
    done(null, username === undefined || password?.toString() === `pw-${username}`)
  }
}

const as = (username: string, options: IClientOptions = {}): IClientOptions => ({ username, password: `pw-${username}`, ...options })

export function ownership (topology: Topology): void {
  describe('client ids belong to their users', () => {
    const start = nodesPerTest(topology)

    for (const where of ['the same node', 'another node'] as const) {
      it(`refuses eve alice's id while alice is connected, on ${where}, and alice keeps her connection`, async () => {
        const t = await start({ setup: passwords })
        const alice = await t.target.connect('alice-phone', as('alice'))
        const got = collect(alice)
        const eveNode = where === 'the same node' ? t.target : t.sender
        assert.equal(await connackCode(eveNode.port, 'alice-phone', as('eve')), refusal(5))
        assert.equal(await connackCode(eveNode.port, 'alice-phone', { clean: false, ...as('eve') }), refusal(5))
        assert.equal(await connackCode(eveNode.port, 'alice-phone'), refusal(5), 'nor without a username')
        const bob = await t.sender.connect('bob', as('bob'))
        await bob.publishAsync('p2p/alice-phone/chat', 'still yours', { qos: 1 })
        await waitFor(got, 1)
        assert.equal(alice.connected, true)
        assert.equal((await fence(bob, alice, got)).length, 1)
      })
    }

    it('refuses eve the id of alice\'s offline session on another node, and leaves its queue to alice', async () => {
      const t = await start({ setup: passwords })
      const alice = await t.target.connect('alice-phone', as('alice', { clean: false }))
      await alice.endAsync()
      const bob = await t.sender.connect('bob', as('bob'))
      await bob.publishAsync('p2p/alice-phone/chat', 'queued for alice', { qos: 1 })
      assert.equal(await connackCode(t.sender.port, 'alice-phone', as('eve', { clean: false })), refusal(5))
      assert.equal(await connackCode(t.target.port, 'alice-phone', as('eve')), refusal(5), 'a clean connect would have ended the session')
      const again = await t.sender.connectCollecting('alice-phone', as('alice', { clean: false }))
      assert.equal(again.sessionPresent, true)
      await waitFor(again.got, 1)
      assert.equal(again.got[0]?.payload.toString(), 'queued for alice')
    })

    it('lets a user take over its own id, from another device or node', async () => {
      const t = await start({ setup: passwords })
      const first = await t.target.connect('alice-phone', as('alice', { clean: false }))
      const second = await t.sender.connectCollecting('alice-phone', as('alice', { clean: false }))
      assert.equal(second.sessionPresent, true)
      await until(() => !first.connected, 5000, 'the first connection closed')
    })

    it('lets a user take an id held by a client without a username: it is nobody\'s', async () => {
      const t = await start({ setup: passwords })
      const anonymous = await t.target.connect('sensor-9', { clean: false })
      const alice = await t.target.connect('sensor-9', as('alice'))
      await until(() => !anonymous.connected, 5000, 'taken over, as MQTT has it')
      // and while alice holds it, it is hers
      assert.equal(await connackCode(t.sender.port, 'sensor-9', { clean: false }), refusal(5))
      assert.equal(alice.connected, true)
    })

    it('lets another user have an id once its clean connection has ended', async () => {
      const t = await start({ setup: passwords })
      const alice = await t.target.connect('shared-kiosk', as('alice'))
      await alice.endAsync()
      // the record of the connection is removed as it closes, on the node it was on and in the store
      await until(() => Object.keys((t.target.broker as unknown as { clients: object }).clients).length === 0, 5000, 'alice gone')
      let code: number | 'closed' = -1
      for (let i = 0; i < 50 && code !== 0; i++) {
        code = await connackCode(t.sender.port, 'shared-kiosk', as('eve'))
        if (code !== 0) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.equal(code, 0)
    })

    it('lets another user have an id once the session that held it was ended by its owner', async () => {
      const t = await start({ setup: passwords })
      const alice = await t.target.connect('kiosk', as('alice', { clean: false }))
      await alice.endAsync()
      // alice ends her own session with a clean connect
      const clean = await t.target.connect('kiosk', as('alice'))
      await clean.endAsync()
      let code: number | 'closed' = -1
      for (let i = 0; i < 50 && code !== 0; i++) {
        code = await connackCode(t.sender.port, 'kiosk', as('eve'))
        if (code !== 0) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.equal(code, 0)
    })
  })

  describe('rules on the target\'s owner (target_user)', () => {
    const start = nodesPerTest(topology)
    const ownDevices: RuleConfig[] = [{ action: 'allow', target_user: '${username}' }, { action: 'deny' }]

    it('lets bob message his own devices, online and offline on another node, and never bob-x\'s bob-x-phone', async () => {
      const t = await start({ setup: passwords, plugin: { rules: ownDevices } })
      const phone = await t.target.connect('bob-x-phone', as('bob-x'))
      const phoneGot = collect(phone)
      const tablet = await t.target.connect('tablet-7', as('bob', { clean: false }))
      await tablet.endAsync()
      const watch = await t.target.connect('watch-1', as('bob'))
      const watchGot = collect(watch)
      const laptop = await t.sender.connect('bob-laptop', as('bob'))
      assert.equal(await publishTold(laptop, 'p2p/bob-x-phone/chat', 'not for bob', { qos: 1 }), told(1, 0x87))
      await laptop.publishAsync('p2p/tablet-7/chat', 'to my tablet', { qos: 1 })
      await laptop.publishAsync('p2p/watch-1/chat', 'to my watch', { qos: 1 })
      await waitFor(watchGot, 1)
      assert.equal(watchGot[0]?.payload.toString(), 'to my watch')
      await until(() => t.counters().dropped.refused === 1, 5000, 'the message to bob-x-phone refused')
      const tabletAgain = await t.sender.connectCollecting('tablet-7', as('bob', { clean: false }))
      await waitFor(tabletAgain.got, 1)
      assert.equal(tabletAgain.got[0]?.payload.toString(), 'to my tablet')
      // bob-x's own device may message its phone
      const other = await t.sender.connect('bob-x-laptop', as('bob-x'))
      await other.publishAsync('p2p/bob-x-phone/chat', 'mine', { qos: 1 })
      await waitFor(phoneGot, 1)
      assert.deepEqual(phoneGot.map((m) => m.payload.toString()), ['mine'])
    })

    it('refuses a target no user owns, and a target nobody holds', async () => {
      const t = await start({ setup: passwords, plugin: { rules: ownDevices } })
      const anonymous = await t.target.connect('sensor-1')
      const got = collect(anonymous)
      const laptop = await t.sender.connect('bob-laptop', as('bob'))
      assert.equal(await publishTold(laptop, 'p2p/sensor-1/x', 'no owner', { qos: 1 }), told(1, 0x87))
      // refused before anything else is asked: the sender learns nothing of whether the target exists
      assert.equal(await publishTold(laptop, 'p2p/nobody/x', 'nobody', { qos: 1 }), told(1, 0x87))
      await until(() => t.counters().dropped.refused === 2, 5000, 'both refused')
      assert.equal(got.length, 0)
    })
  })
}
