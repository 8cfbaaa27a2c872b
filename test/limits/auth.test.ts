/**
 * max_auth_pending (docs/behaviour.md §7): a flood of wrong passwords
 * neither grows what the broker holds nor keeps it from answering: past the
 * bound, a CONNECT is answered CONNACK 3 at once, and a client that tries
 * again once the flood is answered gets in.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { IConnackPacket } from 'mqtt-packet'
import { hashPassword } from '../../src/broker/users.js'
import { connectClient } from '../helpers/broker.js'
import { connectPacket, rawClient } from '../helpers/raw.js'
import { limitHits, serverPerTest } from '../helpers/server.js'

const server = serverPerTest()

describe('max_auth_pending', () => {
  it('answers every CONNECT of a wrong-password flood, the ones past the bound with CONNACK 3 at once', async () => {
    const s = await server({ users: [{ username: 'alice', password: await hashPassword('right') }], limits: { max_auth_pending: 4 } })
    const port = s.addresses.mqtt?.port ?? 0
    const flood = await Promise.all(Array.from({ length: 40 }, async () => rawClient({ tcp: port })))
    flood.forEach((raw, i) => { raw.send(connectPacket({ clientId: `guess-${i}`, username: i % 2 === 0 ? 'alice' : 'nobody', password: 'wrong' })) })
    const codes = await Promise.all(flood.map(async (raw) => ((await raw.next('connack', 20_000)) as IConnackPacket).returnCode))
    const refused = codes.filter((c) => c === 3).length
    assert.ok(refused > 0, 'some were past the bound')
    assert.equal(codes.filter((c) => c === 4).length + refused, 40, 'the rest: bad user name or password')
    assert.equal(await limitHits(s, 'max_auth_pending'), refused)
    for (const raw of flood) raw.destroy()
    const alice = await connectClient(port, 'alice-1', { username: 'alice', password: 'right' })
    assert.equal(alice.connected, true)
    await alice.endAsync()
  })

  it('leaves a flood from a few addresses only part of the checks, so a client elsewhere gets in at once', async () => {
    const s = await server({ users: [{ username: 'alice', password: await hashPassword('right') }], limits: { max_auth_pending: 8 } })
    const port = s.addresses.mqtt?.port ?? 0
    const places = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']
    const flood = await Promise.all(Array.from({ length: 40 }, async (_, i) => rawClient({ tcp: port, from: places[i % places.length] })))
    flood.forEach((raw, i) => { raw.send(connectPacket({ clientId: `guess-${i}`, username: 'nobody', password: 'wrong' })) })
    const alice = await rawClient({ tcp: port, from: '127.0.0.1' })
    alice.send(connectPacket({ clientId: 'alice-1', username: 'alice', password: 'right' }))
    assert.equal(((await alice.next('connack')) as IConnackPacket).returnCode, 0)
    const codes = await Promise.all(flood.map(async (raw) => ((await raw.next('connack', 20_000)) as IConnackPacket).returnCode))
    // most of the flood was refused at once
    assert.ok(codes.filter((c) => c === 3).length >= 20, `${codes.filter((c) => c === 3).length} of 40 refused at once`)
    assert.equal(codes.filter((c) => c === 3 || c === 4).length, 40)
    for (const raw of [...flood, alice]) raw.destroy()
  })

  it('lets no check run for a client past the bound, whatever its name', async () => {
    const s = await server({ users: [{ username: 'alice', password: await hashPassword('right') }], limits: { max_auth_pending: 1 } })
    const port = s.addresses.mqtt?.port ?? 0
    // an unknown user costs a check as a known one does, so it takes the only slot
    const first = await rawClient({ tcp: port })
    first.send(connectPacket({ clientId: 'x', username: 'nobody', password: 'wrong' }))
    const second = await rawClient({ tcp: port })
    second.send(connectPacket({ clientId: 'y', username: 'alice', password: 'right' }))
    assert.equal(((await second.next('connack')) as IConnackPacket).returnCode, 3)
    assert.equal(((await first.next('connack')) as IConnackPacket).returnCode, 4)
    first.destroy()
    second.destroy()
  })
})
