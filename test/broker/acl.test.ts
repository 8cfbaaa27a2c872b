/**
 * The topic ACL (`[[acl]]`, docs/behaviour.md §8) against the full broker
 * with real MQTT clients: each test is an attack it stops.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { IClientOptions, MqttClient } from 'mqtt'
import type { AclEntry } from '../../src/broker/acl.js'
import { covers, matchesTopic, overlaps } from '../../src/broker/topic-filters.js'
import { hashPassword } from '../../src/broker/users.js'
import { connectClient } from '../helpers/broker.js'
import { closed, collect, fence, until, waitFor } from '../helpers/messages.js'
import { serverPerTest, testSettings, type TestServer } from '../helpers/server.js'

const server = serverPerTest()
// scrypt is slow on purpose: one hash serves every user of every test
const hash = hashPassword('pw')
const REFUSED = 128
// what fence() needs: every client may use the fence topic
const FENCE: AclEntry = { action: 'allow', access: 'both', topic: 'fence' }

async function users (...names: string[]): Promise<Array<{ username: string, password: string }>> {
  const password = await hash
  return names.map((username) => ({ username, password }))
}

function port (s: TestServer): number {
  return s.addresses.mqtt?.port ?? 0
}

async function login (s: TestServer, clientId: string, username?: string, options: IClientOptions = {}): Promise<MqttClient> {
  return connectClient(port(s), clientId, username === undefined ? options : { username, password: 'pw', ...options })
}

/** The QoS granted to one filter: 0-2, or 128 when refused. */
async function granted (client: MqttClient, filter: string): Promise<number> {
  try {
    const [grant] = await client.subscribeAsync(filter, { qos: 0 })
    return grant?.qos ?? -1
  } catch (err) {
    // MQTT.js rejects a SUBACK that refuses, with the SUBACK on the error
    const code = (err as { packet?: { granted?: unknown[] } }).packet?.granted?.[0]
    if (typeof code !== 'number') throw err
    return code
  }
}

async function denied (s: TestServer, action: string): Promise<number> {
  const metric = await s.metrics.getSingleMetric('mqtt_acl_denied_total')?.get()
  return metric?.values.find((v) => v.labels.action === action)?.value ?? 0
}

