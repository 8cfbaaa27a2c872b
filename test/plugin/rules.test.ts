/** Config rules on sender id, sender username and target id (docs/behaviour.md §3); on a broker in test/p2p/composition.ts. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NEEDS_OWNER, Rules, ruleConfigs, type RuleConfig } from '../../src/plugin/rules.js'

function allows (rules: RuleConfig[], senderId: string, target: string, username?: string, targetUser?: string | null): boolean | typeof NEEDS_OWNER {
  return new Rules(rules).allows({ senderId, username, target, targetUser })
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

  it('does not let a name prefix pass for ownership: bob cannot reach bob-x-phone, a device of bob-x', () => {
    const ownDevices: RuleConfig[] = [{ action: 'allow', target_user: '${username}' }, { action: 'deny' }]
    assert.equal(allows(ownDevices, 'bob-laptop', 'bob-x-phone', 'bob', 'bob-x'), false)
    assert.equal(allows(ownDevices, 'bob-laptop', 'whatever-id', 'bob', 'bob'), true)
    // a target nobody owns, and a sender without a username, match no target_user rule
    assert.equal(allows(ownDevices, 'bob-laptop', 'stray', 'bob', null), false)
    assert.equal(allows(ownDevices, 'anon', 'bob-phone', undefined, 'bob'), false)
  })

  it('asks for the target\'s owner only when a rule that names it is reached', () => {
    const rules: RuleConfig[] = [{ action: 'allow', sender: 'ops' }, { action: 'deny', target_user: 'admin*' }]
    assert.equal(allows(rules, 'ops', 'root-console', 'ops'), true)
    assert.equal(allows(rules, 'alice', 'root-console', 'alice'), NEEDS_OWNER)
    assert.equal(allows(rules, 'alice', 'root-console', 'alice', 'admins'), false)
    assert.equal(allows(rules, 'alice', 'root-console', 'alice', 'carol'), true)
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
    bad([{ action: 'deny', sender: 7 }], 'rules[0].sender', /must be a non-empty string pattern/)
    bad(['deny'], 'rules[0]', /must be a table/)
    bad({ action: 'deny' }, 'rules', /array of tables/)
  })
})
