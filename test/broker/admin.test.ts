/**
 * The admin API behind the console (docs/operations.md): probes, stats,
 * the clients of this node with a kick, sending a P2P message, and rmqtt's
 * plugin paths — each with the token, and each refusing what it should.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { isListening } from '../../harness/cli.js'
import { CONFIG_PATH } from '../../src/broker/admin/api.js'
import { loadSettings } from '../../src/broker/settings.js'
import { hashPassword } from '../../src/broker/users.js'
import { connectClient } from '../helpers/broker.js'
import { tempFile } from '../helpers/files.js'
import { closed, collect, until, waitFor } from '../helpers/messages.js'
import { rawSession } from '../helpers/raw.js'
import { serverPerTest, testSettings, type TestServer } from '../helpers/server.js'

const server = serverPerTest()
const TOKEN = 's3cret'

interface Answer { status: number, body: Record<string, unknown> & Array<Record<string, unknown>> }

/** An admin request with the token, answered as JSON. */
function admin (s: TestServer, token: string | null = TOKEN): (path: string, init?: { method?: string, body?: string }) => Promise<Answer> {
  const { port } = s.addresses.admin ?? { port: 0 }
  return async (path, init = {}) => {
    const headers: Record<string, string> = init.body === undefined ? {} : { 'Content-Type': 'application/json' }
    if (token !== null) headers.Authorization = `Bearer ${token}`
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers })
    return { status: res.status, body: await res.json() as Answer['body'] }
  }
}

async function withClients (s: TestServer, ...ids: string[]): Promise<MqttClient[]> {
  return Promise.all(ids.map(async (id) => connectClient(s.addresses.mqtt?.port ?? 0, id)))
}

describe('admin API: probes', () => {
  it('answers /health and /ready without the token', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const get = admin(s, null)
    const health = await get('/health')
    assert.equal(health.status, 200)
    assert.equal(health.body.status, 'ok')
    assert.deepEqual(await get('/ready'), { status: 200, body: { status: 'ready', reasons: [] } })
  })
})

describe('admin API: the token', () => {
  it('guards every data endpoint, and takes the scheme in any case', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const node = s.broker.id
    const guarded = ['/metrics', '/api/v1/stats', '/api/v1/clients', '/api/v1/clients/bob', '/api/v1/plugins', `/api/v1/plugins/${node}`, `/api/v1/plugins/${node}/aedes-p2p-messaging/config`]
    for (const path of guarded) assert.equal((await admin(s, null)(path)).status, 401, path)
    assert.equal((await admin(s, 'wrong')('/api/v1/stats')).status, 401)
    assert.equal((await admin(s, null)('/api/v1/p2p/send', { method: 'POST', body: '{}' })).status, 401)
    const { port } = s.addresses.admin ?? { port: 0 }
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/stats`, { headers: { Authorization: `${scheme} ${TOKEN}` } })
      assert.equal(res.status, 200, scheme)
    }
  })

  it('serves the console page without the token, and the page holds no data', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    await withClients(s, 'secret-client-id')
    const { port } = s.addresses.admin ?? { port: 0 }
    const res = await fetch(`http://127.0.0.1:${port}/`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /text\/html/)
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/)
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/)
    const page = await res.text()
    assert.ok(!page.includes('secret-client-id') && !page.includes(s.broker.id), 'nothing of the broker in the page itself')
    for (const file of ['console.js', 'console.css', 'uPlot.js', 'uPlot.css']) {
      assert.equal((await fetch(`http://127.0.0.1:${port}/console/${file}`)).status, 200, file)
    }
  })

  it('answers the console only to its own address too (DNS rebinding)', async () => {
    const s = await server({ admin: { port: 0 } })
    const { port } = s.addresses.admin ?? { port: 0 }
    // fetch() will not set Host; a raw request does
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/', headers: { Host: `evil.example:${port}` } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject).end()
    })
    assert.equal(status, 403)
  })
})

