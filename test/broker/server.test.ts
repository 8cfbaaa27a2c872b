/** The broker people run: listeners, auth, metrics, admin API, reload. */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { CONFIG_PATH, RELOAD_PATH } from '../../src/broker/admin/api.js'
import { loadSettings } from '../../src/broker/settings.js'
import { hashPassword, verifyPassword } from '../../src/broker/users.js'
import { INVALID_MODE } from '../../src/index.js'
import { connectClient } from '../helpers/broker.js'
import { tempFile } from '../helpers/files.js'
import { collect, waitFor } from '../helpers/messages.js'
import { serverPerTest, testSettings, type TestServer } from '../helpers/server.js'
import { testCertificate } from '../helpers/tls.js'

const server = serverPerTest()

async function connectUrl (url: string, clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId, protocolVersion: 4, reconnectPeriod: 0, ...options })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('error', reject)
  })
  return client
}

async function p2pBetween (alice: MqttClient, bob: MqttClient): Promise<void> {
  const got = collect(bob)
  await alice.publishAsync(`p2p/${bob.options.clientId ?? ''}/hello`, 'hi', { qos: 1 })
  await waitFor(got, 1)
  assert.equal(got[0]?.topic, 'hello')
  await alice.endAsync()
  await bob.endAsync()
}

function admin (s: TestServer): (path: string, init?: RequestInit) => Promise<Response> {
  const { port } = s.addresses.admin ?? { port: 0 }
  return async (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init)
}

describe('listeners', () => {
  it('serves MQTT over WebSocket at /mqtt, as browsers and MQTT.js connect', async () => {
    const s = await server({ listeners: { ws_port: 0 } })
    const url = `ws://127.0.0.1:${s.addresses.ws?.port}/mqtt`
    await p2pBetween(await connectUrl(url, 'alice'), await connectUrl(url, 'bob'))
  })

  it('delivers between a WebSocket client and a TCP client', async () => {
    const s = await server({ listeners: { ws_port: 0 } })
    const alice = await connectUrl(`ws://127.0.0.1:${s.addresses.ws?.port}/mqtt`, 'alice')
    const bob = await connectClient(s.addresses.mqtt?.port ?? 0, 'bob')
    await p2pBetween(alice, bob)
  })

  it('serves MQTT over TLS with the configured certificate', async () => {
    const tls = await testCertificate()
    const s = await server({ listeners: { tls_port: 0, tls_cert: tls.cert, tls_key: tls.key } })
    const url = `mqtts://127.0.0.1:${s.addresses.mqtts?.port}`
    const alice = await connectUrl(url, 'alice', { ca: tls.pem })
    const bob = await connectUrl(url, 'bob', { ca: tls.pem })
    await p2pBetween(alice, bob)
  })

  it('can run without the TCP listener', async () => {
    const s = await server({ listeners: { port: false, ws_port: 0 } })
    assert.equal(s.addresses.mqtt, undefined)
    assert.ok(s.addresses.ws)
  })

  it('refuses an unusable TLS file, naming the one at fault', async () => {
    const [mine, other] = [await testCertificate(), await testCertificate()]
    const garbage = await tempFile('garbage.pem', 'not a PEM file\n')
    const cases: Array<[string, string, string]> = [
      [garbage, mine.key, 'listeners.tls_cert'],
      [mine.cert, garbage, 'listeners.tls_key'],
      [mine.cert, mine.cert, 'listeners.tls_key'],
      [mine.cert, other.key, 'listeners.tls_key']
    ]
    for (const [cert, key, at] of cases) {
      await assert.rejects(server({ listeners: { tls_port: 0, tls_cert: cert, tls_key: key } }), { code: 'ERR_P2P_CONFIG', key: at })
    }
  })

  it('refuses a TLS listener without certificate and key before listening', async () => {
    const path = await tempFile('tls.toml', '[listeners]\ntls_port = 0\n')
    await assert.rejects(loadSettings(path), { code: 'ERR_P2P_CONFIG', key: 'listeners.tls_cert', message: /needs both listeners\.tls_cert and listeners\.tls_key/ })
  })
})

