// The envelope a P2P message travels in between nodes and waits in while queued (docs/architecture.md)
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { unwrapPayload, wrapPayload } from '../../src/plugin/channel.js'
import { headersOf, propertiesFor } from '../../src/plugin/headers.js'

const properties = {
  payloadFormatIndicator: true,
  contentType: 'text/plain',
  responseTopic: 'p2p/alice/answers',
  correlationData: Buffer.from([0, 255, 7]),
  userProperties: { app: 'démo', tags: ['a', 'b'] },
  messageExpiryInterval: 60,
  topicAlias: 3,
  subscriptionIdentifier: 9
}

describe('the envelope', () => {
  it('carries the topic, payload, sender, expiry and the properties a target may receive', () => {
    const headers = headersOf('alice', properties)
    const inner = unwrapPayload(wrapPayload('chat/ü', Buffer.from('hi'), headers, 1_700_000_000_000))
    assert.ok(inner !== null)
    assert.equal(inner.topic, 'chat/ü')
    assert.deepEqual(inner.payload, Buffer.from('hi'))
    assert.equal(inner.sentAt, 1_700_000_000_000)
    assert.equal(inner.headers.sender, 'alice')
    assert.equal(inner.headers.expiresAt, headers.expiresAt)
    // never the connection's own: alias and subscription identifier; the expiry travels as a time
    assert.deepEqual(inner.headers.properties, {
      payloadFormatIndicator: true,
      contentType: 'text/plain',
      responseTopic: 'p2p/alice/answers',
      correlationData: Buffer.from([0, 255, 7]),
      userProperties: { app: 'démo', tags: ['a', 'b'] }
    })
  })

  it('stamps the sender over one the sender wrote, and counts the expiry down', () => {
    const headers = headersOf('eve', { userProperties: { 'p2p-sender': ['bank', 'eve'] }, messageExpiryInterval: 30 })
    const inner = unwrapPayload(wrapPayload('t', 'x', headers))
    assert.ok(inner !== null)
    const out = propertiesFor(inner.headers, headers.expiresAt - 9_500)
    assert.deepEqual({ ...out?.userProperties }, { 'p2p-sender': 'eve' })
    assert.equal(out?.messageExpiryInterval, 10)
  })

  it('still reads the envelopes earlier versions queued', () => {
    const topic = Buffer.from('chat')
    const v1 = Buffer.concat([Buffer.from([1, 0, topic.length]), topic, Buffer.from('old')])
    const v2 = Buffer.concat([Buffer.from([2]), Buffer.from([0, 0, 0, 0, 0, 42]), Buffer.from([0, topic.length]), topic, Buffer.from('newer')])
    assert.deepEqual(unwrapPayload(v1), { topic: 'chat', payload: Buffer.from('old'), sentAt: undefined, headers: { sender: '', properties: undefined, expiresAt: 0 } })
    assert.deepEqual(unwrapPayload(v2), { topic: 'chat', payload: Buffer.from('newer'), sentAt: 42, headers: { sender: '', properties: undefined, expiresAt: 0 } })
  })

  it('reads a cut-off or damaged envelope as none, never as a throw', () => {
    const whole = wrapPayload('chat', Buffer.from('payload'), headersOf('alice', properties))
    const propertiesEnd = whole.length - 'payload'.length
    for (let length = 0; length < propertiesEnd; length++) assert.equal(unwrapPayload(whole.subarray(0, length)), null, `cut at ${length}`)
    const damaged = Buffer.from(whole)
    damaged.write('{', propertiesEnd - 3)
    assert.doesNotThrow(() => unwrapPayload(damaged))
  })
})
