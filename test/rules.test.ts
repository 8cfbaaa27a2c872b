/** SPEC §3: config rules on sender id, sender username and target id. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Rules, ruleConfigs, type RuleConfig } from '../src/rules.js'
import { brokerPerTest } from './helpers/broker.js'
import { fence, inbox, waitFor } from './helpers/messages.js'

function allows (rules: RuleConfig[], senderId: string, target: string, username?: string): boolean {
  return new Rules(rules).allows({ senderId, username, target })
}

describe('P2P rules', () => {
  it('allows everything when there are no rules', () => {
    assert.equal(allows([], 'a', 'b'), true)
  })

  it('lets the first matching rule decide', () => {
    const rules: RuleConfig[] = [
      { action: 'allow', sender: 'ops', target: 'admin' },
      { action: 'deny', target: 'admin' }
    ]
    assert.equal(allows(rules, 'ops', 'admin'), true)
    assert.equal(allows(rules, 'alice', 'admin'), false)
    assert.equal(allows(rules, 'alice', 'bob'), true)
  })

  it('matches * anywhere in a pattern, including the empty run', () => {
    const rules: RuleConfig[] = [{ action: 'deny', target: 'dev-*-ctl*' }]
    assert.equal(allows(rules, 'a', 'dev-1-ctl'), false)
    assert.equal(allows(rules, 'a', 'dev--ctl-x'), false)
    assert.equal(allows(rules, 'a', 'dev-1-ct'), true)
    assert.equal(allows(rules, 'a', 'xdev-1-ctl'), true)
    assert.equal(allows([{ action: 'deny', sender: '*' }], 'anyone', 'b'), false)
    assert.equal(allows([{ action: 'deny', target: 'a*a' }], 'x', 'a'), true)
  })

  it('fills ${username} and ${clientid} with the sender\'s', () => {
    const rules: RuleConfig[] = [
      { action: 'allow', target: '${username}-*' },
      { action: 'allow', target: '${clientid}/*' },
      { action: 'deny' }
    ]
    assert.equal(allows(rules, 'c1', 'alice-phone', 'alice'), true)
    assert.equal(allows(rules, 'c1', 'bob-phone', 'alice'), false)
    assert.equal(allows(rules, 'c1', 'c1/x', 'alice'), true)
  })

  it('never matches a ${username} rule for a sender without a username', () => {
    const rules: RuleConfig[] = [{ action: 'allow', target: '${username}-*' }, { action: 'deny' }]
    assert.equal(allows(rules, 'c1', '-phone'), false)
  })

  it('matches on the sender\'s username', () => {
    const rules: RuleConfig[] = [{ action: 'deny', username: 'guest*' }]
    assert.equal(allows(rules, 'c1', 'b', 'guest7'), false)
    assert.equal(allows(rules, 'c1', 'b', 'alice'), true)
    assert.equal(allows(rules, 'c1', 'b'), true)
  })

  it('treats regex characters as literals', () => {
    assert.equal(allows([{ action: 'deny', target: 'a.b(c)' }], 'x', 'a.b(c)'), false)
    assert.equal(allows([{ action: 'deny', target: 'a.b' }], 'x', 'axb'), true)
  })

  it('rejects bad rules with a clear message', () => {
    assert.throws(() => ruleConfigs([{ action: 'maybe' }]), /rules\[0\]\.action must be "allow" or "deny"/)
    assert.throws(() => ruleConfigs([{ action: 'deny', traget: 'x' }]), /rules\[0\]: unknown key 'traget'/)
    assert.throws(() => ruleConfigs([{ action: 'deny', target: '${user}' }]), /unknown placeholder \$\{user\}/)
    assert.throws(() => ruleConfigs({ action: 'deny' }), /array of tables/)
  })
})

describe('P2P rules on a broker', () => {
  const broker = brokerPerTest()

  it('drops and counts a refused message; the sender stays connected', async () => {
    const b = await broker({ plugin: { rules: [{ action: 'deny', sender: 'guest-*', target: 'admin' }] } })
    const guest = await b.connect('guest-1')
    const admin = await b.connect('admin')
    const got = inbox(admin)
    await guest.publishAsync('p2p/admin/x', 'm', { qos: 1 })
    assert.deepEqual(await fence(guest, admin, got), [])
    assert.equal(b.plugin.counters.dropped.refused, 1)
    assert.ok(guest.connected)
    assert.ok(b.log.lines.some((l) => l.level === 'warn' && (l.obj as { reason?: string }).reason === 'refused by rule'))
  })

  it('uses the username the sender connected with', async () => {
    const b = await broker({ plugin: { rules: [{ action: 'allow', target: '${username}-*' }, { action: 'deny' }] } })
    const sender = await b.connect('c1', { username: 'alice' })
    const mine = await b.connect('alice-phone')
    const theirs = await b.connect('bob-phone')
    const mineGot = inbox(mine)
    const theirsGot = inbox(theirs)
    await sender.publishAsync('p2p/alice-phone/x', 'ok', { qos: 1 })
    await sender.publishAsync('p2p/bob-phone/x', 'no', { qos: 1 })
    await waitFor(mineGot, 1)
    assert.deepEqual(await fence(sender, theirs, theirsGot), [])
  })
})
