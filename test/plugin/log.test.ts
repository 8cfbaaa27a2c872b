import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { WarnLimiter } from '../../src/plugin/log.js'
import { captureLog } from '../helpers/broker.js'

describe('client-caused warnings', () => {
  it('are rate-limited, then say how many were held back', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 })
    const log = captureLog()
    const warn = new WarnLimiter(log, 3, 10_000)
    for (let i = 0; i < 100; i++) warn.warn({ i }, 'bad topic')
    assert.equal(log.lines.length, 3)
    t.mock.timers.tick(10_000)
    warn.warn({ i: 100 }, 'bad topic')
    assert.deepEqual(log.lines.slice(3).map((l) => l.msg), ['P2P warnings suppressed by rate limit', 'bad topic'])
    assert.deepEqual(log.lines[3]?.obj, { suppressed: 97 })
  })
})
