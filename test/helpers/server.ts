/** The full broker (listeners, auth, admin) in-process, on free loopback ports. */
import { afterEach } from 'node:test'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { startServer, type RunningBroker } from '../../src/broker/server.js'
import { defaultSettings, type Settings } from '../../src/broker/settings.js'

export interface TestServer extends RunningBroker {
  logs: Array<Record<string, unknown>>
}

type Patch = { [K in keyof Settings]?: Partial<Settings[K]> }

export function testSettings (patch: Patch = {}): Settings {
  const base = defaultSettings()
  return {
    plugin: { ...base.plugin, ...patch.plugin },
    broker: { ...base.broker, ...patch.broker },
    listeners: { ...base.listeners, port: 0, ...patch.listeners },
    users: (patch.users as Settings['users'] | undefined) ?? base.users,
    auth: { ...base.auth, ...patch.auth },
    acl: (patch.acl as Settings['acl'] | undefined) ?? base.acl,
    admin: { ...base.admin, ...patch.admin },
    limits: { ...base.limits, ...patch.limits },
    persistence: { ...base.persistence, ...patch.persistence },
    cluster: { ...base.cluster, ...patch.cluster },
    log: { ...base.log, level: 'debug', ...patch.log }
  }
}

/** For a test file: a fresh server per test, closed after the test. */
export function serverPerTest (): (patch?: Patch, loadSettings?: () => Promise<Settings>) => Promise<TestServer> {
  let current: TestServer | undefined
  afterEach(async () => {
    await current?.close()
    current = undefined
  })
  return async (patch, loadSettings) => {
    const logs: Array<Record<string, unknown>> = []
    const sink = new Writable({
      write (chunk: Buffer, _enc, cb) {
        logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
        cb()
      }
    })
    const settings = testSettings(patch)
    const running = await startServer({ settings, log: pino({ level: settings.log.level }, sink), loadSettings })
    current = Object.assign(running, { logs })
    return current
  }
}

/** How often a limit has bitten, as /metrics reports it (mqtt_limit_hits_total). */
export async function limitHits (s: RunningBroker, limit: string): Promise<number> {
  const metric = await s.metrics.getSingleMetric('mqtt_limit_hits_total')?.get()
  return metric?.values.find((v) => v.labels.limit === limit)?.value ?? 0
}