describe('admin API: clients', () => {
  it('lists the clients connected here, searches them by id and username, and bounds the page', async () => {
    const hash = await hashPassword('pw')
    const users = [{ username: 'operator-ann', password: hash, client_ids: ['ann-*'] }, { username: 'guest', password: hash, client_ids: ['b*', 'c*'] }]
    const s = await server({ admin: { port: 0, token: TOKEN }, users: users as never })
    const port = s.addresses.mqtt?.port ?? 0
    for (const id of ['bob', 'bobby', 'carol']) await connectClient(port, id, { username: 'guest', password: 'pw' })
    await connectClient(port, 'ann-1', { username: 'operator-ann', password: 'pw' })
    const get = admin(s)
    const all = await get('/api/v1/clients')
    assert.equal(all.body.total, 4)
    assert.deepEqual((all.body.clients as Array<{ clientid: string }>).map((c) => c.clientid), ['ann-1', 'bob', 'bobby', 'carol'])
    const bob = (all.body.clients as Array<Record<string, unknown>>)[1] ?? {}
    assert.equal(bob.protocol, 'MQTT 3.1.1')
    assert.equal(bob.transport, 'tcp')
    assert.equal(bob.address, '127.0.0.1')
    assert.ok(Date.now() - Date.parse(String(bob.connected_at)) < 60_000)
    const found = await get('/api/v1/clients?q=BOB')
    assert.deepEqual([found.body.matched, found.body.total], [2, 4])
    const byUser = await get('/api/v1/clients?q=operator')
    assert.deepEqual((byUser.body.clients as Array<{ clientid: string, username: string }>).map((c) => [c.clientid, c.username]), [['ann-1', 'operator-ann']])
    assert.equal(((await get('/api/v1/clients?limit=1')).body.clients as unknown[]).length, 1)
    assert.equal((await get('/api/v1/clients?limit=0')).status, 400)
    assert.equal((await get('/api/v1/clients?limit=lots')).status, 400)
  })

  it('shows one client in detail, with what is queued for it and not yet acknowledged', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const port = s.addresses.mqtt?.port ?? 0
    // reads what it is sent but never acknowledges it: Aedes keeps each QoS 1 message until its PUBACK
    const slow = await rawSession({ tcp: port }, { clientId: 'slow', clean: false })
    const [alice] = await withClients(s, 'alice')
    for (let i = 0; i < 5; i++) await alice?.publishAsync('p2p/slow/x', `m${i}`, { qos: 1 })
    await until(() => slow.packets.filter((p) => p.cmd === 'publish').length === 5)
    const detail = await admin(s)('/api/v1/clients/slow')
    assert.equal(detail.status, 200)
    assert.equal(detail.body.clientid, 'slow')
    assert.equal(detail.body.clean_session, false)
    assert.equal(detail.body.queued_messages, 5)
    assert.equal(detail.body.subscriptions_count, 0)
    assert.equal((await admin(s)('/api/v1/clients/nobody')).status, 404)
    slow.destroy()
  })

  it('finds a client id that needs percent-encoding', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    await withClients(s, 'a b/c?d')
    const detail = await admin(s)(`/api/v1/clients/${encodeURIComponent('a b/c?d')}`)
    assert.equal(detail.body.clientid, 'a b/c?d')
    assert.equal((await admin(s)('/api/v1/clients/%E0%A4%A')).status, 400)
  })

  it('kicks a client: its connection ends, its session stays', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const [bob] = await withClients(s, 'bob')
    const gone = closed(bob as MqttClient)
    const kicked = await admin(s)('/api/v1/clients/bob', { method: 'DELETE' })
    assert.deepEqual(kicked, { status: 200, body: { kicked: 'bob' } })
    await gone
    assert.equal((await admin(s)('/api/v1/clients/bob', { method: 'DELETE' })).status, 404)
    const logged = s.logs.find((l) => l.msg === 'client kicked through the admin API')
    assert.deepEqual([logged?.clientId, logged?.by], ['bob', '127.0.0.1'])
  })

  it('kicks an id no path can carry, by query: URLs turn . and .. into directions', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const [dots] = await withClients(s, '..')
    const gone = closed(dots as MqttClient)
    assert.deepEqual(await admin(s)('/api/v1/clients?clientid=..', { method: 'DELETE' }), { status: 200, body: { kicked: '..' } })
    await gone
    assert.equal((await admin(s)('/api/v1/clients', { method: 'DELETE' })).status, 400)
  })
})

