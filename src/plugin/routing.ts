/**
 * The routing decision for every PUBLISH (docs/behaviour.md §1–3): ordinary
 * topics go on to Aedes untouched; a P2P message is checked, then written to
 * its target here, queued in the target's session, or handed to the cluster
 * strategy. This is the hot path: the ordinary case costs one topic check,
 * and the P2P case allocates no closure unless a check answers later.
 */
import type { Aedes, AedesPublishPacket, Client, PublishPacket } from 'aedes'
import type { Cluster, Outcome } from '../cluster/strategy.js'
import type { Authorization, Refusal } from './authorization.js'
import { ChannelPackets, isChannel, unwrapPayload } from './channel.js'
import type { Counters, DropReason } from './counters.js'
import type { Delivery } from './delivery.js'
import { P2PError } from './errors.js'
import { answerFor, type Answer } from './answers.js'
import { carriable, headersOf, weightOf, type MessageHeaders, type PublishProperties } from './headers.js'
import { connectedClient, type PublishDone, type PublishFn } from './host.js'
import { Reason } from './host-mqtt5.js'
import { WarnLimiter, type Logger } from './log.js'
import type { Queues } from './queues.js'
import type { Sessions } from './sessions.js'
import { TopicParser, type ParsedTopic as P2PParse, type P2PTopic } from './topic.js'
import { Waiting, type Bound } from './waiting.js'

const DOLLAR = 36
const EMPTY = Buffer.alloc(0)
/**
 * Marks a packet beforeAck() has published, for the publish() Aedes
 * runs after its PUBACK to pass: a property, not a WeakSet, since a WeakSet
 * entry per message is work for every garbage collection.
 */
const ROUTED = Symbol('p2p routed')
type Marked = AedesPublishPacket & { [ROUTED]?: boolean, properties?: PublishProperties | null, clientId?: string }

/** what #parse() answers for a publish on a channel */
const CHANNEL = Symbol('channel')
type ParsedTopic = P2PParse | typeof CHANNEL

/** What became of a message: the cluster's outcome, or written to its target here. */
type Kept = Outcome | 'delivered'

export interface RouterParts {
  broker: Aedes
  hostPublish: PublishFn
  authorization: Authorization
  sessions: Sessions
  queues: Queues
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
  readonly #queues: Queues
  readonly #delivery: Delivery
  readonly #cluster: Cluster
  readonly #packets: ChannelPackets
  readonly #counters: Counters
  readonly #log: Logger
  readonly #clientWarnings: WarnLimiter
  /** P2P messages waiting on the store, the cluster or a late check, and their bytes */
  readonly #waiting: Waiting

  constructor (parser: TopicParser, parts: RouterParts) {
    this.#parser = parser
    this.#broker = parts.broker
    this.#hostPublish = parts.hostPublish
    this.#authorization = parts.authorization
    this.#sessions = parts.sessions
    this.#queues = parts.queues
    this.#delivery = parts.delivery
    this.#cluster = parts.cluster
    this.#waiting = new Waiting(parts.cluster.maxBufferedMessages ?? Infinity, parts.cluster.maxBufferedBytes ?? Infinity)
    this.#packets = parts.packets
    this.#counters = parts.counters
    this.#log = parts.log
    this.#clientWarnings = new WarnLimiter(parts.log)
  }

  /** Takes effect for the next PUBLISH. */
  set parser (parser: TopicParser) {
    this.#parser = parser
  }

  /**
   * Aedes's authorizePublish, after the host's own has allowed the packet.
   * Aedes 1.2 writes a QoS 1 PUBACK before it publishes, so a QoS 1 message,
   * P2P or ordinary, is published here, and the PUBACK follows only once the
   * message is kept: in its target's queue, written to its target, or taken
   * by the cluster (docs/behaviour.md §7). An error here closes the sender's
   * connection unacknowledged. The publish that Aedes then runs finds it done.
   * hooks.ts calls it for a client's QoS 1 packets, and for an MQTT 5
   * client's QoS 2 ones: an MQTT 5 sender is answered with a reason code
   * (answers.ts).
   */
  beforeAck (packet: PublishPacket, client: Client, done: PublishDone, mqtt5: boolean, notKept?: () => void): void {
    // the same object Aedes then hands to publish(); the fields read here are the ones both types share
    const publishing = packet as Marked
    const parsed = this.#parse(packet.topic, client)
    // an ordinary QoS 2 message goes Aedes's own way: stored, published, then answered
    if (parsed === null && packet.qos === 2) {
      done()
      return
    }
    publishing[ROUTED] = true
    if (parsed === null) this.#hostPublish.call(this.#broker, publishing, client, done)
    else this.#route(parsed, publishing, client, mqtt5 ? answerFor(client, packet, done, notKept) : done)
  }

