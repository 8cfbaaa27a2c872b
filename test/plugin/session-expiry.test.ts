/**
 * session_expiry's clocks (src/plugin/session-expiry.ts): a broker announces
 * its new clients through its emitter, and the announcement of a client
 * that came and went at once may come back after it has left. It must not
 * stop that client's clock.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AedesPublishPacket } from 'aedes'
import { brokerPerTest } from '../helpers/broker.js'
import { until } from '../helpers/messages.js'

const start = brokerPerTest()

describe('session expiry', () => {
  it('ends the session of a client whose own arrival is announced after it left', async () => {
    const b = await start({
      plugin: { limits: { session_expiry: 1 } },
      setup (broker) {
        // an emitter that takes 300 ms to carry the broker's notices, as Redis may under load
        const mq = (broker as unknown as { mq: { emit: (packet: AedesPublishPacket, cb?: () => void) => void } }).mq
        const emit = mq.emit.bind(mq)
        mq.emit = (packet, cb) => {
          if (packet.topic.endsWith('/new/clients')) setTimeout(() => { emit(packet, cb) }, 300)
          else emit(packet, cb)
        }
      }
    })
    const bob = await b.connect('bob', { clean: false })
    await bob.endAsync()
    await until(() => b.plugin.counters.limits.session_expiry === 1, 5000, 'bob\'s session ended')
    const again = await b.connectCollecting('bob', { clean: false })
    assert.equal(again.sessionPresent, false)
  })
})
