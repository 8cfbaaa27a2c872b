/** The broker CLI: `npm start -- --host H --port P --mode M [--config FILE]`. */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { afterEach, describe, it } from 'node:test'
import { INVALID_MODE } from '../src/index.js'
import { loadSettings } from '../src/settings.js'
import { verifyPassword } from '../src/users.js'
import { connectClient } from './helpers/broker.js'
import { freePort, isListening, runCli, startCli, type RunningCli } from './helpers/cli.js'
import { tempFile } from './helpers/files.js'
import { inbox, waitFor } from './helpers/messages.js'

let running: RunningCli | undefined
afterEach(async () => {
  await running?.stop()
  running = undefined
})


async function p2pWorks (port: number, topic: string, expected: string): Promise<void> {
  const alice = await connectClient(port, 'alice')
  const bob = await connectClient(port, 'bob')
  try {
    const got = inbox(bob)
    await alice.publishAsync(topic, 'hello', { qos: 1 })
    await waitFor(got, 1)
    assert.equal(got[0]?.topic, expected)
  } finally {
    await alice.endAsync()
    await bob.endAsync()
  }
}

describe('broker CLI', () => {
  it('defaults to 127.0.0.1:1883, prefix mode', async () => {
    const settings = await loadSettings(undefined, {})
    assert.deepEqual(settings.listeners, { host: '127.0.0.1', port: 1883, ws_path: '/mqtt' })
    assert.equal(settings.plugin.mode, 'prefix')
  })

  it('serves P2P over TCP on the given host and port', async () => {
    const port = await freePort()
    running = await startCli(['--host', '127.0.0.1', '--port', String(port)])
    assert.equal(running.port, port)
    await p2pWorks(port, 'p2p/bob/x', 'x')
  })

  it('takes --mode', async () => {
    running = await startCli(['--port', '0', '--mode', 'suffix'])
    await p2pWorks(running.port, 'x/p2p/bob', 'x')
  })

  it('takes rmqtt\'s config file as it is, and flags override it', async () => {
    const path = await tempFile('rmqtt.toml', '# rmqtt-p2p-messaging\nmode = "suffix"\n')
    running = await startCli(['--port', '0', '--config', path])
    await p2pWorks(running.port, 'x/p2p/bob', 'x')
    await running.stop()
    running = await startCli(['--port', '0', '--config', path, '--mode', 'prefix'])
    await p2pWorks(running.port, 'p2p/bob/y', 'y')
  })

  it('reads listeners from the config file', async () => {
    const port = await freePort()
    const path = await tempFile('listeners.toml', `mode = "both"\n[listeners]\nhost = "127.0.0.1"\nport = ${port}\n`)
    running = await startCli(['--config', path])
    assert.equal(running.port, port)
  })

  it('exits non-zero with a clear message when the port is taken', async () => {
    const { createServer } = await import('node:net')
    const taken = createServer().listen(0, '127.0.0.1')
    await new Promise((resolve) => taken.once('listening', resolve))
    const port = (taken.address() as { port: number }).port
    try {
      const result = await runCli(['--port', String(port)])
      assert.equal(result.code, 1)
      assert.match(result.stderr, /cannot listen for mqtt on 127\.0\.0\.1:\d+/)
    } finally {
      taken.close()
    }
  })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`closes cleanly on ${signal}`, async () => {
      const cli = await startCli(['--port', '0'])
      const client = await connectClient(cli.port, 'watcher')
      const closed = new Promise<void>((resolve) => { client.once('close', () => { resolve() }) })
      assert.equal(await cli.stop(signal), 0)
      await closed
      assert.equal(await isListening(cli.port), false)
      assert.ok(cli.lines.some((l) => l.msg === 'stopped'))
    })
  }
})

