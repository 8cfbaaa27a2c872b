/**
 * The public API's types, as a user of the package sees them: imported by
 * the package's name, so these check the declaration files it ships (dist/).
 */
import type { Aedes, Client } from 'aedes'
import { describe, expect, test } from 'tstyche'
import {
  ConfigError,
  emitterCluster,
  P2PError,
  register,
  standalone,
  type Cluster,
  type CounterSnapshot,
  type MessageHeaders,
  type PublishProperties,
  type ReceiverCount,
  type PluginLimits,
  type P2PErrorCode,
  type P2PHandle,
  type P2PMessage,
  type P2POptions,
  type PluginConfig
} from 'aedes-p2p-messaging'
import * as api from 'aedes-p2p-messaging'

declare const broker: Aedes
declare const p2p: P2PHandle

describe('register()', () => {
  test('takes an Aedes broker and resolves to the handle', () => {
    expect(register(broker)).type.toBe<Promise<P2PHandle>>()
    expect(register).type.toBeCallableWith(broker, {})
  })

  test('takes every documented option', () => {
    expect(register).type.toBeCallableWith(broker, {
      mode: 'both',
      keyword: 'direct',
      rules: [{ action: 'allow', target_user: '${username}' }, { action: 'deny', target: 'admin*' }],
      configFile: './rmqtt-p2p-messaging.toml',
      authorize: (m: P2PMessage) => m.target !== 'admin',
      users: { usernameOf: (client: Client) => client.id.split('-')[0], enabled: () => true },
      immutable: true,
      startup: false,
      cluster: emitterCluster({ max_buffered_messages: 100 }),
      limits: { max_queued_messages: 100, message_expiry: 86_400 },
      logger: console
    })
  })

  test('lets the authorize hook answer later', () => {
    expect(register).type.toBeCallableWith(broker, { authorize: async (m: P2PMessage) => m.qos > 0 })
  })

  test('refuses what is not an option', () => {
    expect(register).type.not.toBeCallableWith(broker, { mdoe: 'both' })
    expect(register).type.not.toBeCallableWith(broker, { mode: 'sideways' })
    expect(register).type.not.toBeCallableWith(broker, { rules: [{ action: 'maybe' }] })
    expect(register).type.not.toBeCallableWith(broker, { authorize: (m: P2PMessage) => m.target })
    expect(register).type.not.toBeCallableWith(broker, { limits: { max_queue: 1 } })
    expect(register).type.not.toBeCallableWith(broker, { rules: [{ action: 'allow', target_owner: 'x' }] })
    expect(register).type.not.toBeCallableWith(broker, { users: { has: () => true } })
    expect(emitterCluster).type.not.toBeCallableWith({ max_buffered: 1 })
  })
})

describe('the handle', () => {
  test('reports the config and the counters', () => {
    expect(p2p.config).type.toBe<Readonly<PluginConfig>>()
    expect(p2p.counters).type.toBe<CounterSnapshot>()
    expect(p2p.counters.dropped).type.toBe<Record<'malformed' | 'no_session' | 'refused' | 'queue_full' | 'slow_consumer' | 'expired' | 'cluster_unavailable' | 'too_large', number>>()
    expect(p2p.counters.limits).type.toBe<Record<string, number>>()
    expect(p2p.limits).type.toBe<Readonly<PluginLimits>>()
    expect(p2p).type.toHaveProperty('running')
  })

  test('reloads from an object with some keys, or from a file', () => {
    expect(p2p.reload({ mode: 'suffix' })).type.toBe<Promise<Readonly<PluginConfig>>>()
    expect(p2p.reload).type.toBeCallableWith('p2p.toml')
    expect(p2p.reload).type.toBeCallableWith()
    expect(p2p.reload).type.not.toBeCallableWith({ mode: 'sideways' })
  })

  test('ends the sessions of users that may no longer hold them', () => {
    expect(p2p.endSessions((username, clientId) => username === 'gone' || clientId === 'x')).type.toBe<Promise<number>>()
  })
})

describe('errors', () => {
  test('carry a stable code, and a config error the key at fault', () => {
    expect<P2PError['code']>().type.toBe<P2PErrorCode>()
    expect<'ERR_P2P_CONFIG'>().type.toBeAssignableTo<P2PErrorCode>()
    expect<'ERR_P2P_UNAVAILABLE'>().type.toBeAssignableTo<P2PErrorCode>()
    expect<ConfigError>().type.toBeAssignableTo<P2PError>()
    expect<ConfigError['key']>().type.toBe<string>()
  })
})

describe('cluster strategies', () => {
  test('standalone() and emitterCluster() are strategies register() takes', () => {
    expect(standalone()).type.toBe<Cluster>()
    expect(emitterCluster()).type.toBe<Cluster>()
  })

  test('a strategy of one\'s own fits', () => {
    const mine: Cluster = { indexMayLag: false, attach () {}, elsewhere: () => 'no_session' }
    expect(register).type.toBeCallableWith(broker, { cluster: mine } satisfies P2POptions)
  })

  test('a strategy is handed who sent a message, its expiry and its MQTT 5 properties', () => {
    const mine: Cluster = {
      indexMayLag: false,
      attach () {},
      elsewhere: (_p2p, _payload, _qos, _stored, headers) => {
        expect(headers).type.toBe<MessageHeaders>()
        expect(headers.sender).type.toBe<string>()
        expect(headers.properties?.userProperties).type.toBe<PublishProperties['userProperties']>()
        return 'forwarded'
      }
    }
    expect(mine).type.toBeAssignableTo<Cluster>()
  })

  test('emitterCluster() may be told how many nodes a message reached', () => {
    const counting: ReceiverCount = { counting (emit) { emit(); return { count: 1 } } }
    expect(emitterCluster).type.toBeCallableWith({}, counting)
  })
})

describe('what the package exports', () => {
  test('the API only, not the internals', () => {
    expect(api).type.toHaveProperty('register')
    expect(api).type.toHaveProperty('SENDER_PROPERTY')
    expect(api).type.not.toHaveProperty('TopicParser')
    expect(api).type.not.toHaveProperty('Router')
    expect(api).type.not.toHaveProperty('checkHost')
  })
})
