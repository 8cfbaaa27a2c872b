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
import { connectedClient, type PublishDone, type PublishFn } from './host.js'
import { WarnLimiter, type Logger } from './log.js'
import type { Queues } from './queues.js'
import type { Sessions } from './sessions.js'
import { TopicParser, type ParsedTopic as P2PParse, type P2PTopic } from './topic.js'

const DOLLAR = 36
const EMPTY = Buffer.alloc(0)
/**
 * Marks a QoS 1 packet beforeAck() has published, for the publish() Aedes
 * runs after its PUBACK to pass: a property, not a WeakSet, since a WeakSet
 * entry per message is work for every garbage collection.
 */
const ROUTED = Symbol('p2p routed')
type Marked = AedesPublishPacket & { [ROUTED]?: boolean }
/** what #parse() answers for a publish on a channel */
const CHANNEL = Symbol('channel')
type ParsedTopic = P2PParse | typeof CHANNEL

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
  /** P2P messages waiting on the store or the cluster, and their payload bytes */
  readonly #buffered = { messages: 0, bytes: 0 }
  readonly #maxBuffered: { messages: number, bytes: number }

  constructor (parser: TopicParser, parts: RouterParts) {
    this.#parser = parser
    this.#broker = parts.broker
    this.#hostPublish = parts.hostPublish
    this.#authorization = parts.authorization
    this.#sessions = parts.sessions
    this.#queues = parts.queues
    this.#delivery = parts.delivery
    this.#cluster = parts.cluster
    this.#maxBuffered = { messages: parts.cluster.maxBufferedMessages ?? Infinity, bytes: parts.cluster.maxBufferedBytes ?? Infinity }
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
   * hooks.ts calls it for a client's QoS 1 packets only.
   */
  beforeAck (packet: PublishPacket, client: Client, done: PublishDone): void {
    // the same object Aedes then hands to publish(); the fields read here are the ones both types share
    const publishing = packet as Marked
    publishing[ROUTED] = true
    const parsed = this.#parse(packet.topic, client)
    if (parsed === null) this.#hostPublish.call(this.#broker, publishing, client, done)
    else this.#route(parsed, publishing, client, done)
  }

  /** Aedes's publish, wrapped: `client` is null for server code and wills of clients already gone. */
  publish (packet: Marked, client: Client | null, done: PublishDone): void {
    if (packet.qos === 1 && packet[ROUTED] === true) {
      // set false rather than deleted: a packet keeps its shape
      packet[ROUTED] = false
      done()
      return
    }
    const parsed = this.#parse(packet.topic, client)
    if (parsed === null) {
      this.#hostPublish.call(this.#broker, packet, client, done)
      return
    }
    this.#route(parsed, packet, client, done)
  }

  /** The P2P topic a publish is for; null for one that goes on to Aedes as it is. */
  #parse (topic: string, client: Client | null): ParsedTopic | null {
    if (isChannel(topic)) return CHANNEL
    // The broker's own traffic on $-topics ($SYS heartbeats, the
    // persistence's broadcasts) is never P2P, whatever the keyword: a
    // suffix-form keyword such as 'sub' or 'new' would otherwise take it.
    return this.running && !(client === null && topic.charCodeAt(0) === DOLLAR) ? this.#parser.parse(topic) : null
  }

  #route (parsed: ParsedTopic, packet: AedesPublishPacket, client: Client | null, done: PublishDone): void {
    const topic = packet.topic
    if (parsed === CHANNEL) {
      // a forged channel message would bypass every check; nobody publishes here
      this.#drop('refused', client, topic, 'internal topic')
      done()
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
    // a check that answers later (the target's owner from the store, the
    // user's hook) holds the message meanwhile, within the same bound as
    // what waits on the store
    const size = payload.length
    const full = this.#full(size)
    if (full !== null) {
      this.#unavailable(full, parsed, qos, done)
      return
    }
    const buffered = this.#buffered
    buffered.messages++
    buffered.bytes += size
    void refusal.then((late) => {
      buffered.messages--
      buffered.bytes -= size
      this.#decide(late, client, topic, parsed, payload, qos, done)
    })
  }

  /** Which bound a message of `size` bytes would pass, if it waited now; null when it fits. */
  #full (size: number): 'max_buffered_messages' | 'max_buffered_bytes' | null {
    const buffered = this.#buffered
    if (buffered.messages >= this.#maxBuffered.messages) return 'max_buffered_messages'
    return buffered.bytes + size > this.#maxBuffered.bytes ? 'max_buffered_bytes' : null
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
    // a live copy to a clean session needs neither the envelope nor the store
    if (local !== undefined && (qos === 0 || local.clean)) {
      this.#delivery.deliver(local, p2p.topic, payload, qos, undefined)
      done()
      return
    }
    // everything below may wait on the store or the cluster: what waits is bounded
    const buffered = this.#buffered
    const size = payload.length
    const full = this.#full(size)
    if (full !== null) {
      this.#unavailable(full, p2p, qos, done)
      return
    }
    const kept = qos === 0 ? this.#forward(p2p, payload, qos, undefined) : this.#keep(p2p, payload, qos, local !== undefined)
    // QoS 0 is never queued and has no acknowledgement to wait for
    if (qos === 0 || kept === undefined) done()
    if (kept === undefined) return
    buffered.messages++
    buffered.bytes += size
    // what the callbacks hold is the size, not the payload: a message waiting for Redis is held once, by its client
    kept.then(() => {
      buffered.messages--
      buffered.bytes -= size
      if (qos > 0) done()
    }, (err: unknown) => {
      buffered.messages--
      buffered.bytes -= size
      // as for ordinary traffic: a store that fails is the sender's error, and it stays unacknowledged
      if (qos > 0) done(err as Error)
      else this.#log.error({ err }, 'P2P message not forwarded to the cluster')
    })
  }

  /** QoS 1/2 to a target not connected here as a clean session: queued first when it has a session. */
  #keep (p2p: P2PTopic, payload: Buffer, qos: 1 | 2, connectedHere: boolean): Promise<void> {
    return this.#sessions.find(p2p.target, connectedHere).then((session) => {
      // not connected here: a client connected here has a session or took the clean path
      if (session === null) return this.#forward(p2p, payload, qos, undefined)
      return this.#queue(p2p, this.#packets.pack(p2p.target, p2p.topic, payload, qos), qos)
    })
  }

  /** Appends to the target's queue, then writes to it here or hands it on; from here on the envelope is the only copy. */
  #queue (p2p: P2PTopic, stored: AedesPublishPacket, qos: 1 | 2): Promise<void> {
    return this.#queues.enqueue(p2p.target, stored).then((admitted) => {
      if (!admitted) {
        // refused, so not acknowledged: MQTT 3.1.1 can say so only by closing the sender's connection
        this.#counters.dropped.queue_full++
        throw new P2PError('ERR_P2P_QUEUE_FULL', `P2P message not accepted: the queue of ${p2p.target} is full`)
      }
      const payload = unwrapPayload(stored.payload)?.payload ?? EMPTY
      const now = connectedClient(this.#broker, p2p.target)
      if (now === undefined || now.clean) return this.#forward(p2p, payload, qos, stored)
      this.#delivery.deliver(now, p2p.topic, payload, qos, stored)
      return undefined
    })
  }

  /** Hands a message to the cluster strategy; undefined when it answered at once. */
  #forward (p2p: P2PTopic, payload: Buffer, qos: 0 | 1 | 2, stored: AedesPublishPacket | undefined): Promise<void> | undefined {
    const outcome = this.#cluster.elsewhere(p2p, payload, qos, stored)
    if (!(outcome instanceof Promise)) {
      this.#count(outcome, p2p)
      return undefined
    }
    return outcome.then((settled) => { this.#count(settled, p2p) })
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
  #unavailable (limit: 'max_buffered_messages' | 'max_buffered_bytes', p2p: P2PTopic, qos: 0 | 1 | 2, done: PublishDone): void {
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