describe('broker CLI operations', () => {
  it('re-reads the config file on SIGHUP: a new mode applies without dropping clients', async () => {
    const path = await tempFile('hup.toml', 'mode = "prefix"\n')
    running = await startCli(['--port', '0', '--config', path])
    const watcher = await connectClient(running.port, 'watcher')
    await writeFile(path, 'mode = "suffix"\n')
    running.child.kill('SIGHUP')
    await waitUntil(() => running?.lines.some((l) => l.msg === 'config reloaded') === true)
    await p2pWorks(running.port, 'x/p2p/bob', 'x')
    assert.ok(watcher.connected)
    await watcher.endAsync()
  })

  it('keeps the running config when SIGHUP finds a bad file', async () => {
    const path = await tempFile('hup-bad.toml', 'mode = "suffix"\n')
    running = await startCli(['--port', '0', '--config', path])
    await writeFile(path, 'mode = "sideways"\n')
    running.child.kill('SIGHUP')
    await waitUntil(() => running?.lines.some((l) => l.level === 50) === true)
    const refusal = running.lines.find((l) => l.level === 50)
    assert.ok(String(refusal?.err).endsWith(INVALID_MODE))
    await p2pWorks(running.port, 'x/p2p/bob', 'x')
  })

  it('logs connects and disconnects at debug level', async () => {
    running = await startCli(['--port', '0', '--log-level', 'debug'])
    const client = await connectClient(running.port, 'dbg')
    await client.endAsync()
    await waitUntil(() => running?.lines.some((l) => l.msg === 'client disconnected' && l.clientId === 'dbg') === true)
    assert.ok(running.lines.some((l) => l.msg === 'client connected' && l.level === 20))
  })

  it('prints a salted hash for a password', async () => {
    const first = await runCli(['hash-password', 'pw'])
    const second = await runCli(['hash-password', 'pw'])
    assert.equal(first.code, 0)
    assert.match(first.stdout, /^\$scrypt\$N=\d+,r=\d+,p=\d+\$\S+\$\S+\n$/)
    assert.notEqual(first.stdout, second.stdout)
    assert.equal(await verifyPassword(Buffer.from('pw'), first.stdout.trim()), true)
  })

  it('serves WebSocket and admin listeners from flags', async () => {
    const wsPort = await freePort()
    const adminPort = await freePort()
    running = await startCli(['--port', '0', '--ws-port', String(wsPort), '--admin-port', String(adminPort)])
    assert.equal(await isListening(wsPort), true)
    const res = await fetch(`http://127.0.0.1:${adminPort}/health`)
    assert.equal(res.status, 200)
  })
})

async function waitUntil (check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('broker CLI refuses bad input before listening', () => {
  const cases: Array<[string, (port: number) => Promise<string[]>, RegExp | string]> = [
    ['an invalid mode', async (p) => ['--port', String(p), '--mode', 'sideways'], INVALID_MODE],
    ['an unknown flag', async (p) => ['--port', String(p), '--prot', '1'], /Unknown option '--prot'/],
    ['a port out of range', async () => ['--port', '70000'], /--port must be a port number/],
    ['a non-numeric port', async () => ['--port', 'abc'], /--port must be a port number/],
    ['a stray argument', async (p) => ['--port', String(p), 'extra'], /Unexpected argument 'extra'/],
    ['a missing config file', async (p) => ['--port', String(p), '--config', '/nonexistent/p2p.toml'], /cannot read config file/],
    ['an invalid mode in the file', async (p) => ['--port', String(p), '--config', await tempFile('m.toml', 'mode = "x"\n')], INVALID_MODE],
    ['an unknown key in the file', async (p) => ['--port', String(p), '--config', await tempFile('k.toml', 'mdoe = "both"\n')], /unknown key 'mdoe'/],
    ['an unknown key in a table', async (p) => ['--port', String(p), '--config', await tempFile('t.toml', '[listeners]\nprot = 1\n')], /\[listeners\]: unknown key 'prot'/],
    ['a TOML syntax error', async (p) => ['--port', String(p), '--config', await tempFile('s.toml', 'mode = \n')], /s\.toml/],
    ['an admin API on the network without a token', async (p) => ['--port', String(p), '--admin-port', '0', '--admin-host', '0.0.0.0'], /set admin\.token/],
    ['TLS without a key', async (p) => ['--port', String(p), '--tls-port', '0', '--tls-cert', 'c.pem'], /needs both/],
    ['an unreadable TLS certificate', async (p) => ['--port', String(p), '--tls-port', '0', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'], /cannot read listeners\.tls_cert/],
    ['a Redis URL that is not one', async (p) => ['--port', String(p), '--redis', 'http://127.0.0.1:6379'], /--redis must be a redis:\/\/ or rediss:\/\/ URL/],
    ['a bad keyword', async (p) => ['--port', String(p), '--keyword', 'a/b'], /keyword must be one non-empty topic level/]
  ]
  for (const [name, args, message] of cases) {
    it(`exits non-zero on ${name}`, async () => {
      const port = await freePort()
      const result = await runCli(await args(port))
      assert.notEqual(result.code, 0)
      if (typeof message === 'string') assert.ok(result.stderr.includes(message), result.stderr)
      else assert.match(result.stderr, message)
      assert.equal(result.stdout.includes('listening'), false)
      assert.equal(await isListening(port), false)
    })
  }
})

describe('shipped example config', () => {
  it('loads as it is', async () => {
    const settings = await loadSettings(new URL('../../config/example.toml', import.meta.url).pathname, {})
    assert.equal(settings.plugin.mode, 'prefix')
    assert.equal(settings.plugin.rules.length, 3)
    assert.equal(settings.listeners.port, 1883)
  })
})