describe('admin API: sending a P2P message', () => {
  it('reaches the target, and says what became of the message', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const [bob] = await withClients(s, 'bob')
    const got = collect(bob as MqttClient)
    const send = async (body: unknown): Promise<Answer> => admin(s)('/api/v1/p2p/send', { method: 'POST', body: JSON.stringify(body) })
    assert.deepEqual(await send({ clientid: 'bob', topic: 'from/console', payload: 'hi', qos: 1 }), { status: 200, body: { outcome: 'accepted', connectedHere: true } })
    assert.deepEqual((await send({ clientid: 'bob', topic: 'bin', payload: Buffer.from([0, 255]).toString('base64'), encoding: 'base64' })).body.outcome, 'accepted')
    await waitFor(got, 2)
    assert.deepEqual([got[0]?.topic, got[0]?.payload.toString(), got[0]?.qos], ['from/console', 'hi', 1])
    assert.deepEqual(got[1]?.payload, Buffer.from([0, 255]))
    for (const qos of [0, 1]) {
      const nobody = await send({ clientid: 'nobody', topic: 'x', payload: 'hi', qos })
      assert.equal(nobody.body.outcome, 'no_session', `QoS ${qos}`)
    }
    assert.equal(s.plugin.counters.dropped.no_session, 2)
    const logged = s.logs.filter((l) => l.msg === 'P2P message sent through the admin API')
    assert.deepEqual(logged.map((l) => [l.target, l.outcome]), [['bob', 'accepted'], ['bob', 'accepted'], ['nobody', 'no_session'], ['nobody', 'no_session']])
  })

  it('refuses what no P2P message can carry, counting nothing', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const send = async (body: string): Promise<Answer> => admin(s)('/api/v1/p2p/send', { method: 'POST', body })
    const bad = ['{"clientid":"a/b","topic":"x"}', '{"clientid":"","topic":"x"}', '{"clientid":"bob","topic":"#"}', '{"clientid":"bob","topic":"$SYS/x"}',
      '{"clientid":"bob","topic":"x","qos":3}', '{"clientid":"bob","topic":"x","payload":5}', '{"clientid":"bob","topic":"x","encoding":"hex"}',
      '{"clientid":"bob","topic":"x","payload":"@@@","encoding":"base64"}', '{"clientid":"bob","topic":"x","payload":"abc","encoding":"base64"}', '[]', 'not json']
    for (const body of bad) assert.equal((await send(body)).status, 400, body)
    assert.equal(s.plugin.counters.received, 0)
  })

  it('refuses a request from a page on another origin, and a body that is not declared JSON (CSRF with no token set)', async () => {
    const s = await server({ admin: { port: 0 } })
    const [bob] = await withClients(s, 'bob')
    const got = collect(bob as MqttClient)
    const { port } = s.addresses.admin ?? { port: 0 }
    const post = async (headers: Record<string, string>): Promise<number> => (await fetch(`http://127.0.0.1:${port}/api/v1/p2p/send`, { method: 'POST', headers, body: '{"clientid":"bob","topic":"forged","payload":"x"}' })).status
    // what a page elsewhere can send without a preflight: text/plain, with its Origin
    assert.equal(await post({ Origin: 'http://evil.example', 'Content-Type': 'text/plain' }), 403)
    assert.equal(await post({ Origin: 'http://evil.example', 'Content-Type': 'application/json' }), 403)
    assert.equal(await post({ Origin: `http://127.0.0.1:${port + 1}`, 'Content-Type': 'application/json' }), 403)
    assert.equal(await post({ Origin: 'null', 'Content-Type': 'application/json' }), 403)
    assert.equal(await post({ 'Sec-Fetch-Site': 'cross-site', 'Content-Type': 'application/json' }), 403)
    assert.equal(await post({ 'Content-Type': 'text/plain' }), 415)
    assert.equal((await fetch(`http://127.0.0.1:${port}/api/v1/clients/bob`, { method: 'DELETE', headers: { Origin: 'http://evil.example' } })).status, 403)
    assert.equal(s.plugin.counters.received, 0)
    // the console's own page, and tools that send no Origin
    assert.equal(await post({ Origin: `http://127.0.0.1:${port}`, 'Content-Type': 'application/json' }), 200)
    assert.equal(await post({ 'Content-Type': 'application/json; charset=utf-8' }), 200)
    await waitFor(got, 2)
  })

  it('refuses a body past its bound, before reading it all', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN }, limits: { max_packet_size: 1024 } })
    const big = JSON.stringify({ clientid: 'bob', topic: 'x', payload: 'x'.repeat(200_000) })
    assert.equal((await admin(s)('/api/v1/p2p/send', { method: 'POST', body: big })).status, 413)
  })

  it('says so while the plugin is stopped', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    s.plugin.stop()
    const res = await admin(s)('/api/v1/p2p/send', { method: 'POST', body: '{"clientid":"bob","topic":"x"}' })
    assert.deepEqual([res.status, res.body.code], [409, 'ERR_P2P_STOPPED'])
  })
})

