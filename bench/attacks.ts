/**
 * The attacks one broker is put through: readers that stop reading,
 * oversized packets, a flood into an offline session's queue. Each sets up
 * its clients, says when it begins (RSS is read from then on), then sends
 * within the bound. The clients are hand-made (harness/raw.ts): no library
 * would stop reading, or announce a 250 MB CONNECT.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { announcing, rawClient, rawSession, type RawClient } from '../harness/raw.js'
import type { HostileBroker } from './hostile-brokers.js'
import { pour, publishBody, type Bound, type Sent } from './pour.js'

export interface AttackContext {
  broker: HostileBroker
  bound: Bound
  /** called once the attack's clients are set up: RSS is read from here on */
  begin (): void
}

export interface AttackResult {
  sent: Sent
  notes?: string[]
  /** figures the report's targets are read from */
  measured?: Record<string, number>
}

export interface Attack {
  id: string
  what: string
  /** why plain Aedes is not put through it, where it is not */
  notPlain?: string
  /** how the CLI broker under attack starts, where not alone with its defaults */
  startCli?: () => Promise<HostileBroker>
  run (context: AttackContext): Promise<AttackResult>
}

const MiB = 1024 * 1024
const CONNECT = 1
const PUBLISH = 3
// how long an attack goes on watching after its last byte (and after a slow reader hangs up)
export const AFTERMATH_MS = 1000
// when the bystanders of an attack try their luck
export const PROBE_AFTER_MS = 500
const P2P_ONLY = 'P2P topics: plain Aedes has none (see the pub/sub rows)'

/** A logged-in client that floods: it reads what the broker writes and keeps none of it. */
export async function flooder (port: number, clientId: string): Promise<RawClient> {
  const client = await rawSession({ tcp: port }, { clientId })
  client.discardIncoming()
  return client
}

async function subscribe (client: RawClient, topic: string, qos: 0 | 1): Promise<void> {
  client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] })
  await client.next('suback')
}

const total = (all: Sent[]): Sent => ({
  bytes: all.reduce((sum, s) => sum + s.bytes, 0),
  messages: all.reduce((sum, s) => sum + s.messages, 0),
  seconds: Math.max(0, ...all.map((s) => s.seconds))
})

/**
 * Two clients with nothing to do with the attack: one subscribes, the other
 * publishes one message to it when asked, and how long it took to arrive
 * says whether the attack held up the rest of the broker.
 */
async function bystanders (port: number): Promise<(within: number) => Promise<string>> {
  const listener = await rawSession({ tcp: port }, { clientId: 'bystander-sub' })
  await subscribe(listener, 'calm', 0)
  const talker = await flooder(port, 'bystander-pub')
  return async (within) => {
    const started = performance.now()
    talker.send({ cmd: 'publish', topic: 'calm', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false })
    try {
      await listener.next('publish', within)
      return `a bystander's message, sent ${PROBE_AFTER_MS / 1000} s in, arrived after ${Math.round(performance.now() - started)} ms`
    } catch {
      return `a bystander's message, sent ${PROBE_AFTER_MS / 1000} s in, had not arrived ${(within / 1000).toFixed(1)} s later`
    } finally {
      listener.destroy()
      talker.destroy()
    }
  }
}

/**
 * Senders pour messages at a receiver that stopped reading its socket;
 * then the receiver hangs up, and a second goes by: plain Aedes 1.2 holds
 * a publisher, and a slot of its emitter, for each message a subscriber
 * has not taken, and releases them all at once when it goes.
 */
function slowReader (route: 'pubsub' | 'p2p', qos: 0 | 1, clean: boolean, { senders, payloadBytes } = { senders: 1, payloadBytes: 16 * 1024 }): Attack {
  const session = clean ? 'clean-session' : 'persistent'
  const size = payloadBytes >= 1024 ? `${payloadBytes / 1024} KB` : `${payloadBytes}-byte`
  const from = senders === 1 ? '' : ` from ${senders} senders`
  return {
    id: `slow-reader-${route}-q${qos}${qos === 0 ? '' : `-${session}`}${senders === 1 ? '' : '-many-small'}`,
    what: route === 'pubsub'
      ? `a subscriber that stops reading (${session}), ${size} publishes at QoS ${qos}${from}, then it hangs up`
      : `a P2P target that stops reading (${session}), ${size} messages at QoS ${qos}${from}, then it hangs up`,
    ...(route === 'p2p' ? { notPlain: P2P_ONLY } : {}),
    async run ({ broker, bound, begin }) {
      const target = await rawSession({ tcp: broker.port }, { clientId: 'slow', clean })
      const topic = route === 'p2p' ? 'p2p/slow/flood' : 'flood'
      if (route === 'pubsub') await subscribe(target, topic, qos)
      target.stopReading()
      const clients = await Promise.all(Array.from({ length: senders }, (_, i) => flooder(broker.port, `sender-${i}`)))
      const probe = await bystanders(broker.port)
      begin()
      const probed = sleep(PROBE_AFTER_MS).then(() => probe(bound.ms + AFTERMATH_MS))
      const each = { ms: bound.ms, bytes: Math.floor(bound.bytes / senders) }
      const sent = await Promise.all(clients.map((c) => pour(c.conn, publishBody(topic, payloadBytes, qos), each)))
      target.destroy()
      await sleep(AFTERMATH_MS)
      const notes = [await probed]
      for (const c of clients) c.destroy()
      return { sent: total(sent), notes }
    }
  }
}

