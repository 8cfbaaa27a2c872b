/**
 * Classic PUBLISH on a Redis Cluster, for the ordinary topics that
 * mqemitter-redis carries. A PUBLISH names no key, so ioredis sends each to
 * a node at random, and each node relays it to the others over its own bus
 * link: two messages from one broker can then arrive in either order. Aedes
 * takes a packet from a broker whose counter is not above the last one it
 * saw as a duplicate and drops it, so reordered messages would be lost. So
 * a node publishes through one cluster node, the same while it stays, and
 * its messages arrive in the order they were sent.
 */
import type { Cluster as RedisCluster, Redis } from 'ioredis'

export function onePublisher (cluster: RedisCluster): RedisCluster {
  let current: Redis | undefined
  const publisher = (): Redis | undefined => {
    if (current !== undefined && current.status !== 'end' && cluster.nodes('all').includes(current)) return current
    // the same node for every broker is as good as any: sorted, not sampled
    current = cluster.nodes('master').sort((a, b) => nodeKey(a).localeCompare(nodeKey(b)))[0]
    return current
  }
  const publish = async (channel: string | Buffer, message: string | Buffer): Promise<number> => {
    // before the cluster knows its nodes, the command waits in its queue like any other
    const node = cluster.status === 'ready' ? publisher() : undefined
    if (node === undefined) return await cluster.publish(channel, message)
    try {
      return await node.publish(channel, message)
    } catch (err) {
      // the node left the cluster with this command unanswered: once more, through whichever node serves now
      if (node.status !== 'end' && cluster.nodes('all').includes(node)) throw err
      current = undefined
      return await cluster.publish(channel, message)
    }
  }
  return new Proxy(cluster, {
    get (target, property, receiver) {
      if (property === 'publish') return publish
      const value: unknown = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

function nodeKey (node: Redis): string {
  return `${node.options.host ?? ''}:${node.options.port ?? 0}`
}
