/**
 * Identity on the broker people run (docs/behaviour.md §8): which user may
 * use which client id, passwords that do not tell which users exist, and
 * a reload that takes a user away ends its connections. Ownership of ids
 * between users, and target_user, run on every topology in test/p2p/.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { IClientOptions } from 'mqtt'
import type { IConnackPacket } from 'mqtt-packet'
import { loadSettings, type Settings } from '../../src/broker/settings.js'
import { hashPassword } from '../../src/broker/users.js'
import { connackCode, connectClient, connectCollectingAt } from '../helpers/broker.js'
import { closed, collect, fence, waitFor } from '../helpers/messages.js'
import { connectPacket, rawClient } from '../helpers/raw.js'
import { serverPerTest, testSettings } from '../helpers/server.js'

const server = serverPerTest()
// one scrypt hash per password for the whole file: each costs tens of ms
const hashes = new Map<string, Promise<string>>()
const hash = async (password: string): Promise<string> => {
  if (!hashes.has(password)) hashes.set(password, hashPassword(password))
  return hashes.get(password) as Promise<string>
}
const as = (username: string, options: IClientOptions = {}): IClientOptions => ({ username, password: `pw-${username}`, ...options })

async function users (...list: Array<{ username: string, client_ids?: string[] }>): Promise<Settings['users']> {
  return Promise.all(list.map(async (u) => ({ ...u, password: await hash(`pw-${u.username}`) })))
}

const NOT_AUTHORIZED = 5

describe('client id patterns', () => {
  it('reserves the ids a user\'s patterns match: eve cannot connect as alice-phone, alice can, and open ids stay open', async () => {
    const s = await server({ users: await users({ username: 'alice', client_ids: ['${username}-*'] }, { username: 'eve' }) })
    const port = s.addresses.mqtt?.port ?? 0
    assert.equal(await connackCode(port, 'alice-phone', as('eve')), NOT_AUTHORIZED)
    assert.equal(await connackCode(port, 'alice-phone', as('alice')), 0)
    assert.equal(await connackCode(port, 'lobby-screen', as('eve')), 0, 'an id no pattern matches is open')
    assert.equal(await connackCode(port, 'lobby-screen', as('alice')), 0, 'to every user')
  })

  it('narrows every user to its own ids with [auth] client_ids', async () => {
    const s = await server({
      users: await users({ username: 'alice' }, { username: 'eve' }, { username: 'ops', client_ids: ['console-*'] }),
      auth: { client_ids: ['${username}', '${username}-*'] }
    })
    const port = s.addresses.mqtt?.port ?? 0
    assert.equal(await connackCode(port, 'alice-phone', as('eve')), NOT_AUTHORIZED)
    assert.equal(await connackCode(port, 'lobby-screen', as('eve')), NOT_AUTHORIZED, 'an id nobody\'s patterns match is nobody\'s')
    assert.equal(await connackCode(port, 'eve', as('eve')), 0)
    assert.equal(await connackCode(port, 'eve-2', as('eve')), 0)
    // a rule on the sender's id means something only when the id is bound: no user picks console-1 but ops
    assert.equal(await connackCode(port, 'console-1', as('eve')), NOT_AUTHORIZED)
    assert.equal(await connackCode(port, 'console-1', as('ops')), 0)
    assert.equal(await connackCode(port, 'ops-1', as('ops')), NOT_AUTHORIZED, 'a user with its own list does not get the default')
  })

  it('gives an id to the user whose pattern is the most specific: bob cannot be bob-x or bob-x-phone, ids of user bob-x', async () => {
    const s = await server({ users: await users({ username: 'bob' }, { username: 'bob-x' }), auth: { client_ids: ['${username}', '${username}-*'] } })
    const port = s.addresses.mqtt?.port ?? 0
    assert.equal(await connackCode(port, 'bob-x', as('bob')), NOT_AUTHORIZED)
    assert.equal(await connackCode(port, 'bob-x-phone', as('bob')), NOT_AUTHORIZED)
    assert.equal(await connackCode(port, 'bob-x-phone', as('bob-x')), 0)
    assert.equal(await connackCode(port, 'bob-phone', as('bob')), 0)
    assert.equal(await connackCode(port, 'bob-phone', as('bob-x')), NOT_AUTHORIZED)
  })

  it('takes a user name with * in it literally', async () => {
    const s = await server({ users: await users({ username: 'a*' }, { username: 'eve' }), auth: { client_ids: ['${username}-*'] } })
    const port = s.addresses.mqtt?.port ?? 0
    assert.equal(await connackCode(port, 'a*-1', as('a*')), 0)
    assert.equal(await connackCode(port, 'abc-1', as('a*')), NOT_AUTHORIZED)
  })

  it('answers a wrong password with 4 whatever the id, so ids do not tell who holds them', async () => {
    const s = await server({ users: await users({ username: 'alice', client_ids: ['alice-*'] }, { username: 'eve' }) })
    const port = s.addresses.mqtt?.port ?? 0
    assert.equal(await connackCode(port, 'alice-phone', { username: 'eve', password: 'wrong' }), 4)
    assert.equal(await connackCode(port, 'open-id', { username: 'eve', password: 'wrong' }), 4)
  })
})

describe('passwords', () => {
  it('takes as long to refuse an unknown user as a known one with a wrong password, so users cannot be listed', async () => {
    const s = await server({ users: await users({ username: 'alice' }) })
    const port = s.addresses.mqtt?.port ?? 0
    const answerMs = async (username: string): Promise<number> => {
      const raw = await rawClient({ tcp: port })
      const started = performance.now()
      raw.send(connectPacket({ clientId: `guess-${username}`, username, password: 'wrong' }))
      const connack = await raw.next('connack') as IConnackPacket
      const ms = performance.now() - started
      raw.destroy()
      assert.equal(connack.returnCode, 4)
      return ms
    }
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
    const known: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 7; i++) {
      known.push(await answerMs('alice'))
      unknown.push(await answerMs(`nobody-${i}`))
    }
    // without the decoy check an unknown name was answered 60 times sooner; the margin is wide
    assert.ok(median(unknown) > median(known) / 3, `unknown ${median(unknown).toFixed(1)} ms, known ${median(known).toFixed(1)} ms`)
  })
})

describe('reload', () => {
  it('disconnects a user the reload removes, and a client whose id is no longer its user\'s, and no one else', async () => {
    const before = await users({ username: 'alice' }, { username: 'bob' }, { username: 'carol' })
    const after = await users({ username: 'alice' }, { username: 'carol', client_ids: ['carol-phone*'] })
    const s = await server({ users: before }, async () => testSettings({ users: after, auth: { client_ids: ['${username}-*'] } }))
    const port = s.addresses.mqtt?.port ?? 0
    const alice = await connectClient(port, 'alice-1', as('alice'))
    const bob = await connectClient(port, 'bob-1', as('bob'))
    const carolOld = await connectClient(port, 'carol-laptop', as('carol'))
    const carolNew = await connectClient(port, 'carol-phone', as('carol'))
    const bobGone = closed(bob)
    const carolOldGone = closed(carolOld)
    await s.reload()
    await bobGone
    await carolOldGone
    assert.equal(alice.connected, true)
    assert.equal(carolNew.connected, true)
    assert.equal(await connackCode(port, 'bob-2', as('bob')), 4, 'and bob cannot come back')
    const got = collect(carolNew)
    await alice.publishAsync('p2p/carol-phone/still', 'here', { qos: 1 })
    await waitFor(got, 1)
    await alice.endAsync()
    await carolNew.endAsync()
  })
})

describe('the shipped multi-user example (config/example.toml)', () => {
  it('lets each user message its own devices, ops message anyone, and nobody take another user\'s ids', async () => {
    const example = await loadSettings(new URL('../../../config/example.toml', import.meta.url).pathname)
    const s = await server({ ...example, listeners: { ...example.listeners, port: 0 }, admin: { ...example.admin, port: undefined }, log: { level: 'silent' } })
    const port = s.addresses.mqtt?.port ?? 0
    const login = (user: string): IClientOptions => ({ username: user, password: `example-${user}` })
    assert.equal(await connackCode(port, 'alice-phone', login('bob')), NOT_AUTHORIZED)
    assert.equal(await connackCode(port, 'console-1', login('bob')), NOT_AUTHORIZED)
    const phone = await connectClient(port, 'alice-phone', login('alice'))
    const got = collect(phone)
    const laptop = await connectClient(port, 'alice', login('alice'))
    const bob = await connectClient(port, 'bob-laptop', login('bob'))
    const ops = await connectClient(port, 'console-1', login('ops'))
    await bob.publishAsync('p2p/alice-phone/chat', 'from bob', { qos: 1 })
    await laptop.publishAsync('p2p/alice-phone/chat', 'from my laptop', { qos: 1 })
    await ops.publishAsync('p2p/alice-phone/chat', 'from ops', { qos: 1 })
    await waitFor(got, 2)
    assert.equal(s.plugin.counters.dropped.refused, 1, 'bob\'s, at once')
    assert.deepEqual((await fence(laptop, phone, got)).map((m) => m.payload.toString()), ['from my laptop', 'from ops'])
    for (const c of [phone, laptop, bob, ops]) await c.endAsync()
  })
})

describe('ownership on the broker', () => {
  it('rests on checked usernames only: without [[users]], a claimed username does not lock a device out of its id', async () => {
    const s = await server({})
    const port = s.addresses.mqtt?.port ?? 0
    const squatter = await connectClient(port, 'lamp-7', { username: 'mallory', clean: false })
    await squatter.endAsync()
    assert.equal(await connackCode(port, 'lamp-7', { clean: false }), 0, 'the device takes its id back')
    assert.equal(await connackCode(port, 'lamp-7', { username: 'dev' }), 0)
  })

  it('drops what was queued for a removed user instead of handing it to whoever takes the id next', async () => {
    const before = await users({ username: 'zed' }, { username: 'eve' }, { username: 'alice' })
    const after = await users({ username: 'eve' }, { username: 'alice' })
    const s = await server({ users: before }, async () => testSettings({ users: after }))
    const port = s.addresses.mqtt?.port ?? 0
    const zed = await connectClient(port, 'zed-phone', as('zed', { clean: false }))
    await zed.endAsync()
    const alice = await connectClient(port, 'alice-1', as('alice'))
    await alice.publishAsync('p2p/zed-phone/secret', 'for zed only', { qos: 1 })
    await s.reload()
    const eve = await connectCollectingAt(port, 'zed-phone', as('eve', { clean: false }))
    assert.equal(eve.sessionPresent, false, 'zed\'s session ended with him')
    await alice.publishAsync('p2p/zed-phone/now', 'to whoever holds it now', { qos: 1 })
    await waitFor(eve.got, 1)
    assert.deepEqual(eve.got.map((m) => m.payload.toString()), ['to whoever holds it now'])
    await eve.client.endAsync()
    await alice.endAsync()
  })

  it('gives an id a reload moved from one user to another to the new one', async () => {
    const before = await users({ username: 'alice', client_ids: ['kiosk-*'] }, { username: 'bob' })
    const after = await users({ username: 'alice' }, { username: 'bob', client_ids: ['kiosk-*'] })
    const s = await server({ users: before }, async () => testSettings({ users: after }))
    const port = s.addresses.mqtt?.port ?? 0
    const kiosk = await connectClient(port, 'kiosk-1', as('alice', { clean: false }))
    await kiosk.endAsync()
    assert.equal(await connackCode(port, 'kiosk-1', as('bob')), NOT_AUTHORIZED)
    await s.reload()
    assert.equal(await connackCode(port, 'kiosk-1', as('bob', { clean: false })), 0)
    assert.equal(await connackCode(port, 'kiosk-1', as('alice')), NOT_AUTHORIZED)
  })

  it('lets devices back onto their ids, queue and all, when a reload turns passwords off', async () => {
    const s = await server({ users: await users({ username: 'lamp' }) }, async () => testSettings({}))
    const port = s.addresses.mqtt?.port ?? 0
    const lamp = await connectClient(port, 'lamp-7', as('lamp', { clean: false }))
    await lamp.endAsync()
    const sender = await connectClient(port, 'switch', as('lamp'))
    await sender.publishAsync('p2p/lamp-7/on', '1', { qos: 1 })
    await sender.endAsync()
    await s.reload()
    const back = await connectCollectingAt(port, 'lamp-7', { clean: false })
    assert.equal(back.sessionPresent, true)
    await waitFor(back.got, 1)
    await back.client.endAsync()
  })

  it('frees the ids of a user the reload removed: its session no longer locks them', async () => {
    const before = await users({ username: 'alice' }, { username: 'eve' })
    const after = await users({ username: 'alice' })
    const s = await server({ users: before }, async () => testSettings({ users: after }))
    const port = s.addresses.mqtt?.port ?? 0
    const eve = await connectClient(port, 'alice-phone', as('eve', { clean: false }))
    await eve.endAsync()
    assert.equal(await connackCode(port, 'alice-phone', as('alice')), NOT_AUTHORIZED, 'eve holds it while she is a user')
    await s.reload()
    assert.equal(await connackCode(port, 'alice-phone', as('alice')), 0)
  })
})
