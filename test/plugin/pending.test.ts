/** What a catch-up remembers of what it sent (src/plugin/pending.ts). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Sent } from '../../src/plugin/sent.js'
import { brokerPerTest } from '../helpers/broker.js'
import { until } from '../helpers/messages.js'
import { connectPacket, rawClient } from '../helpers/raw.js'

describe('the record of what a catch-up sent', () => {
  it('stays bounded for a reader that never catches up, and keeps the newest keys', () => {
    const sent = new Sent(100)
    for (let i = 0; i < 100_000; i++) sent.add(`broker:${i}`)
    assert.ok(sent.size <= 200, `${sent.size} keys`)
    assert.equal(sent.has('broker:99999'), true)
    assert.equal(sent.has('broker:99950'), true)
    assert.equal(sent.has('broker:0'), false)
  })

  it('forgets a key once the live path has seen it', () => {
    const sent = new Sent(100)
    sent.add('b:1')
    assert.equal(sent.delete('b:1'), true)
    assert.equal(sent.delete('b:1'), false)
  })
})

describe('a session whose subscriptions are restored before its CONNACK', () => {
  const start = brokerPerTest()

  it('gets nothing before its CONNACK, and what came meanwhile after it', async () => {
    let publishing: (() => Promise<void>) | undefined
    const b = await start({
      setup (broker) {
        // the session is restored, then its store takes 200 ms before the CONNACK: a message comes meanwhile
        const persistence = (broker as unknown as { persistence: Record<string, (...args: unknown[]) => Promise<unknown>> }).persistence
        const delWill = persistence.delWill?.bind(persistence)
        persistence.delWill = async (...args) => {
          const result = await delWill?.(...args)
          await publishing?.()
          await new Promise((resolve) => setTimeout(resolve, 200))
          return result
        }
      }
    })
    const first = await b.connect('reader', { clean: false })
    await first.subscribeAsync('news', { qos: 0 })
    await first.endAsync()
    const alice = await b.connect('alice')
    publishing = async () => {
      publishing = undefined
      await alice.publishAsync('news', 'while connecting', { qos: 0 })
    }
    const raw = await rawClient({ tcp: b.port })
    raw.send(connectPacket({ clientId: 'reader', clean: false }))
    await raw.next('connack')
    await until(() => raw.packets.some((p) => p.cmd === 'publish'), 2000, 'the message after the CONNACK')
    assert.deepEqual(raw.packets.map((p) => p.cmd).slice(0, 2), ['connack', 'publish'])
    raw.destroy()
  })
})