describe('authentication', () => {
  it('stores passwords as salted hashes that verify', async () => {
    const a = await hashPassword('secret')
    const b = await hashPassword('secret')
    assert.notEqual(a, b, 'salted')
    assert.ok(!a.includes('secret'))
    assert.equal(await verifyPassword(Buffer.from('secret'), a), true)
    assert.equal(await verifyPassword(Buffer.from('Secret'), a), false)
  })

  it('accepts a configured user with the right password', async () => {
    const s = await server({ users: [{ username: 'alice', password: await hashPassword('pw') }] } as never)
    const client = await connectClient(s.addresses.mqtt?.port ?? 0, 'c1', { username: 'alice', password: 'pw' })
    assert.ok(client.connected)
    await client.endAsync()
  })

  it('refuses anonymous clients with "not authorized" when users are configured', async () => {
    const s = await server({ users: [{ username: 'alice', password: await hashPassword('pw') }] } as never)
    await assert.rejects(connectClient(s.addresses.mqtt?.port ?? 0, 'anon'), (err: Error & { code?: number }) => err.code === 5)
  })

  it('refuses a wrong password with "bad user name or password"', async () => {
    const s = await server({ users: [{ username: 'alice', password: await hashPassword('pw') }] } as never)
    await assert.rejects(connectClient(s.addresses.mqtt?.port ?? 0, 'c1', { username: 'alice', password: 'nope' }), (err: Error & { code?: number }) => err.code === 4)
    await assert.rejects(connectClient(s.addresses.mqtt?.port ?? 0, 'c2', { username: 'mallory', password: 'pw' }), (err: Error & { code?: number }) => err.code === 4)
  })

  it('lets anonymous clients in when no users are configured', async () => {
    const s = await server()
    const client = await connectClient(s.addresses.mqtt?.port ?? 0, 'anon')
    assert.ok(client.connected)
    await client.endAsync()
  })

  it('refuses plain-text passwords in the config', async () => {
    const path = await tempFile('users.toml', '[[users]]\nusername = "alice"\npassword = "hunter2"\n')
    await assert.rejects(loadSettings(path), { code: 'ERR_P2P_CONFIG', key: 'users[0].password', message: /must be a hash from `aedes-p2p hash-password`/ })
  })
})