describe('topic ACL', () => {
  it('is open with no entries, but a client still cannot publish as the broker on $SYS/', async () => {
    const s = await server()
    const reader = await login(s, 'reader')
    const got = collect(reader)
    assert.equal(await granted(reader, '#'), 0)
    const writer = await login(s, 'writer')
    await writer.publishAsync('any/topic', 'x', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, 'any/topic')
    writer.publish('$SYS/fake/heartbeat', 'x')
    await closed(writer)
    assert.equal(await denied(s, 'publish'), 0)
  })

  it('keeps alice out of devices/bob/# when entries allow devices/${username}/#', async () => {
    const s = await server({
      users: await users('alice', 'bob'),
      acl: [{ action: 'allow', access: 'both', topic: 'devices/${username}/#' }, FENCE]
    })
    const alice = await login(s, 'alice-1', 'alice')
    const bob = await login(s, 'bob-1', 'bob')
    const got = collect(alice)
    assert.equal(await granted(alice, 'devices/alice/#'), 0)
    assert.equal(await granted(alice, 'devices/bob/#'), REFUSED)
    // wider than her own: it would match bob's topics too
    assert.equal(await granted(alice, 'devices/+/temp'), REFUSED)
    assert.equal(await granted(alice, 'devices/#'), REFUSED)
    await bob.publishAsync('devices/bob/temp', '21', { qos: 1 })
    bob.publish('devices/alice/temp', '20', { qos: 1 })
    await closed(bob)
    const helper = await login(s, 'bob-2', 'bob')
    assert.deepEqual(await fence(helper, alice, got), [])
    assert.ok(alice.connected, 'a refused SUBSCRIBE keeps the connection')
    assert.equal(await denied(s, 'subscribe'), 3)
  })

  it('closes the $SYS leak of every client id, unless an entry allows $SYS/#', async () => {
    const open = await server()
    const snoop = await login(open, 'snoop')
    const seen = collect(snoop)
    assert.equal(await granted(snoop, '$SYS/#'), 0)
    await login(open, 'victim')
    await until(() => seen.some((m) => m.topic.endsWith('/new/clients') && m.payload.toString() === 'victim'), 5000, 'the leak without an ACL')
    await open.close()

    const s = await server({
      users: await users('eve', 'ops', 'victim'),
      acl: [{ action: 'allow', access: 'subscribe', topic: '$SYS/#', username: 'ops' }, { action: 'allow', access: 'both', topic: '#' }]
    })
    const eve = await login(s, 'eve', 'eve')
    const ops = await login(s, 'ops', 'ops')
    const eveGot = collect(eve)
    const opsGot = collect(ops)
    assert.equal(await granted(eve, '$SYS/#'), REFUSED)
    assert.equal(await granted(eve, '#'), 0)
    assert.equal(await granted(ops, '$SYS/#'), 0)
    const victim = await login(s, 'victim', 'victim')
    await until(() => opsGot.some((m) => m.topic.endsWith('/new/clients') && m.payload.toString() === 'victim'), 5000, 'ops seeing $SYS')
    await victim.publishAsync('after', 'x', { qos: 1 })
    await waitFor(eveGot, 1)
    assert.deepEqual(eveGot.map((m) => m.topic), ['after'])
  })

  // only ops may raise alerts; anyone may read them
  const alerts = async (): Promise<TestServer> => server({
    users: await users('ops', 'eve', 'reader'),
    acl: [{ action: 'allow', access: 'publish', topic: 'alerts/#', username: 'ops' }, { action: 'allow', access: 'subscribe', topic: 'alerts/#' }, FENCE]
  })

  it('does not deliver a publish the ACL refuses to a reader allowed to read it', async () => {
    const s = await alerts()
    const reader = await login(s, 'reader', 'reader')
    const got = collect(reader)
    assert.equal(await granted(reader, 'alerts/#'), 0)
    const eve = await login(s, 'eve', 'eve')
    eve.publish('alerts/fire', 'fake', { qos: 1 })
    await closed(eve)
    const ops = await login(s, 'ops', 'ops')
    await ops.publishAsync('alerts/real', 'real', { qos: 1 })
    assert.deepEqual((await fence(ops, reader, got)).map((m) => m.topic), ['alerts/real'])
    assert.equal(await denied(s, 'publish'), 1)
    const line = s.logs.find((l) => l.msg === 'topic ACL refused a publish')
    assert.deepEqual([line?.action, line?.clientId, line?.username, line?.topic], ['publish', 'eve', 'eve', 'alerts/fire'])
  })

  it('judges a will as a publish by its client: a refused one is not sent', async () => {
    const s = await alerts()
    const reader = await login(s, 'reader', 'reader')
    const got = collect(reader)
    await reader.subscribeAsync('alerts/#')
    const eve = await login(s, 'eve', 'eve', { will: { topic: 'alerts/fire', payload: Buffer.from('fake'), qos: 1, retain: false } })
    // gone without DISCONNECT, so Aedes publishes the will
    eve.stream.destroy()
    await until(() => s.logs.some((l) => l.msg === 'topic ACL refused a publish' && l.topic === 'alerts/fire'), 5000, 'the will refused')
    const ops = await login(s, 'ops', 'ops')
    assert.deepEqual(await fence(ops, reader, got), [])
  })

  it('does not let a client id "#", "+" or "$SYS" widen ${clientid}', async () => {
    const s = await server({
      acl: [{ action: 'allow', access: 'both', topic: 'devices/${clientid}/#' }, { action: 'allow', access: 'subscribe', topic: '${clientid}/#' }, FENCE]
    })
    const bob = await login(s, 'bob')
    const got = collect(bob)
    assert.equal(await granted(bob, 'devices/bob/#'), 0)
    // devices/#/# and devices/+/# would cover every device
    const hash = await login(s, '#')
    assert.equal(await granted(hash, 'devices/#'), REFUSED)
    const plus = await login(s, '+')
    assert.equal(await granted(plus, 'devices/+/#'), REFUSED)
    // ${clientid}/# would be $SYS/#
    const sys = await login(s, '$SYS')
    assert.equal(await granted(sys, '$SYS/#'), REFUSED)
    hash.publish('devices/bob/cmd', 'unlock', { qos: 1 })
    await closed(hash)
    const other = await login(s, 'other')
    assert.deepEqual(await fence(other, bob, got), [])
  })

  it('lets no client id slip past a deny entry by holding a "/": the entry takes the id as it is, and denies nothing else', async () => {
    const s = await server({
      acl: [{ action: 'deny', access: 'publish', topic: 'devices/${clientid}/config' }, { action: 'allow', access: 'both', topic: '#' }]
    })
    const reader = await login(s, 'reader')
    const got = collect(reader)
    assert.equal(await granted(reader, 'devices/#'), 0)
    // devices/a/b/config is what a device "a/b" may not write; with the id filled in, the entry would not match it
    const slash = await login(s, 'a/b')
    await slash.publishAsync('weather/today', 'sunny', { qos: 1 })
    slash.publish('devices/a/b/config', 'overwritten', { qos: 1 })
    await closed(slash)
    const ok = await login(s, 'dev1')
    await ok.publishAsync('devices/dev2/config', 'another device\'s: not denied by this entry', { qos: 1 })
    assert.deepEqual((await fence(ok, reader, got)).map((m) => m.topic), ['devices/dev2/config'])
    assert.equal(await denied(s, 'publish'), 1)
  })

  it('refuses every filter that overlaps a deny entry before an allow one, so # cannot read secret/', async () => {
    const s = await server({
      acl: [{ action: 'deny', access: 'subscribe', topic: 'secret/#' }, { action: 'allow', access: 'both', topic: '#' }]
    })
    const eve = await login(s, 'eve')
    const got = collect(eve)
    for (const filter of ['#', 'secret/#', '+/key', 'secret/+']) assert.equal(await granted(eve, filter), REFUSED, filter)
    assert.equal(await granted(eve, 'public/#'), 0)
    const owner = await login(s, 'owner')
    await owner.publishAsync('secret/key', 'k', { qos: 1 })
    await owner.publishAsync('public/news', 'n', { qos: 1 })
    await waitFor(got, 1)
    assert.deepEqual(got.map((m) => m.topic), ['public/news'])
  })

  it('never matches a username entry for a client without a verified username, even username = "*"', async () => {
    const s = await server({ acl: [{ action: 'allow', access: 'both', topic: '#', username: '*' }] })
    const anonymous = await login(s, 'anonymous')
    assert.equal(await granted(anonymous, '#'), REFUSED)
    // without [[users]] a username is only a claim: the ACL does not believe it
    const claims = await connectClient(port(s), 'claims', { username: 'ops', password: 'anything' })
    assert.equal(await granted(claims, '#'), REFUSED)
  })

  it('lets the first matching entry decide', async () => {
    const mallory: AclEntry = { action: 'deny', access: 'publish', topic: 'alerts/#', clientid: 'mallory*' }
    const everyone: AclEntry = { action: 'allow', access: 'both', topic: '#' }
    const denyFirst = await server({ acl: [mallory, everyone] })
    const m1 = await login(denyFirst, 'mallory-1')
    m1.publish('alerts/x', 'x', { qos: 1 })
    await closed(m1)
    await denyFirst.close()

    const allowFirst = await server({ acl: [everyone, mallory] })
    const m2 = await login(allowFirst, 'mallory-2')
    await m2.publishAsync('alerts/x', 'x', { qos: 1 })
    assert.ok(m2.connected)
  })

  it('applies entries added by a reload to the next SUBSCRIBE and PUBLISH', async () => {
    const before: AclEntry[] = [{ action: 'allow', access: 'subscribe', topic: 'news/#' }]
    const after: AclEntry[] = [...before, { action: 'allow', access: 'both', topic: 'weather/#' }]
    const s = await server({ acl: before }, async () => testSettings({ acl: after }))
    const reader = await login(s, 'reader')
    const got = collect(reader)
    assert.equal(await granted(reader, 'weather/#'), REFUSED)
    const early = await login(s, 'early')
    early.publish('weather/today', 'rain', { qos: 1 })
    await closed(early)
    await s.reload()
    assert.ok(s.logs.some((l) => l.msg === 'config reloaded' && l.acl === 2))
    assert.equal(await granted(reader, 'weather/#'), 0)
    const late = await login(s, 'late')
    await late.publishAsync('weather/today', 'sun', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.payload.toString(), 'sun')
  })

  it('sees a P2P publish as published: p2p/bob/chat needs an entry allowing it', async () => {
    const s = await server({ acl: [{ action: 'allow', access: 'publish', topic: 'p2p/#' }, FENCE] })
    const bob = await login(s, 'bob')
    const got = collect(bob)
    const alice = await login(s, 'alice')
    await alice.publishAsync('p2p/bob/chat', 'hi', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, 'chat')
    await s.close()

    const closedToP2P = await server({ acl: [{ action: 'allow', access: 'both', topic: 'chat' }, FENCE] })
    const bob2 = await login(closedToP2P, 'bob')
    const got2 = collect(bob2)
    const alice2 = await login(closedToP2P, 'alice')
    alice2.publish('p2p/bob/chat', 'hi', { qos: 1 })
    await closed(alice2)
    const carol = await login(closedToP2P, 'carol')
    assert.deepEqual(await fence(carol, bob2, got2), [])
    assert.equal(closedToP2P.plugin.counters.received, 0)
  })
})

