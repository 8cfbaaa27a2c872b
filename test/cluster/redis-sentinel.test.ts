/**
 * Broker processes on a Sentinel set (docs/behaviour.md §10), with `--redis
 * redis+sentinel://…/<master name>`: P2P traffic between two nodes, QoS 1,
 * keeps flowing when the master is killed and a replica promoted, and every
 * message a sender was acknowledged reaches its target.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { redisMissing, startSentinelSet, type TestSentinelSet } from '../../harness/redis-sentinel.js'
import { connectClient } from '../helpers/broker.js'
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
    const acked: string[] = []
    let alice: MqttClient = await connectClient(n1.port, 'alice')
    // one message at a time, as a careful sender does: each sent again, on a new connection, until it is acknowledged
    const sendUntilAcked = async (payload: string): Promise<void> => {
      for (let attempt = 0; attempt < 100; attempt++) {
        try {
          await alice.publishAsync('p2p/bob/x', payload, { qos: 1 })
          acked.push(payload)
          return
        } catch {
          alice.end(true)
          await new Promise((resolve) => setTimeout(resolve, 200))
          alice = await connectClient(n1.port, 'alice').catch(() => alice)
        }
      }
      throw new Error(`${payload} never acknowledged`)
    }
    for (let i = 0; i < 50; i++) await sendUntilAcked(`before-${i}`)
    const old = await sentinels.killMaster()
    const sending = (async () => { for (let i = 0; i < 200; i++) await sendUntilAcked(`during-${i}`) })()
    await sentinels.waitForFailover(old)
    await sending
    for (let i = 0; i < 50; i++) await sendUntilAcked(`after-${i}`)
    const received = (): Set<string> => new Set(got.map((m) => m.payload.toString()))
    await until(() => acked.every((p) => received().has(p)), 20_000, 'every acknowledged message at bob')
    assert.equal(acked.length, 300)
    alice.end(true)
  })
})