  /** Aedes's publish, wrapped: `client` is null for server code and wills of clients already gone. */
  publish (packet: Marked, client: Client | null, done: Answer): void {
    if (packet.qos > 0 && packet[ROUTED] === true) {
      // set false rather than deleted: a packet keeps its shape
      packet[ROUTED] = false
      done()
      return
    }
    const parsed = this.#parse(packet.topic, client)
    if (parsed === null) this.#hostPublish.call(this.#broker, packet, client, done)
    else this.#route(parsed, packet, client, done)
  }

  /** The P2P topic a publish is for; null for one that goes on to Aedes as it is. */
  #parse (topic: string, client: Client | null): ParsedTopic | null {
    if (isChannel(topic)) return CHANNEL
    // The broker's own traffic on $-topics ($SYS heartbeats, the
    // persistence's broadcasts) is never P2P, whatever the keyword: a
    // suffix-form keyword such as 'sub' or 'new' would otherwise take it.
    return this.running && !(client === null && topic.charCodeAt(0) === DOLLAR) ? this.#parser.parse(topic) : null
  }

  #route (parsed: ParsedTopic, packet: Marked, client: Client | null, done: Answer): void {
    const topic = packet.topic
    if (parsed === CHANNEL) {
      // a forged channel message would bypass every check; nobody publishes here
      this.#drop('refused', client, topic, 'internal topic')
      done(null, Reason.notAuthorized, 'internal topic')
      return
    }
    this.#counters.received++
    if (parsed.kind === 'malformed') {
      this.#drop('malformed', client, topic, parsed.reason)
      done(null, Reason.topicNameInvalid, `malformed P2P topic: ${parsed.reason}`)
      return
    }
    // a will of a client already gone names its owner; server code names nobody
    const headers = headersOf(client !== null ? client.id : packet.clientId ?? '', packet.properties)
    if (!carriable(parsed.topic, headers)) {
      this.#drop('malformed', client, topic, 'a string too long for MQTT once in UTF-8')
      done(null, Reason.topicNameInvalid, 'a string in the message is too long for MQTT')
      return
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const qos = packet.qos
    const refusal = this.#authorization.check(client, parsed.target, parsed.topic, qos, payload)
    if (!(refusal instanceof Promise)) {
      this.#decide(refusal, client, topic, parsed, payload, qos, headers, done)
      return
    }
    // a check that answers later (the target's owner from the store, the
    // user's hook) holds the message meanwhile, within the same bound as
    // what waits on the store
    const waiting = this.#waiting
    const weight = weightOf(payload, headers)
    const full = waiting.full(weight)
    if (full !== null) {
      this.#unavailable(full, parsed, qos, done)
      return
    }
    waiting.add(weight)
    void refusal.then((late) => {
      waiting.remove(weight)
      this.#decide(late, client, topic, parsed, payload, qos, headers, done)
    })
  }

  #decide (refusal: Refusal, client: Client | null, topic: string, p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2, headers: MessageHeaders, done: Answer): void {
    if (refusal !== null) {
      this.#drop('refused', client, topic, refusal)
      done(null, Reason.notAuthorized, `P2P message ${refusal}`)
      return
    }
    this.#send(p2p, payload, qos, headers, done)
  }

  #send (p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2, headers: MessageHeaders, done: Answer): void {
    const local = connectedClient(this.#broker, p2p.target)
    // a live copy to a clean session needs neither the envelope nor the store
    if (local !== undefined && (qos === 0 || local.clean)) {
      if (this.#delivery.deliver(local, p2p.topic, payload, qos, undefined, headers)) done()
      else done(null, Reason.quotaExceeded, 'the target did not take it')
      return
    }
    // everything below may wait on the store or the cluster: what waits is bounded
    const waiting = this.#waiting
    const weight = weightOf(payload, headers)
    const full = waiting.full(weight)
    if (full !== null) {
      this.#unavailable(full, p2p, qos, done)
      return
    }
    const kept = qos === 0 ? this.#forward(p2p, payload, qos, undefined, headers) : this.#keep(p2p, payload, qos, headers, local !== undefined)
    // QoS 0 is never queued and has no acknowledgement to wait for; what is known now is told (send() reads it)
    if (qos === 0) this.#answer(typeof kept === 'object' ? 'forwarded' : kept, p2p, done)
    if (typeof kept !== 'object') {
      if (qos > 0) this.#answer(kept, p2p, done)
      return
    }
    waiting.add(weight)
    // what the callbacks hold is the weight, not the payload: a message waiting for Redis is held once, by its client
    kept.then((outcome) => {
      waiting.remove(weight)
      if (qos > 0) this.#answer(outcome, p2p, done)
    }, (err: unknown) => {
      waiting.remove(weight)
      // as for ordinary traffic: a store that fails is the sender's error, and it stays unacknowledged
      if (qos > 0) done(err as Error)
      else this.#log.error({ err }, 'P2P message not forwarded to the cluster')
    })
  }

  /** QoS 1/2 to a target not connected here as a clean session: queued first when it has a session. */
  #keep (p2p: P2PTopic, payload: Buffer, qos: 1 | 2, headers: MessageHeaders, connectedHere: boolean): Promise<Kept> {
    return this.#sessions.find(p2p.target, connectedHere).then((session) => {
      // not connected here: a client connected here has a session or took the clean path
      if (session === null) return this.#forward(p2p, payload, qos, undefined, headers)
      return this.#queue(p2p, this.#packets.pack(p2p.target, p2p.topic, payload, qos, headers), qos, headers)
    })
  }

  /** Appends to the target's queue, then writes to it here or hands it on; from here on the envelope is the only copy. */
  #queue (p2p: P2PTopic, stored: AedesPublishPacket, qos: 1 | 2, headers: MessageHeaders): Promise<Kept> {
    return this.#queues.enqueue(p2p.target, stored).then((admitted) => {
      if (!admitted) {
        // refused, so not acknowledged: MQTT 3.1.1 can say so only by closing the sender's connection
        this.#counters.dropped.queue_full++
        throw new P2PError('ERR_P2P_QUEUE_FULL', `P2P message not accepted: the queue of ${p2p.target} is full`)
      }
      const payload = unwrapPayload(stored.payload)?.payload ?? EMPTY
      const now = connectedClient(this.#broker, p2p.target)
      if (now === undefined || now.clean) return this.#forward(p2p, payload, qos, stored, headers)
      this.#delivery.deliver(now, p2p.topic, payload, qos, stored, headers)
      return 'delivered'
    })
  }

  /** Hands a message to the cluster strategy, and counts what became of it. */
  #forward (p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined, headers: MessageHeaders): Outcome | Promise<Outcome> {
    const outcome = this.#cluster.elsewhere(p2p, payload, qos, stored, headers)
    if (!(outcome instanceof Promise)) {
      this.#count(outcome, p2p)
      return outcome
    }
    return outcome.then((settled) => {
      this.#count(settled, p2p)
      return settled
    })
  }

  /** The sender's answer, once a QoS 1/2 message is kept or known to reach nobody. */
  #answer (outcome: Kept, p2p: P2PTopic, done: Answer): void {
    // reason strings name no id: one the sender chose could be as long as a packet
    if (outcome === 'no_session') done(null, Reason.noMatchingSubscribers, 'the target is not connected and has no session')
    else done()
  }

  #count (outcome: Outcome, p2p: P2PTopic): void {
    if (outcome !== 'no_session') {
      this.#counters[outcome]++
      return
    }
    this.#counters.dropped.no_session++
    this.#log.debug({ target: p2p.target, topic: p2p.topic }, 'P2P message dropped: target not connected and has no session')
  }

  /** Too much already waits on the store or the cluster: QoS 0 is dropped, QoS 1/2 is not acknowledged. */
  #unavailable (limit: Bound, p2p: P2PTopic, qos: 0 | 1 | 2, done: Answer): void {
    this.#counters.limits.hit(limit, { target: p2p.target })
    if (qos === 0) {
      this.#counters.dropped.cluster_unavailable++
      done()
      return
    }
    done(new P2PError('ERR_P2P_UNAVAILABLE', 'P2P message not accepted: too many messages wait for the cluster store'))
  }

  #drop (reason: DropReason, client: Client | null, topic: string, why: string): void {
    this.#counters.dropped[reason]++
    this.#clientWarnings.warn({ clientId: client?.id ?? null, topic, reason: why }, `P2P message dropped (${reason})`)
  }
}