describe("admin API: rmqtt's plugin paths", () => {
  it('lists this node and its plugin, and its config', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN }, plugin: { mode: 'both' } })
    const node = s.broker.id
    const get = admin(s)
    const all = await get('/api/v1/plugins')
    assert.equal(all.body[0]?.node, node)
    const plugins = all.body[0]?.plugins as Array<Record<string, unknown>>
    assert.deepEqual([plugins[0]?.name, plugins[0]?.active, plugins[0]?.immutable], ['aedes-p2p-messaging', true, false])
    assert.deepEqual((await get(`/api/v1/plugins/${node}`)).body, plugins)
    assert.deepEqual((await get(`/api/v1/plugins/${node}/aedes-p2p-messaging`)).body, plugins[0])
    assert.equal((await get(`/api/v1/plugins/${node}/aedes-p2p-messaging/config`)).body.mode, 'both')
    assert.equal((await get(CONFIG_PATH)).body.mode, 'both', 'the older path still answers')
    assert.equal((await get('/api/v1/plugins/other-node')).status, 404)
    assert.equal((await get(`/api/v1/plugins/${node}/rmqtt-acl`)).status, 404)
  })

  it('reloads the config file at the node path', async () => {
    const path = await tempFile('p2p.toml', 'mode = "suffix"\n')
    const s = await server({ admin: { port: 0, token: TOKEN } }, async () => testSettings({ ...(await loadSettings(path)), admin: { port: 0 } }))
    const res = await admin(s)(`/api/v1/plugins/${s.broker.id}/aedes-p2p-messaging/config/reload`, { method: 'PUT' })
    assert.equal(res.status, 200)
    assert.equal(s.plugin.config.mode, 'suffix')
  })

  it('unloads and loads the plugin: P2P topics are ordinary while it is unloaded', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const base = `/api/v1/plugins/${s.broker.id}/aedes-p2p-messaging`
    const [alice, bob, watcher] = await withClients(s, 'alice', 'bob', 'watcher')
    await watcher?.subscribeAsync('p2p/#')
    const [toBob, seen] = [collect(bob as MqttClient), collect(watcher as MqttClient)]
    const unloaded = await admin(s)(`${base}/unload`, { method: 'PUT' })
    assert.deepEqual([unloaded.status, unloaded.body.active], [200, false])
    await alice?.publishAsync('p2p/bob/x', 'open', { qos: 1 })
    await waitFor(seen, 1)
    assert.equal(toBob.length, 0)
    const loaded = await admin(s)(`${base}/load`, { method: 'PUT' })
    assert.deepEqual([loaded.status, loaded.body.active], [200, true])
    await alice?.publishAsync('p2p/bob/x', 'private', { qos: 1 })
    await waitFor(toBob, 1)
    assert.equal(seen.length, 1)
    assert.equal((await admin(s)(`${base}/load`)).status, 405)
  })
})

