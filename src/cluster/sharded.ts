/**
 * Client channels on Redis Cluster's sharded pub/sub (docs/behaviour.md
 * §10). In a Redis Cluster a classic PUBLISH is broadcast to every shard, so
 * per-client channels would not keep a message to one node; an SPUBLISH stays
 * on the shard that owns the channel's slot and reaches only the nodes that
 * SSUBSCRIBEd there, and it answers how many it reached: 0 means no node holds
 * the target, exactly. Ordinary topics stay on mqemitter-redis.
 *
 * A channel message is the channel packet, encoded here: the channel is the
 * packet's topic, and what a stored packet needs to be found again in the
 * target's queue (its broker id and counter) travels with the envelope.
 */
import type { AedesPublishPacket } from 'aedes'
import type { Cluster as RedisCluster } from 'ioredis'
import type { Logger } from '../plugin/log.js'
import type { ChannelTransport } from './emitter.js'

const VERSION = 1
const RETRY_FIRST_MS = 100
const RETRY_MAX_MS = 5000

export function shardedChannels (sub: RedisCluster, pub: RedisCluster, log: Logger, heardAgain?: (then: () => void) => void): ChannelTransport {
  const arrivals = new Map<string, (packet: AedesPublishPacket) => void>()
  sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => {
    const name = channel.toString()
    const arrive = arrivals.get(name)
    if (arrive === undefined) return
    const packet = decodePacket(name, message)
    // only nodes write here; anything else is dropped, as the envelope's reader drops what it cannot read
    if (packet === null) log.warn({ channel: name }, 'dropped a channel message this node cannot read')
    else arrive(packet)
  })
  return {
    listen (channel, arrive, subscribed) {
      arrivals.set(channel, arrive)
      // While Redis is away the command waits in ioredis's queue, and the
      // client is served locally meanwhile. ioredis fails what it queued when
      // a connection attempt fails, though, and a channel nobody listens on
      // loses what is sent to it: it is asked again, for as long as the
      // client is here.
      let delay = RETRY_FIRST_MS
      const wanted = (): boolean => arrivals.get(channel) === arrive
      const attempt = (): void => {
        // the client may have gone while a retry waited
        if (!wanted()) return
        sub.ssubscribe(channel).then(() => {
          subscribed(true)
          // it went while the subscription was being made: it goes too
          if (!wanted() && !arrivals.has(channel)) sub.sunsubscribe(channel).catch(() => {})
        }, (err: unknown) => {
          subscribed(false)
          if (!wanted()) return
          log.warn({ err: (err as Error).message, channel, retryMs: delay }, 'could not listen on a client channel yet: asking again')
          setTimeout(attempt, delay).unref()
          delay = Math.min(delay * 2, RETRY_MAX_MS)
        })
      }
      attempt()
    },
    unlisten (channel) {
      arrivals.delete(channel)
      sub.sunsubscribe(channel).catch(() => { /* the connection went: the subscription went with it */ })
    },
    async send (packet) {
      return await pub.spublish(packet.topic, encodePacket(packet)) as number
    },
    heardAgain
  }
}

/** [version][qos][broker id length, 2 bytes][broker id][broker counter, float64][envelope] */
export function encodePacket (packet: AedesPublishPacket): Buffer {
  const source = Buffer.from(packet.brokerId ?? '')
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
  const head = Buffer.allocUnsafe(4 + source.length + 8)
  head[0] = VERSION
  head[1] = packet.qos
  head.writeUInt16BE(source.length, 2)
  source.copy(head, 4)
  head.writeDoubleBE(packet.brokerCounter ?? 0, 4 + source.length)
  return Buffer.concat([head, payload])
}

export function decodePacket (channel: string, message: Buffer): AedesPublishPacket | null {
  if (message.length < 12 || message[0] !== VERSION) return null
  const qos = message[1]
  const sourceLength = message.readUInt16BE(2)
  if ((qos !== 0 && qos !== 1 && qos !== 2) || message.length < 4 + sourceLength + 8) return null
  return {
    cmd: 'publish',
    topic: channel,
    payload: message.subarray(4 + sourceLength + 8),
    qos,
    retain: false,
    dup: false,
    brokerId: message.toString('utf8', 4, 4 + sourceLength),
    brokerCounter: message.readDoubleBE(4 + sourceLength)
  } as AedesPublishPacket
}
