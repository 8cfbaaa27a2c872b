import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { limitCounts } from '../../bench/hostile-brokers.js'
import { countedText, deathCause, markdown, megabytes } from '../../bench/report.js'
import type { HostileOutcome, Results } from '../../bench/results.js'

const MB = 1024 * 1024

describe('hostile part: what the CLI broker counted', () => {
  it('reads limit hits and drops above zero from /metrics, and nothing else', () => {
    const metrics = [
      '# HELP p2p_messages_dropped_total P2P messages dropped, by reason',
      '# TYPE p2p_messages_dropped_total counter',
      'p2p_messages_dropped_total{reason="malformed"} 0',
      'p2p_messages_dropped_total{reason="slow_consumer"} 65150',
      '# TYPE mqtt_limit_hits_total counter',
      'mqtt_limit_hits_total{limit="max_pending_bytes"} 65150',
      'mqtt_limit_hits_total{limit="cluster_unavailable"} 1',
      'p2p_messages_received_total 65456',
      'mqtt_connections_open 2'
    ].join('\n')
    assert.deepEqual(limitCounts(metrics), {
      limits: { max_pending_bytes: 65150, cluster_unavailable: 1 },
      dropped: { slow_consumer: 65150 }
    })
    assert.deepEqual(limitCounts(''), { limits: {}, dropped: {} })
  })

  it('says what was counted in words, a limit and a drop reason of one name kept apart', () => {
    assert.equal(countedText({ limits: { cluster_unavailable: 1 }, dropped: { cluster_unavailable: 61360 } }), 'cluster_unavailable ×1, dropped cluster_unavailable ×61,360')
    assert.equal(countedText({ limits: {}, dropped: {} }), 'nothing')
    assert.equal(countedText(null), '—')
  })
})

describe('hostile part: a broker that died', () => {
  it('is named by the error Node printed, with its exit code or signal', () => {
    const stack = 'exit code 1: /app/node_modules/mqemitter/mqemitter.js:128\nMQEmitter.prototype._do = function (message, callback) {\n    ^\n\nRangeError: Maximum call stack size exceeded\n    at Qlobber._match2\n\nNode.js v20.20.2'
    assert.equal(deathCause(stack), 'RangeError: Maximum call stack size exceeded (exit code 1)')
    const oom = 'SIGABRT: <--- Last few GCs --->\n\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb8d0a3 node::Abort()'
    assert.equal(deathCause(oom), 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory (SIGABRT)')
    assert.equal(deathCause('SIGKILL'), 'SIGKILL')
    assert.equal(deathCause('exit code 3: something odd\nmore'), 'something odd (exit code 3)')
  })
})

describe('hostile part: the report', () => {
  const outcome = (grewMb: number, died: string | null = null): HostileOutcome => ({
    rss: { before: 80 * MB, peak: (80 + grewMb) * MB, after: 80 * MB },
    sent: { bytes: 1024 * MB, messages: 65_536, seconds: 3 },
    died,
    counted: died === null ? { limits: { max_pending_bytes: 12 }, dropped: {} } : null,
    notes: [],
    measured: {}
  })
  const results = (rows: NonNullable<Results['hostile']>['rows']): Results => ({
    mode: 'quick',
    command: 'npm run bench -- --only hostile',
    protocol: { aedes: '1.2.0', mqtt: '3.1.1' },
    date: '2026-12-01T00:00:00.000Z',
    machine: { cpus: 2, model: 'test', node: 'v20' },
    placement: null,
    traffic: { payloadBytes: 64, window: 10, durationMs: 1500, warmupMs: 500, blocks: 2, idleBlocks: 1, rounds: 1, aloneMs: 1000, steadyMs: 3000 },
    throughput: [],
    ratios: [],
    idle: [],
    memory: null,
    cluster: null,
    topicParsing: [],
    hostile: { bound: { bytes: 1024 * MB, ms: 3000 }, rows }
  })

  it('has a row per attack: what each broker was sent, how it grew or that it died, and what was counted', () => {
    const md = markdown(results([
      { attack: 'slow', what: 'a reader that stops', plain: outcome(1431, 'exit code 1: RangeError: Maximum call stack size exceeded'), cli: outcome(48) },
      { attack: 'p2p', what: 'P2P only', plain: { skipped: 'P2P topics' }, cli: outcome(3.25) }
    ]))
    assert.match(md, /\*\*Hostile clients: broker RSS growth\*\*/)
    assert.match(md, /\| `slow`: a reader that stops \| 1,024 MB, 65,536 msg in 3\.0 s \| \+1,431 MB \(peak 1,511 MB\), then \*\*died\*\*: RangeError: Maximum call stack size exceeded \(exit code 1\) \| 1,024 MB, 65,536 msg in 3\.0 s \| \+48 MB \(peak 128 MB\) \| max_pending_bytes ×12 \| — \|/)
    assert.match(md, /\| `p2p`: P2P only \| does not apply \| P2P topics \| .* \| \+3\.3 MB \(peak 83 MB\) \|/)
    assert.match(md, /aedes-p2p CLI lives through every attack \| 2 of 2 \| all \| yes \|/)
  })

  it('says the CLI broker did not live through an attack that killed it', () => {
    const md = markdown(results([{ attack: 'boom', what: 'x', plain: outcome(1), cli: outcome(1, 'SIGKILL') }]))
    assert.match(md, /lives through every attack \| died in `boom` \| all \| \*\*no\*\* \|/)
  })

  it('judges the answer to a client connecting while Redis is away against 2 s, and no answer as a miss', () => {
    const away = (measured: Record<string, number>): string => markdown(results([{ attack: 'redis-away', what: 'x', plain: { skipped: 'a cluster' }, cli: { ...outcome(1), measured } }]))
    assert.match(away({ answerMs: 83, unanswered: 0 }), /Redis is away is answered \(the slower node\) \| 83 ms \| ≤ 2 s \| yes \|/)
    assert.match(away({ answerMs: 2500, unanswered: 0 }), /\| 2,500 ms \| ≤ 2 s \| \*\*no\*\* \|/)
    assert.match(away({ answerMs: 5000, unanswered: 1 }), /\| no answer \| ≤ 2 s \| \*\*no\*\* \|/)
  })

  it('writes megabytes with a decimal below ten', () => {
    assert.equal(megabytes(3.25 * MB), '3.3 MB')
    assert.equal(megabytes(1431.4 * MB), '1,431 MB')
  })
})
