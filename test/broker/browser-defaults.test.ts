/**
 * Attacks from a browser on a broker it can reach (docs/behaviour.md §8,
 * "Browser-facing defaults"): a page on another origin opening the WebSocket
 * listener, a DNS-rebound page calling the admin API, and the admin token
 * read from the process list.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { request, type OutgoingHttpHeaders } from 'node:http'
import { connect as connectTcp } from 'node:net'
import { afterEach, describe, it } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { freePort, runCli, startCli, type RunningCli } from '../../harness/cli.js'
import { CONFIG_PATH, RELOAD_PATH } from '../../src/broker/admin/api.js'
import { tempFile } from '../helpers/files.js'
import { collect, waitFor } from '../helpers/messages.js'
import { limitHits, serverPerTest, testSettings, type TestServer } from '../helpers/server.js'

const server = serverPerTest()

interface Answer { status: number, body: string }

/** A WebSocket upgrade to /mqtt as a browser sends it; 101 when it was accepted. */
async function upgrade (port: number, origin?: string): Promise<Answer> {
  const headers: OutgoingHttpHeaders = {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Protocol': 'mqtt'
  }
  if (origin !== undefined) headers.Origin = origin
  const req = request({ host: '127.0.0.1', port, path: '/mqtt', headers })
  req.end()
  return new Promise((resolve, reject) => {
    req.once('upgrade', (_res, socket) => {
      socket.destroy()
      resolve({ status: 101, body: '' })
    })
    req.once('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.once('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.once('error', reject)
  })
}

async function connectWs (s: TestServer, clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(`ws://127.0.0.1:${s.addresses.ws?.port}/mqtt`, { clientId, protocolVersion: 4, reconnectPeriod: 0, ...options })
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => { resolve() })
      client.once('error', reject)
      // a refused upgrade closes MQTT.js's stream without an error event
      client.once('close', () => { reject(new Error(`${clientId}: connection closed before CONNACK`)) })
    })
  } catch (err) {
    client.end(true)
    throw err
  }
  return client
}

async function p2pReachesBob (s: TestServer, origin: string | undefined): Promise<void> {
  const options = origin === undefined ? {} : { wsOptions: { origin } }
  const alice = await connectWs(s, 'alice', options)
  const bob = await connectWs(s, 'bob', options)
  try {
    const got = collect(bob)
    await alice.publishAsync('p2p/bob/x', 'hi', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, 'x')
  } finally {
    await alice.endAsync()
    await bob.endAsync()
  }
}

/** An admin API request with the Host header a browser would send for `host`. */
async function admin (port: number, path: string, host: string, init: { method?: string, token?: string } = {}): Promise<Answer> {
  const headers: OutgoingHttpHeaders = { Host: host }
  if (init.token !== undefined) headers.Authorization = `Bearer ${init.token}`
  const req = request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers })
  req.end()
  const [res] = await once(req, 'response') as [import('node:http').IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk as string
  return { status: res.statusCode ?? 0, body }
}

/** An HTTP/1.0 request without Host, as old tools send; Node refuses HTTP/1.1 without one itself. */
async function withoutHost (port: number, path: string): Promise<number> {
  const socket = connectTcp(port, '127.0.0.1')
  socket.end(`GET ${path} HTTP/1.0\r\n\r\n`)
  let text = ''
  for await (const chunk of socket) text += (chunk as Buffer).toString()
  return Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1])
}

function adminPort (s: TestServer): number {
  return s.addresses.admin?.port ?? 0
}

