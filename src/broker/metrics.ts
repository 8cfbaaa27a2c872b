/**
 * Prometheus metrics (docs/behaviour.md §6) from prom-client, read from the plugin's
 * counters at scrape time so the publish path never touches the registry.
 */
import type { Aedes } from 'aedes'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import { DROP_REASONS } from '../plugin/counters.js'
import type { LimitHits } from '../plugin/limits.js'
import type { P2PHandle } from '../plugin/register.js'

/** What the broker itself counts beside the plugin. */
export interface BrokerCounts {
  /** the limits the broker keeps on connections and admission */
  hits: LimitHits
  connections: { readonly open: number }
}

export function createMetrics (broker: Aedes, plugin: P2PHandle, own: BrokerCounts): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const total = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect () {
        this.reset()
        this.inc(read())
      }
    })
  }
  total('p2p_messages_received_total', 'P2P publishes received, including dropped ones', () => plugin.counters.received)
  total('p2p_messages_delivered_total', 'P2P messages written to their target', () => plugin.counters.delivered)
  total('p2p_messages_forwarded_total', 'P2P messages sent through the cluster to a target on another node', () => plugin.counters.forwarded)
  total('p2p_messages_queued_total', 'P2P messages queued for a target that was offline', () => plugin.counters.queued)

  new Counter({
    name: 'p2p_messages_dropped_total',
    help: 'P2P messages dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect () {
      const dropped = plugin.counters.dropped
      this.reset()
      for (const reason of DROP_REASONS) this.inc({ reason }, dropped[reason])
    }
  })

  new Counter({
    name: 'mqtt_limit_hits_total',
    help: 'Times a limit bit (docs/behaviour.md §7), by its [limits] or [cluster] key; cluster_unavailable counts clients refused while Redis was away',
    labelNames: ['limit'],
    registers: [registry],
    collect () {
      this.reset()
      const hits = { ...plugin.counters.limits }
      for (const [limit, n] of Object.entries(own.hits.snapshot())) hits[limit] = (hits[limit] ?? 0) + n
      for (const [limit, n] of Object.entries(hits)) this.inc({ limit }, n)
    }
  })

  new Gauge({
    name: 'mqtt_connections_open',
    help: 'MQTT connections open, logged in or not; limits.max_connections bounds them',
    registers: [registry],
    collect () { this.set(own.connections.open) }
  })

  new Gauge({
    name: 'mqtt_clients_connected',
    help: 'MQTT clients connected to this broker',
    registers: [registry],
    collect () { this.set(broker.connectedClients) }
  })
  return registry
}
