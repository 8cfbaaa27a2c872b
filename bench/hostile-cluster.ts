/**
 * Redis away: two CLI nodes sharing a Redis, a target on node 2 and a sender
 * on node 1, both connected while Redis is up. Then Redis is killed
 * (SIGKILL) and the sender pours 16 KB QoS 0 P2P messages at the target:
 * whatever node 1 keeps for a cluster that cannot take them is what grows.
 * Half a second in, a new client connects to each node: the time it waits
 * for an answer (SPEC §7: within 2 s) is reported beside the memory.
 *
 * The broker the hostile part watches is node 1, the sender's; node 2's
 * memory is a note.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { startRedis, type TestRedis } from '../harness/redis.js'
import { answerTo, rawSession, type Answer } from '../harness/raw.js'
import { AFTERMATH_MS, flooder, PROBE_AFTER_MS, type Attack } from './attacks.js'
import { startCliBroker, type HostileBroker } from './hostile-brokers.js'
import { pour, publishBody } from './pour.js'
import { countedText, deathCause, megabytes } from './report.js'
import { watchRss } from './rss-watch.js'
import { startAll } from './scenario.js'

// long enough for node 2's subscription to the target's channel to reach Redis
const SETTLE_MS = 300

interface Cluster { redis: TestRedis, nodes: [HostileBroker, HostileBroker] }

const said = ({ code, ms }: Answer): string => `${code === null ? 'no answer' : `CONNACK ${code}`} after ${Math.round(ms)} ms`

export function redisAway (): Attack {
  let cluster: Cluster | undefined
  return {
    id: 'redis-away',
    what: 'two cluster nodes, Redis killed; a sender on node 1 pours 16 KB QoS 0 P2P messages at a target on node 2',
    notPlain: 'a cluster: plain Aedes has no Redis cluster of its own',
    async startCli () {
      const redis = await startRedis({ durable: false })
      try {
        const start = (): Promise<HostileBroker> => startCliBroker(['--redis', redis.url])
        const nodes = await startAll([start, start], (node) => node.stop()) as [HostileBroker, HostileBroker]
        cluster = { redis, nodes }
      } catch (err) {
        await redis.stop()
        throw err
      }
      const [node1, node2] = cluster.nodes
      return {
        ...node1,
        async stop () {
          await Promise.all([node1.stop(), node2.stop(), redis.stop()])
        }
      }
    },
    async run ({ bound, begin }) {
      if (cluster === undefined) throw new Error('the cluster was not started')
      const { redis, nodes: [node1, node2] } = cluster
      const target = await rawSession({ tcp: node2.port }, { clientId: 'far' })
      target.discardIncoming()
      const sender = await flooder(node1.port, 'sender')
      await sleep(SETTLE_MS)
      await redis.stop()
      begin()
      const other = watchRss(node2.pid)
      const probes = sleep(PROBE_AFTER_MS).then(() => Promise.all([node1, node2].map((node, i) => answerTo({ tcp: node.port }, { clientId: `late-${i + 1}` }))))
      const sent = await pour(sender.conn, publishBody('p2p/far/flood', 16 * 1024, 0), bound)
      await sleep(AFTERMATH_MS)
      const [late1, late2] = await probes as [Answer, Answer]
      const seen = other.stop()
      sender.destroy()
      target.destroy()
      const ended2 = node2.ended()
      const notes = [
        `a client connecting while Redis is away: node 1 ${said(late1)}, node 2 ${said(late2)}`,
        `node 2 (the target's): +${megabytes(seen.peak - seen.before)} (peak ${megabytes(seen.peak)}), counted ${countedText(await node2.counted())}` +
          (ended2 === null ? '' : `, then **died**: ${deathCause(ended2)}`)
      ]
      const answers = [late1, late2]
      const measured = { answerMs: Math.round(Math.max(...answers.map((a) => a.ms))), unanswered: answers.filter((a) => a.code === null).length }
      return { sent, notes, measured }
    }
  }
}
