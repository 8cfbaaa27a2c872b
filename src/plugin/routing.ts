/**
 * The routing decision for every PUBLISH (docs/behaviour.md §1–3): ordinary
 * topics go on to Aedes untouched; a P2P message is checked, then written to
 * its target here, queued in the target's session, or handed to the cluster
 * strategy. This is the hot path: the ordinary case costs one topic check,
 * and the P2P case allocates no closure unless a check answers later.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { Cluster } from '../cluster/strategy.js'
import type { Authorization, Refusal } from './authorization.js'
import { ChannelPackets, isChannel } from './channel.js'
import type { Counters, DropReason } from './counters.js'
import type { Delivery } from './delivery.js'
import { connectedClient, enqueue, type PublishDone, type PublishFn } from './host.js'
import { WarnLimiter, type Logger } from './log.js'
import type { Sessions } from './sessions.js'
import { TopicParser, type P2PTopic } from './topic.js'

const DOLLAR = 36

export interface RouterParts {
  broker: Aedes
  hostPublish: PublishFn
  authorization: Authorization
  sessions: Sessions
  delivery: Delivery
  cluster: Cluster
  packets: ChannelPackets
  counters: Counters
  log: Logger
}

export class Router {
  /** false while the plugin is stopped: P2P topics are then ordinary topics */
  running = true
  #parser: TopicParser
  readonly #broker: Aedes
  readonly #hostPublish: PublishFn
  readonly #authorization: Authorization
  readonly #sessions: Sessions
  readonly #delivery: Delivery
  readonly #cluster: Cluster
  readonly #packets: ChannelPackets
  readonly #counters: Counters
  readonly #log: Logger
  readonly #clientWarnings: WarnLimiter

  constructor (parser: TopicParser, parts: RouterParts) {
    this.#parser = parser
    this.#broker = parts.broker
    this.#hostPublish = parts.hostPublish
    this.#authorization = parts.authorization
    this.#sessions = parts.sessions
    this.#delivery = parts.delivery
    this.#cluster = parts.cluster
    this.#packets = parts.packets
    this.#counters = parts.counters
    this.#log = parts.log
    this.#clientWarnings = new WarnLimiter(parts.log)
  }

  /** Takes effect for the next PUBLISH. */
  set parser (parser: TopicParser) {
    this.#parser = parser
  }

  /** Aedes's publish, wrapped: `client` is null for server code and wills of clients already gone. */
  publish (packet: AedesPublishPacket, client: Client | null, done: PublishDone): void {
    const topic = packet.topic
    if (isChannel(topic)) {
      // a forged channel message would bypass every check; nobody publishes here
      this.#drop('refused', client, topic, 'internal topic')
      done()
      return
    }
    // The broker's own traffic on $-topics ($SYS heartbeats, the
    // persistence's broadcasts) is never P2P, whatever the keyword: a
    // suffix-form keyword such as 'sub' or 'new' would otherwise take it.
    const parsed = this.running && !(client === null && topic.charCodeAt(0) === DOLLAR) ? this.#parser.parse(topic) : null
    if (parsed === null) {
      this.#hostPublish.call(this.#broker, packet, client, done)
      return
    }
    this.#counters.received++
    if (parsed.kind === 'malformed') {
      this.#drop('malformed', client, topic, parsed.reason)
      done()
      return
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const qos = packet.qos
    const refusal = this.#authorization.check(client, parsed.target, parsed.topic, qos, payload)
    if (!(refusal instanceof Promise)) {
      this.#decide(refusal, client, topic, parsed, payload, qos, done)
      return
    }
    void refusal.then((late) => { this.#decide(late, client, topic, parsed, payload, qos, done) })
  }

  #decide (refusal: Refusal, client: Client | null, topic: string, p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2, done: PublishDone): void {
    if (refusal !== null) {
      this.#drop('refused', client, topic, refusal)
      done()
      return
    }
    this.#send(p2p, payload, qos, done)
  }

  #send (p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2, done: PublishDone): void {
    const local = connectedClient(this.#broker, p2p.target)
    // QoS 0 is never queued, and a live copy to a clean session needs neither the envelope nor the store
    if (qos === 0 || (local !== undefined && local.clean)) {
      if (local !== undefined) this.#delivery.deliver(local, p2p.topic, payload, qos, undefined)
      else this.#elsewhere(p2p, payload, qos, undefined)
      done()
      return
    }
    this.#sessions.find(p2p.target, local !== undefined).then(async (session) => {
      if (session === null) {
        // not connected here: a client connected here has a session or took the path above
        this.#elsewhere(p2p, payload, qos, undefined)
        done()
        return
      }
      const stored = this.#packets.pack(p2p.target, p2p.topic, payload, qos)
      await enqueue(this.#broker, session, stored)
      const now = connectedClient(this.#broker, p2p.target)
      if (now !== undefined && !now.clean) this.#delivery.deliver(now, p2p.topic, payload, qos, stored)
      else this.#elsewhere(p2p, payload, qos, stored)
      done()
    }).catch((err: unknown) => {
      // as for ordinary traffic: a persistence failure is the sender's error
      done(err as Error)
    })
  }

  #elsewhere (p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): void {
    const outcome = this.#cluster.elsewhere(p2p, payload, qos, stored)
    if (outcome !== 'no_session') {
      this.#counters[outcome]++
      return
    }
    this.#counters.dropped.no_session++
    this.#log.debug({ target: p2p.target, topic: p2p.topic }, 'P2P message dropped: target not connected and has no session')
  }

  #drop (reason: DropReason, client: Client | null, topic: string, why: string): void {
    this.#counters.dropped[reason]++
    this.#clientWarnings.warn({ clientId: client?.id ?? null, topic, reason: why }, `P2P message dropped (${reason})`)
  }
}
