import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TopicParser, type Mode } from '../../src/plugin/topic.js'

const longId = 'c'.repeat(65_000)

// [topic, expected in prefix, suffix, both]; a string is "target -> topic",
// null is an ordinary topic, and 'malformed' is rejected.
type Expect = string | null | 'malformed'
const table: Array<[string, Expect, Expect, Expect]> = [
  ['p2p/B/x', 'B -> x', null, 'B -> x'],
  ['p2p/B/x/y/z', 'B -> x/y/z', null, 'B -> x/y/z'],
  ['x/p2p/B', null, 'B -> x', 'B -> x'],
  ['a/b/p2p/B', null, 'B -> a/b', 'B -> a/b'],
  ['p2p/x', null, null, null],
  ['p2p', null, null, null],
  ['x/p2p', null, null, null],
  ['p2p/', null, null, null],
  ['sensors/temp', null, null, null],
  ['', null, null, null],
  ['/', null, null, null],
  ['p2p//x', 'malformed', null, 'malformed'],
  ['p2p/B/', 'malformed', null, 'malformed'],
  ['p2p//', 'malformed', null, 'malformed'],
  ['x/p2p/', null, 'malformed', 'malformed'],
  ['/p2p/B', null, 'malformed', 'malformed'],
  ['p2p/B/$SYS/x', 'malformed', null, 'malformed'],
  ['$SYS/p2p/B', null, 'malformed', 'malformed'],
  // only the first match counts
  ['p2p/B/p2p/C/x', 'B -> p2p/C/x', null, 'B -> p2p/C/x'],
  ['p2p/B/x/p2p/C', 'B -> x/p2p/C', 'C -> p2p/B/x', 'B -> x/p2p/C'],
  ['a/p2p/B/p2p/C', null, 'C -> a/p2p/B', 'C -> a/p2p/B'],
  ['p2p/p2p/x', 'p2p -> x', 'x -> p2p', 'p2p -> x'],
  ['p2p/p2p/p2p', 'p2p -> p2p', 'p2p -> p2p', 'p2p -> p2p'],
  // empty levels inside the delivered topic are legal MQTT
  ['p2p/B//x', 'B -> /x', null, 'B -> /x'],
  ['p2p/B/x/', 'B -> x/', null, 'B -> x/'],
  ['//p2p/B', null, 'B -> /', 'B -> /'],
  // the keyword is a whole level, never part of one
  ['p2px/B/x', null, null, null],
  ['xp2p/B/x', null, null, null],
  ['x/xp2p/B', null, null, null],
  ['x/p2px/B', null, null, null],
  ['P2P/B/x', null, null, null],
  // unicode and odd ids
  ['p2p/客户端/温度', '客户端 -> 温度', null, '客户端 -> 温度'],
  ['p2p/😀/x', '😀 -> x', null, '😀 -> x'],
  ['température/p2p/ü', null, 'ü -> température', 'ü -> température'],
  [`p2p/${longId}/x`, `${longId} -> x`, null, `${longId} -> x`],
  [`x/p2p/${longId}`, null, `${longId} -> x`, `${longId} -> x`]
]

function render (parser: TopicParser, topic: string): Expect {
  const parsed = parser.parse(topic)
  if (parsed === null) return null
  if (parsed.kind === 'malformed') return 'malformed'
  return `${parsed.target} -> ${parsed.topic}`
}

const modes: Mode[] = ['prefix', 'suffix', 'both']

for (const [i, mode] of modes.entries()) {
  describe(`topic parser, ${mode} mode`, () => {
    const parser = new TopicParser(mode, 'p2p')
    for (const row of table) {
      const expected = row[i + 1] as Expect
      const name = row[0].length > 40 ? row[0].slice(0, 20) + '…' + row[0].slice(-12) : row[0]
      it(`${JSON.stringify(name)} is ${expected === null ? 'ordinary' : expected.length > 60 ? 'P2P to the long id' : expected}`, () => {
        assert.equal(render(parser, row[0]), expected)
      })
    }
  })
}

describe('topic parser keyword', () => {
  it('recognises a configured keyword and no longer the default one', () => {
    const parser = new TopicParser('both', 'direct')
    assert.equal(render(parser, 'direct/B/x'), 'B -> x')
    assert.equal(render(parser, 'x/direct/B'), 'B -> x')
    assert.equal(render(parser, 'p2p/B/x'), null)
  })

  it('says why a topic is malformed', () => {
    const parser = new TopicParser('prefix', 'p2p')
    assert.deepEqual(parser.parse('p2p//x'), { kind: 'malformed', reason: 'empty client id' })
    assert.deepEqual(parser.parse('p2p/B/'), { kind: 'malformed', reason: 'empty delivered topic' })
  })
})