describe('WebSocket listener: a page the user happens to open cannot use the broker', () => {
  const allowed = 'https://app.example.com'

  it('answers an upgrade from a page on an unlisted origin with 403, before any MQTT', async () => {
    const s = await server({ listeners: { ws_port: 0, ws_origins: [allowed] } })
    const port = s.addresses.ws?.port ?? 0
    const refused = await upgrade(port, 'http://evil.example')
    assert.equal(refused.status, 403)
    assert.match(refused.body, /"http:\/\/evil\.example" is not allowed: \[listeners\] ws_origins/)
    await assert.rejects(connectWs(s, 'mallory', { wsOptions: { origin: 'http://evil.example' } }), /closed before CONNACK/)
    assert.equal(s.broker.connectedClients, 0)
    assert.equal(await limitHits(s, 'ws_origins'), 2)
    assert.ok(s.logs.some((l) => l.level === 40 && l.limit === 'ws_origins' && l.origin === 'http://evil.example'), 'logged at warn')
  })

  it('refuses origins that only resemble a listed one, and "null"', async () => {
    const s = await server({ listeners: { ws_port: 0, ws_origins: [allowed] } })
    const port = s.addresses.ws?.port ?? 0
    for (const origin of ['http://app.example.com', 'https://app.example.com:8443', 'https://app.example.com.evil.example', 'https://evil.example/https://app.example.com', 'null', 'app.example.com', '']) {
      assert.equal((await upgrade(port, origin)).status, 403, JSON.stringify(origin))
    }
    // the same origin however the browser spells it
    assert.equal((await upgrade(port, 'HTTPS://App.Example.com:443')).status, 101)
  })

  it('lets a page on a listed origin use MQTT: a P2P message reaches bob', async () => {
    const s = await server({ listeners: { ws_port: 0, ws_origins: ['http://localhost:8080', allowed] } })
    await p2pReachesBob(s, allowed)
  })

  it('by default refuses every page, and lets in clients that send no Origin (not browsers)', async () => {
    const s = await server({ listeners: { ws_port: 0 } })
    assert.equal((await upgrade(s.addresses.ws?.port ?? 0, allowed)).status, 403)
    assert.equal((await upgrade(s.addresses.ws?.port ?? 0)).status, 101)
    await p2pReachesBob(s, undefined)
  })

  it('lets any page in with ws_origins = ["*"]', async () => {
    const s = await server({ listeners: { ws_port: 0, ws_origins: ['*'] } })
    assert.equal((await upgrade(s.addresses.ws?.port ?? 0, 'null')).status, 101)
    await p2pReachesBob(s, 'http://evil.example')
  })
})

describe('admin API: a DNS-rebound page cannot call it', () => {
  it('refuses a Host that is not its own address with 403, on every route, token or not', async () => {
    const s = await server({ admin: { port: 0, token: 's3cret' } })
    const port = adminPort(s)
    const evil = `evil.example:${port}`
    for (const [path, method] of [['/health', 'GET'], ['/metrics', 'GET'], [CONFIG_PATH, 'GET'], [RELOAD_PATH, 'PUT'], ['/nope', 'GET']] as const) {
      const res = await admin(port, path, evil, { method, token: 's3cret' })
      assert.equal(res.status, 403, path)
      assert.match((JSON.parse(res.body) as { error: string }).error, /not this admin API's address; list it in \[admin\] hosts/)
    }
    assert.equal(await limitHits(s, 'admin_hosts'), 5)
  })

  it('answers its own address, with or without the port, localhost on loopback, and no Host at all', async () => {
    const s = await server({ admin: { port: 0 } })
    const port = adminPort(s)
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, `LOCALHOST:${port}`, 'localhost']) {
      assert.equal((await admin(port, '/health', host)).status, 200, host)
      assert.equal((await admin(port, CONFIG_PATH, host)).status, 200, host)
    }
    assert.equal(await withoutHost(port, '/health'), 200)
    // the right name on another port is another origin: another site
    assert.equal((await admin(port, '/health', `localhost:${port + 1}`)).status, 403)
    assert.equal((await admin(port, '/health', `127.0.0.2:${port}`)).status, 403)
  })

  it('answers on IPv6 loopback as [::1]:PORT', async () => {
    const s = await server({ admin: { port: 0, host: '::1' } })
    const port = adminPort(s)
    const req = async (host: string): Promise<number> => {
      const r = request({ host: '::1', port, path: '/health', headers: { Host: host } })
      r.end()
      const [res] = await once(r, 'response') as [import('node:http').IncomingMessage]
      res.resume()
      return res.statusCode ?? 0
    }
    assert.equal(await req(`[::1]:${port}`), 200)
    assert.equal(await req(`localhost:${port}`), 200)
    assert.equal(await req(`evil.example:${port}`), 403)
  })

  it('answers the names listed in [admin] hosts: any port without one, that port with one', async () => {
    const s = await server({ admin: { port: 0, hosts: ['admin.internal', 'broker.example:8443'] } })
    const port = adminPort(s)
    for (const host of [`admin.internal:${port}`, 'Admin.Internal', 'admin.internal:80', 'broker.example:8443']) {
      assert.equal((await admin(port, CONFIG_PATH, host)).status, 200, host)
    }
    for (const host of ['broker.example', `broker.example:${port}`, 'evil.admin.internal']) {
      assert.equal((await admin(port, CONFIG_PATH, host)).status, 403, host)
    }
  })
})

