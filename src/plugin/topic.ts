/**
 * Recognises P2P topics (docs/behaviour.md §1). This runs on every PUBLISH the broker
 * sees, so the ordinary-topic path only compares characters in place and
 * allocates nothing; strings are sliced only once a topic is known to be P2P.
 */

export const MODES = ['prefix', 'suffix', 'both'] as const
export type Mode = (typeof MODES)[number]

export interface P2PTopic {
  readonly kind: 'p2p'
  /** client id of the only client that may receive the message */
  readonly target: string
  /** the topic the target receives the message on */
  readonly topic: string
}

export interface MalformedTopic {
  readonly kind: 'malformed'
  readonly reason: string
}

export type ParsedTopic = P2PTopic | MalformedTopic

const EMPTY_CLIENT_ID: MalformedTopic = Object.freeze({ kind: 'malformed', reason: 'empty client id' })
const EMPTY_TOPIC: MalformedTopic = Object.freeze({ kind: 'malformed', reason: 'empty delivered topic' })
// A target subscribed to $SYS/# must be able to trust that only the broker
// writes there, so a peer may not deliver onto a $-topic.
const DOLLAR_TOPIC: MalformedTopic = Object.freeze({ kind: 'malformed', reason: 'delivered topic starts with $' })

const SLASH = 47
const DOLLAR = 36

export class TopicParser {
  readonly mode: Mode
  readonly keyword: string
  readonly #prefix: boolean
  readonly #suffix: boolean
  readonly #keywordSlash: string

  constructor (mode: Mode, keyword: string) {
    this.mode = mode
    this.keyword = keyword
    this.#prefix = mode !== 'suffix'
    this.#suffix = mode !== 'prefix'
    this.#keywordSlash = keyword + '/'
  }

  /** null for an ordinary topic, which the broker routes as usual. */
  parse (topic: string): ParsedTopic | null {
    if (this.#prefix) {
      const found = this.#parsePrefix(topic)
      // the prefix form is tried first and the first match wins, malformed or not
      if (found !== null) return found
    }
    return this.#suffix ? this.#parseSuffix(topic) : null
  }

  // p2p/{clientid}/{topic}
  #parsePrefix (topic: string): ParsedTopic | null {
    if (!topic.startsWith(this.#keywordSlash)) return null
    const idStart = this.#keywordSlash.length
    const idEnd = topic.indexOf('/', idStart)
    if (idEnd === -1) return null // two levels: an ordinary topic
    if (idEnd === idStart) return EMPTY_CLIENT_ID
    if (idEnd + 1 === topic.length) return EMPTY_TOPIC
    if (topic.charCodeAt(idEnd + 1) === DOLLAR) return DOLLAR_TOPIC
    return { kind: 'p2p', target: topic.slice(idStart, idEnd), topic: topic.slice(idEnd + 1) }
  }

  // {topic}/p2p/{clientid}
  #parseSuffix (topic: string): ParsedTopic | null {
    const last = topic.lastIndexOf('/')
    if (last < 1) return null
    const keywordEnd = last
    const keywordStart = keywordEnd - this.keyword.length
    // the keyword must be a whole level that has another level before it
    if (keywordStart < 1 || topic.charCodeAt(keywordStart - 1) !== SLASH) return null
    if (!topic.startsWith(this.keyword, keywordStart)) return null
    const topicEnd = keywordStart - 1
    if (last + 1 === topic.length) return EMPTY_CLIENT_ID
    if (topicEnd === 0) return EMPTY_TOPIC
    if (topic.charCodeAt(0) === DOLLAR) return DOLLAR_TOPIC
    return { kind: 'p2p', target: topic.slice(last + 1), topic: topic.slice(0, topicEnd) }
  }
}

export function isMode (value: unknown): value is Mode {
  return typeof value === 'string' && (MODES as readonly string[]).includes(value)
}