/** A persistent session goes offline; one sender pours 1 KB QoS 1 messages into its queue. */
function offlineQueue (route: 'pubsub' | 'p2p'): Attack {
  return {
    id: `offline-queue-${route}`,
    what: route === 'pubsub'
      ? '1 KB QoS 1 publishes for an offline persistent subscriber'
      : '1 KB QoS 1 P2P messages for an offline persistent target',
    ...(route === 'p2p' ? { notPlain: P2P_ONLY } : {}),
    async run ({ broker, bound, begin }) {
      const target = await rawSession({ tcp: broker.port }, { clientId: 'offline', clean: false })
      const topic = route === 'p2p' ? 'p2p/offline/flood' : 'flood'
      if (route === 'pubsub') await subscribe(target, topic, 1)
      target.send({ cmd: 'disconnect' })
      await Promise.race([target.closed, sleep(2000)])
      target.destroy()
      const sender = await flooder(broker.port, 'sender')
      begin()
      const sent = await pour(sender.conn, publishBody(topic, 1024, 1), bound)
      await sleep(AFTERMATH_MS)
      sender.destroy()
      return { sent }
    }
  }
}

/** A logged-in client sends one PUBLISH of 100 MiB, in 1 MiB writes. */
const bigPublish: Attack = {
  id: 'big-publish',
  what: 'one 100 MB PUBLISH from a logged-in client',
  async run ({ broker, bound, begin }) {
    const sender = await flooder(broker.port, 'big')
    const topic = Buffer.from('big')
    const payload = 100 * MiB
    const length = Buffer.alloc(2)
    length.writeUInt16BE(topic.length)
    const head = Buffer.concat([announcing(PUBLISH, 2 + topic.length + payload), length, topic])
    begin()
    const sent = await pour(sender.conn, { head, body: Buffer.alloc(MiB), packetsPerBody: 0 }, { ...bound, bytes: Math.min(bound.bytes, head.length + payload) })
    await sleep(AFTERMATH_MS)
    sender.destroy()
    return { sent }
  }
}

/**
 * Six connections that never log in, each sending the start of a 250 MB
 * CONNECT; over TCP, or over WebSocket as 8 MB messages (frames).
 */
function bigConnects (transport: 'tcp' | 'ws'): Attack {
  const connections = 6
  return {
    id: transport === 'tcp' ? 'big-connects' : 'big-connects-ws',
    what: transport === 'tcp'
      ? `${connections} connections that never log in, each sending (the start of) a 250 MB CONNECT`
      : `the same over WebSocket: ${connections} connections sending 8 MB frames before any CONNECT`,
    async run ({ broker, bound, begin }) {
      const to = transport === 'tcp' ? { tcp: broker.port } : { ws: `ws://127.0.0.1:${broker.wsPort ?? 0}/mqtt` }
      const clients = await Promise.all(Array.from({ length: connections }, () => rawClient(to)))
      const chunk = transport === 'tcp' ? MiB : 8 * MiB
      const head = announcing(CONNECT, 250 * MiB)
      // over WebSocket each write is one message: the first carries the fixed header
      const first = transport === 'tcp' ? head : Buffer.concat([head, Buffer.alloc(chunk - head.length)])
      begin()
      const each = { ms: bound.ms, bytes: Math.min(250 * MiB + head.length, Math.floor(bound.bytes / connections)) }
      const sent = await Promise.all(clients.map((c) => pour(c.conn, { head: first, body: Buffer.alloc(chunk), packetsPerBody: 0 }, each)))
      await sleep(AFTERMATH_MS)
      const closed = clients.filter((c) => c.isClosed()).length
      for (const c of clients) c.destroy()
      return { sent: total(sent), notes: [`${closed} of ${connections} connections closed by the broker`] }
    }
  }
}

/** In the order the report lists them. */
export const ATTACKS: readonly Attack[] = [
  slowReader('pubsub', 0, true),
  slowReader('pubsub', 1, false),
  slowReader('pubsub', 0, true, { senders: 4, payloadBytes: 16 }),
  slowReader('p2p', 0, true),
  slowReader('p2p', 1, true),
  slowReader('p2p', 1, false),
  bigPublish,
  bigConnects('tcp'),
  bigConnects('ws'),
  offlineQueue('pubsub'),
  offlineQueue('p2p')
]