describe('admin API: what a peer can make it hold', () => {
  /** A raw connection to the admin port; resolves with everything it got once the server closed it. */
  function rawHttp (port: number, text: string): { socket: Socket, answer: Promise<string> } {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.write(text)
    let got = ''
    socket.on('data', (d: Buffer) => { got += d.toString() })
    socket.on('error', () => {})
    const answer = new Promise<string>((resolve) => { socket.on('close', () => { resolve(got) }) })
    return { socket, answer }
  }

  it('closes the connection of a refused request whose body it did not read', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    const { port } = s.addresses.admin ?? { port: 0 }
    // announces a body, sends a byte of it, then trickles nothing: answered 401 and let go at once
    const { socket, answer } = rawHttp(port, `POST /api/v1/p2p/send HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`)
    const got = await Promise.race([answer, new Promise<string>((resolve) => setTimeout(resolve, 5000, 'still open'))])
    socket.destroy()
    assert.match(got, /^HTTP\/1\.1 401/)
  })

  it('reads at most 4 bodies at once: the fifth is told to come back (503)', async () => {
    const s = await server({ admin: { port: 0 } })
    const { port } = s.addresses.admin ?? { port: 0 }
    const head = `POST /api/v1/p2p/send HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`
    const held = Array.from({ length: 4 }, () => rawHttp(port, head))
    // the four are being read once the fifth arrives: each sent its headers and a byte first
    await new Promise((resolve) => setTimeout(resolve, 300))
    const fifth = rawHttp(port, head)
    assert.match(await fifth.answer, /^HTTP\/1\.1 503/)
    for (const { socket } of held) socket.destroy()
    // and once they are gone, bodies are read again
    const res = await admin(s)('/api/v1/p2p/send', { method: 'POST', body: '{"clientid":"bob","topic":"x"}' })
    assert.equal(res.status, 200)
  })

  it('holds at most 128 connections, so that idle ones cannot take the descriptors MQTT needs', async () => {
    const s = await server({ admin: { port: 0 } })
    const { port } = s.addresses.admin ?? { port: 0 }
    const idle = Array.from({ length: 200 }, () => rawHttp(port, ''))
    try {
      // past the bound, the server closes what it accepts at once
      const dropped = await new Promise<number>((resolve) => {
        let n = 0
        for (const { answer } of idle) void answer.then(() => { if (++n === 72) resolve(n) })
        setTimeout(resolve, 5000, n)
      })
      assert.equal(dropped, 72)
      const [bob] = await withClients(s, 'bob')
      assert.ok(bob?.connected)
    } finally {
      for (const { socket } of idle) socket.destroy()
    }
  })

  it('leaves nothing listening after close(), even when closing the store fails', async (t) => {
    const s = await server({ admin: { port: 0 } })
    const { port } = s.addresses.admin ?? { port: 0 }
    const persistence = (s.broker as unknown as { persistence: { destroy: () => Promise<void> } }).persistence
    t.mock.method(persistence, 'destroy', async () => { throw new Error('store close failed') })
    assert.equal(await s.close(), false, 'told it could not flush everything')
    assert.equal(await isListening(port), false)
  })
})
