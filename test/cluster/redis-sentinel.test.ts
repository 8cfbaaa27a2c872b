/**
 * Broker processes on a Sentinel set (docs/behaviour.md §10), with `--redis
 * redis+sentinel://…/<master name>`: P2P traffic between two nodes, QoS 1,
 * keeps flowing when the master is killed and a replica promoted, and every
 * message a sender was acknowledged reaches its target.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { redisMissing, startSentinelSet, type TestSentinelSet } from '../../harness/redis-sentinel.js'
import { carefulSender } from '../helpers/careful-sender.js'
import { collect, until } from '../helpers/messages.js'
import { brokerProcesses } from '../helpers/processes.js'

const processes = brokerProcesses(after)
let sentinels: TestSentinelSet | undefined
after(async () => { await sentinels?.stop() })

describe('nodes on a Sentinel set', { skip: redisMissing() }, () => {
  it('keeps QoS 1 P2P traffic flowing through a failover, losing nothing acknowledged', { timeout: 90_000 }, async () => {
    sentinels = await startSentinelSet({ replicas: 1, sentinels: 3 })
    const [n1, n2] = [await processes.start('--redis', sentinels.url), await processes.start('--redis', sentinels.url)]
    const bob = await processes.client(n2, 'bob', { clean: false })
    const got = collect(bob)
    const alice = await carefulSender(n1.port, 'alice', 'p2p/bob/x')
    for (let i = 0; i < 50; i++) await alice.send(`before-${i}`)
    const old = await sentinels.killMaster()
    const sending = (async () => { for (let i = 0; i < 200; i++) await alice.send(`during-${i}`) })()
    await sentinels.waitForFailover(old)
    await sending
    for (let i = 0; i < 50; i++) await alice.send(`after-${i}`)
    const received = (): Set<string> => new Set(got.map((m) => m.payload.toString()))
    await until(() => alice.acked.every((p) => received().has(p)), 20_000, 'every acknowledged message at bob')
    assert.equal(alice.acked.length, 300)
    alice.end()
  })
})