describe('metrics and admin API', () => {
  it('reports P2P counters and connected clients at /metrics after known traffic', async () => {
    const s = await server({ admin: { port: 0 } })
    const port = s.addresses.mqtt?.port ?? 0
    const alice = await connectClient(port, 'alice')
    const bob = await connectClient(port, 'bob')
    const got = collect(bob)
    await alice.publishAsync('p2p/bob/a', '1', { qos: 1 })
    await alice.publishAsync('p2p/bob/b', '2', { qos: 1 })
    await alice.publishAsync('p2p//x', '3', { qos: 1 })
    await alice.publishAsync('p2p/ghost/x', '4', { qos: 1 })
    await waitFor(got, 2)
    const res = await admin(s)('/metrics')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/)
    const text = await res.text()
    const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1])
    assert.equal(value('p2p_messages_received_total'), 4)
    assert.equal(value('p2p_messages_delivered_total'), 2)
    assert.equal(value('p2p_messages_queued_total'), 0)
    assert.equal(value('p2p_messages_dropped_total{reason="malformed"}'), 1)
    assert.equal(value('p2p_messages_dropped_total{reason="no_session"}'), 1)
    assert.equal(value('p2p_messages_dropped_total{reason="refused"}'), 0)
    assert.equal(value('mqtt_clients_connected'), 2)
    assert.match(text, /^process_cpu_seconds_total /m)
    await alice.endAsync()
    await bob.endAsync()
  })

  it('reports limit hits, open connections and every drop reason at /metrics', async () => {
    const s = await server({ admin: { port: 0 }, limits: { max_connections: 2 } })
    const port = s.addresses.mqtt?.port ?? 0
    const alice = await connectClient(port, 'alice')
    const bob = await connectClient(port, 'bob')
    await assert.rejects(connectClient(port, 'carol'), /Server unavailable/)
    const text = await (await admin(s)('/metrics')).text()
    const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1])
    assert.equal(value('mqtt_limit_hits_total{limit="max_connections"}'), 1)
    assert.equal(value('mqtt_connections_open'), 2)
    for (const reason of ['malformed', 'no_session', 'refused', 'queue_full', 'slow_consumer', 'expired', 'cluster_unavailable', 'too_large']) {
      assert.equal(value(`p2p_messages_dropped_total{reason="${reason}"}`), 0, reason)
    }
    await alice.endAsync()
    await bob.endAsync()
  })

  it('answers /health', async () => {
    const s = await server({ admin: { port: 0 } })
    const res = await admin(s)('/health')
    assert.equal(res.status, 200)
    assert.equal((await res.json() as { status: string }).status, 'ok')
  })

  it('returns the plugin config', async () => {
    const s = await server({ admin: { port: 0 }, plugin: { mode: 'both' } })
    const res = await admin(s)(CONFIG_PATH)
    assert.deepEqual(await res.json(), { mode: 'both', keyword: 'p2p', rules: [] })
  })

  it('re-reads the config file on PUT reload, and the new mode applies to the next PUBLISH', async () => {
    const path = await tempFile('reload.toml', 'mode = "prefix"\n')
    const s = await server({ admin: { port: 0 } }, async () => testSettings({ ...(await loadSettings(path)), admin: { port: 0 } }))
    const port = s.addresses.mqtt?.port ?? 0
    const alice = await connectClient(port, 'alice')
    const bob = await connectClient(port, 'bob')
    await writeFile(path, 'mode = "suffix"\n')
    const res = await admin(s)(RELOAD_PATH, { method: 'PUT' })
    assert.equal(res.status, 200)
    assert.equal((await res.json() as { config: { mode: string } }).config.mode, 'suffix')
    await p2pBetweenSuffix(alice, bob)
  })

  it('refuses a bad reload with a clear error and keeps the running config', async () => {
    const path = await tempFile('bad-reload.toml', 'mode = "both"\n')
    const s = await server({ admin: { port: 0 }, plugin: { mode: 'both' } }, async () => loadSettings(path))
    await writeFile(path, 'mode = "sideways"\n')
    const res = await admin(s)(RELOAD_PATH, { method: 'PUT' })
    assert.equal(res.status, 400)
    const body = await res.json() as { reloaded: boolean, error: string, code: string }
    assert.equal(body.reloaded, false)
    assert.equal(body.code, 'ERR_P2P_CONFIG')
    assert.ok(body.error.endsWith(INVALID_MODE), body.error)
    assert.equal(s.plugin.config.mode, 'both')
  })

  it('answers 400 to a reload when the broker has no config file to read', async () => {
    const s = await server({ admin: { port: 0 } })
    const res = await admin(s)(RELOAD_PATH, { method: 'PUT' })
    assert.equal(res.status, 400)
    assert.equal((await res.json() as { code: string }).code, 'ERR_P2P_CONFIG')
  })

  it('answers 500 to a reload that fails for any reason but a bad config, and keeps the running config', async () => {
    const s = await server({ admin: { port: 0 }, plugin: { mode: 'both' } }, async () => { throw new Error('disk on fire') })
    const res = await admin(s)(RELOAD_PATH, { method: 'PUT' })
    assert.equal(res.status, 500)
    const body = await res.json() as { reloaded: boolean, error: string, code: string | null }
    assert.deepEqual(body, { reloaded: false, error: 'disk on fire', code: null })
    assert.equal(s.plugin.config.mode, 'both')
  })

  it('warns on each reload that a new [log] format takes a restart', async () => {
    const s = await server({}, async () => testSettings({ log: { format: 'pretty' } }))
    await s.reload()
    await s.reload()
    const warned = s.logs.filter((l) => l.msg === '[log] format changed: it takes effect after a restart')
    assert.equal(warned.length, 2, 'until the restart, the format in use is still the old one')
  })

  it('requires the bearer token when one is set, except for /health', async () => {
    const s = await server({ admin: { port: 0, token: 's3cret' } })
    const get = admin(s)
    assert.equal((await get('/metrics')).status, 401)
    assert.equal((await get(CONFIG_PATH, { headers: { Authorization: 'Bearer wrong' } })).status, 401)
    assert.equal((await get(CONFIG_PATH, { headers: { Authorization: 'Bearer s3cret' } })).status, 200)
    assert.equal((await get('/health')).status, 200)
  })

  it('answers unknown paths with 404 and wrong methods with 405', async () => {
    const s = await server({ admin: { port: 0 } })
    assert.equal((await admin(s)('/nope')).status, 404)
    assert.equal((await admin(s)(RELOAD_PATH)).status, 405)
  })

  it('refuses an admin API on a non-loopback address without a token', async () => {
    const network = [{ key: 'admin.port', value: '0', where: '--admin-port' }, { key: 'admin.host', value: '0.0.0.0', where: '--admin-host' }] as const
    await assert.rejects(loadSettings(undefined, network), { code: 'ERR_P2P_CONFIG', key: 'admin.token', message: /set admin\.token/ })
    const ok = await loadSettings(undefined, [...network, { key: 'admin.token', value: 't', where: '--admin-token' }])
    assert.equal(ok.admin.token, 't')
  })
})

async function p2pBetweenSuffix (alice: MqttClient, bob: MqttClient): Promise<void> {
  const got = collect(bob)
  await alice.publishAsync('hello/p2p/bob', 'hi', { qos: 1 })
  await waitFor(got, 1)
  assert.equal(got[0]?.topic, 'hello')
  assert.ok(alice.connected && bob.connected, 'reload kept the clients')
  await alice.endAsync()
  await bob.endAsync()
}