describe('admin token from a file: not in the process list', () => {
  it('takes the token from admin.token_file, trailing newline trimmed', async () => {
    const path = await tempFile('token', 's3cret\n')
    const s = await server({ admin: { port: 0, token_file: path } })
    const port = adminPort(s)
    const host = `127.0.0.1:${port}`
    assert.equal((await admin(port, CONFIG_PATH, host, { token: 's3cret' })).status, 200)
    assert.equal((await admin(port, CONFIG_PATH, host)).status, 401)
    assert.equal((await admin(port, CONFIG_PATH, host, { token: 's3cre' })).status, 401)
  })

  it('reads the file again on reload; an unreadable one refuses the reload and the old token stays', async () => {
    const path = await tempFile('token', 'old\n')
    const patch = { admin: { port: 0, token_file: path } }
    const s = await server(patch, async () => testSettings(patch))
    const port = adminPort(s)
    const host = `127.0.0.1:${port}`
    await writeFile(path, 'new\n')
    assert.equal((await admin(port, RELOAD_PATH, host, { method: 'PUT', token: 'old' })).status, 200)
    assert.equal((await admin(port, CONFIG_PATH, host, { token: 'old' })).status, 401)
    assert.equal((await admin(port, CONFIG_PATH, host, { token: 'new' })).status, 200)

    await rm(path)
    const refused = await admin(port, RELOAD_PATH, host, { method: 'PUT', token: 'new' })
    assert.equal(refused.status, 400)
    const body = JSON.parse(refused.body) as { reloaded: boolean, error: string, code: string }
    assert.equal(body.reloaded, false)
    assert.equal(body.code, 'ERR_P2P_CONFIG')
    assert.ok(body.error.includes(path), body.error)
    assert.equal((await admin(port, CONFIG_PATH, host, { token: 'new' })).status, 200)
  })

  it('refuses to start with an unreadable or empty token file', async () => {
    await assert.rejects(server({ admin: { port: 0, token_file: '/nonexistent/token' } }), { code: 'ERR_P2P_CONFIG', key: 'admin.token_file', message: /cannot read admin\.token_file \/nonexistent\/token/ })
    const empty = await tempFile('token', ' \n')
    await assert.rejects(server({ admin: { port: 0, token_file: empty } }), { code: 'ERR_P2P_CONFIG', key: 'admin.token_file', message: /is empty/ })
  })
})

describe('admin token on the command line', () => {
  let running: RunningCli | undefined
  afterEach(async () => {
    await running?.stop()
    running = undefined
  })

  it('exits 2 before anything listens when --admin-token-file cannot be read, naming the file', async () => {
    const result = await runCli(['--port', '0', '--admin-port', '0', '--admin-token-file', '/nonexistent/token'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /cannot read admin\.token_file \/nonexistent\/token/)
    assert.equal(result.stdout.includes('"listener"'), false, 'no listener came up')
  })

  it('keeps a token given with --admin-token-file out of the command line', async () => {
    const path = await tempFile('token', 's3cret-from-file\n')
    const port = await freePort()
    running = await startCli(['--port', '0', '--admin-port', String(port), '--admin-token-file', path])
    const cmdline = await readFile(`/proc/${running.child.pid}/cmdline`, 'utf8').catch(() => undefined)
    if (cmdline !== undefined) assert.equal(cmdline.includes('s3cret-from-file'), false)
    assert.equal((await admin(port, CONFIG_PATH, `127.0.0.1:${port}`, { token: 's3cret-from-file' })).status, 200)
    assert.equal(running.lines.some((l) => l.flag === '--admin-token'), false, 'no warning')
  })

  it('warns that a token given with --admin-token is in the process list', async () => {
    running = await startCli(['--port', '0', '--admin-port', '0', '--admin-token', 'visible'])
    const warning = running.lines.find((l) => l.level === 40 && l.flag === '--admin-token')
    assert.match(String(warning?.msg), /visible to every local user in the process list: use --admin-token-file or P2P_ADMIN_TOKEN/)
  })
})