describe('topic ACL filters', () => {
  const split = (filter: string): string[] => filter.split('/')

  it('matches topics by MQTT rules, wildcards never reaching $ topics', () => {
    const cases: Array<[string, string, boolean]> = [
      ['a/#', 'a', true], ['a/#', 'a/b/c', true], ['a/+', 'a/b', true], ['a/+', 'a', false], ['a/+', 'a/', true],
      ['a/b', 'a/bc', false], ['a/b', 'a/b/c', false], ['+/+', '/x', true], ['#', '$SYS/x', false],
      ['+/x', '$SYS/x', false], ['$SYS/#', '$SYS/x', true]
    ]
    for (const [filter, topic, want] of cases) assert.equal(matchesTopic(split(filter), topic), want, `${filter} ~ ${topic}`)
  })

  it('lets an allow entry cover a filter only if every topic it matches is the entry\'s', () => {
    const cases: Array<[string, string, boolean]> = [
      ['#', '#', true], ['a/#', 'a', true], ['a/#', 'a/#', true], ['a/+', 'a/#', false], ['a/+', 'a/+', true],
      ['a/b', 'a/+', false], ['+/b', 'x/b', true], ['a', 'a/#', false], ['#', '$SYS/#', false], ['+/#', '$x/y', false],
      ['$SYS/#', '$SYS/+/new/clients', true]
    ]
    for (const [entry, filter, want] of cases) assert.equal(covers(split(entry), split(filter)), want, `${entry} covers ${filter}`)
  })

  it('lets a deny entry catch any filter that shares a topic with it', () => {
    const cases: Array<[string, string, boolean]> = [
      ['secret/#', '#', true], ['secret/#', '+/x', true], ['secret/#', 'public/#', false], ['a/b/c', 'a/+', false],
      ['a/b/#', 'a/b', true], ['a/+', '+/b', true], ['$SYS/#', '#', false], ['#', '$SYS/#', false]
    ]
    for (const [entry, filter, want] of cases) assert.equal(overlaps(split(entry), split(filter)), want, `${entry} overlaps ${filter}`)
  })
})
