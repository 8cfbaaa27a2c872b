/** Config rules on sender id, sender username and target id (docs/behaviour.md §3); on a broker in test/p2p/composition.ts. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Rules, ruleConfigs, type RuleConfig } from '../../src/plugin/rules.js'

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

  it('rejects bad rules with a clear message and the key at fault', () => {
    const bad = (value: unknown, key: string, message: RegExp): void => {
      assert.throws(() => ruleConfigs(value), (err: Error & { code?: string, key?: string }) => {
        assert.equal(err.code, 'ERR_P2P_CONFIG')
        assert.equal(err.key, key)
        assert.match(err.message, message)
        return true
      })
    }
    bad([{ action: 'maybe' }], 'rules[0].action', /rules\[0\]\.action must be "allow" or "deny"/)
    bad([{ action: 'deny' }, { action: 'deny', traget: 'x' }], 'rules[1].traget', /rules\[1\]: unknown key 'traget'/)
    bad([{ action: 'deny', target: '${user}' }], 'rules[0].target', /unknown placeholder \$\{user\}/)
    bad([{ action: 'deny', sender: 7 }], 'rules[0].sender', /must be a string pattern/)
    bad(['deny'], 'rules[0]', /must be a table/)
    bad({ action: 'deny' }, 'rules', /array of tables/)
  })
})
