/** What a catch-up remembers of what it sent (src/plugin/pending.ts). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Sent } from '../../src/plugin/pending.js'

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
