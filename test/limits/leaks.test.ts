/**
 * No leaks (docs/behaviour.md §7): a connection that closes at any moment —
 * before its CONNECT, during its password check, right after its CONNACK,
 * in the middle of a packet — leaves no client, listener, timer or Redis
 * subscription behind. The broker runs in this process, on a real Redis, so
 * its tables and this process's timers can be counted.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import mqttPacket from 'mqtt-packet'
import { startRedis, type TestRedis } from '../../harness/redis.js'
import { hashPassword } from '../../src/broker/users.js'
import { connectClient } from '../helpers/broker.js'
import { collect, until, waitFor } from '../helpers/messages.js'
import { connectPacket, rawClient } from '../helpers/raw.js'
import { serverPerTest } from '../helpers/server.js'

let redis: TestRedis
before(async () => { redis = await startRedis({ durable: false }) })
after(async () => { await redis.stop() })
const server = serverPerTest()
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

async function channels (): Promise<string[]> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(redis.port), 'PUBSUB', 'CHANNELS', '$p2p/*'])
  return stdout.split('\n').filter((line) => line !== '').sort()
}

describe('connections that close at any moment', () => {
  it('leave no client, timer or channel subscription behind', async () => {
    const password = await hashPassword('pw')
    const s = await server({ cluster: { redis: redis.url }, users: [{ username: 'u', password }], log: { level: 'warn' } })
    const port = s.addresses.mqtt?.port ?? 0
    const login = { username: 'u', password: 'pw' }
    // the clients that stay, and what the broker holds for them
    const alice = await connectClient(port, 'alice', login)
    const bob = await connectClient(port, 'bob', { ...login, clean: false })
    const got = collect(bob)
    await sleep(500)
    const baseline = { timers: timers(), channels: await channels(), clients: s.broker.connectedClients }

    const hangUps: Array<(i: number) => Promise<void>> = [
      // before its CONNECT
      async () => { (await rawClient({ tcp: port })).destroy() },
      // in the middle of its CONNECT
      async (i) => {
        const raw = await rawClient({ tcp: port })
        raw.send(mqttPacket.generate(connectPacket({ clientId: `half-${i}`, ...login })).subarray(0, 10))
        raw.destroy()
      },
      // during its password check, or just after it, while its session is looked up and recorded
      async (i) => {
        const raw = await rawClient({ tcp: port })
        raw.send(connectPacket({ clientId: `checking-${i}`, clean: i % 2 === 0, ...login }))
        setTimeout(() => { raw.destroy() }, (i * 7) % 120)
      },
      // right after its CONNACK, with a persistent session
      async (i) => {
        const raw = await rawClient({ tcp: port })
        raw.send(connectPacket({ clientId: `leaving-${i}`, clean: false, ...login }))
        await raw.next('connack', 10_000).catch(() => {})
        raw.destroy()
      },
      // in the middle of a PUBLISH to bob
      async (i) => {
        const raw = await rawClient({ tcp: port })
        raw.send(connectPacket({ clientId: `cut-${i}`, ...login }))
        await raw.next('connack', 10_000).catch(() => {})
        const publish = mqttPacket.generate({ cmd: 'publish', topic: 'p2p/bob/cut', payload: Buffer.alloc(1000), qos: 1, messageId: 1, retain: false, dup: false })
        raw.send(publish.subarray(0, 500))
        raw.destroy()
      }
    ]
    for (let round = 0; round < 20; round++) {
      await Promise.all(hangUps.map(async (hangUp, i) => hangUp(round * hangUps.length + i)))
    }
    // every check answered, every bounded wait over
    await until(() => s.broker.connectedClients === baseline.clients, 20_000, 'the clients that stay, only')
    await sleep(2500)
    assert.deepEqual(await channels(), baseline.channels, 'a channel for each client still connected, no other')
    assert.ok(timers() <= baseline.timers + 2, `${timers()} timers, ${baseline.timers} before`)
    assert.equal(Object.keys((s.broker as unknown as { clients: object }).clients).length, baseline.clients)
    // and those who stayed are served
    await alice.publishAsync('p2p/bob/after', 'still here', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got.filter((m) => m.topic === 'cut').length, 0, 'nothing of a cut packet')
  })
})
