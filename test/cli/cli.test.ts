/** The broker CLI: `npm start -- --host H --port P --mode M [--config FILE]`, as a process. */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { afterEach, describe, it } from 'node:test'
import { CLI, freePort, isListening, runCli, startCli, type RunningCli } from '../../harness/cli.js'
import { loadSettings } from '../../src/broker/settings.js'
import { INVALID_MODE } from '../../src/index.js'
import { connectClient } from '../helpers/broker.js'
import { tempFile } from '../helpers/files.js'
import { collect, until, waitFor } from '../helpers/messages.js'

let running: RunningCli | undefined
afterEach(async () => {
  await running?.stop()
  running = undefined
})

async function p2pWorks (port: number, topic: string, expected: string): Promise<void> {
  const alice = await connectClient(port, 'alice')
  const bob = await connectClient(port, 'bob')
  try {
    const got = collect(bob)
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
    const settings = await loadSettings(undefined)
    assert.deepEqual(settings.listeners, { host: '127.0.0.1', port: 1883, ws_path: '/mqtt', ws_origins: [] })
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
      assert.equal(result.stdout.includes('"listener"'), false, 'no listener came up')
    } finally {
      taken.close()
    }
  })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`closes cleanly on ${signal}`, async () => {
      const cli = await startCli(['--port', '0'])
      const client = await connectClient(cli.port, 'watcher')
      let closedFirst = false
      const closed = new Promise<void>((resolve) => {
        client.once('close', () => {
          closedFirst = cli.child.exitCode === null
          resolve()
        })
      })
      assert.equal(await cli.stop(signal), 0)
      await closed
      assert.ok(closedFirst, 'the broker closed the client before it exited')
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
    await until(() => running?.lines.some((l) => l.msg === 'config reloaded') === true)
    await p2pWorks(running.port, 'x/p2p/bob', 'x')
    assert.ok(watcher.connected)
    await watcher.endAsync()
  })

  it('keeps the running config when SIGHUP finds a bad file', async () => {
    const path = await tempFile('hup-bad.toml', 'mode = "suffix"\n')
    running = await startCli(['--port', '0', '--config', path])
    await writeFile(path, 'mode = "sideways"\n')
    running.child.kill('SIGHUP')
    await until(() => running?.lines.some((l) => l.level === 50) === true)
    const refusal = running.lines.find((l) => l.level === 50)
    assert.ok(String(refusal?.err).endsWith(INVALID_MODE))
    await p2pWorks(running.port, 'x/p2p/bob', 'x')
  })

  it('ignores SIGHUP without --config, in one warn line, and keeps running', async () => {
    running = await startCli(['--port', '0'])
    running.child.kill('SIGHUP')
    await until(() => running?.lines.some((l) => l.signal === 'SIGHUP') === true)
    const told = running.lines.filter((l) => l.signal === 'SIGHUP')
    assert.deepEqual(told.map((l) => [l.level, l.msg]), [[40, 'SIGHUP ignored: this broker was started without --config, so there is no config file to re-read']])
    await p2pWorks(running.port, 'p2p/bob/x', 'x')
    assert.equal(running.lines.some((l) => (l.level as number) >= 50), false, 'no reload was tried')
  })

  it('logs readable lines, not JSON, with --log-format pretty, up to the last one before it exits', async (t) => {
    const child = spawn(process.execPath, [CLI, '--port', '0', '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] })
    t.after(() => { child.kill('SIGKILL') })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    await until(() => stdout.includes('P2P messaging ready'), 10_000, 'the broker to start')
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    assert.deepEqual(await exited, [0, null])
    const listening = stdout.split('\n').find((l) => l.includes('listening'))
    assert.ok(listening !== undefined, stdout)
    assert.throws(() => JSON.parse(listening), SyntaxError)
    assert.match(listening, /INFO.* listening for mqtt on 127\.0\.0\.1:\d+/)
    assert.match(stdout, /INFO.* stopped/)
  })

  it('logs connects and disconnects at debug level', async () => {
    running = await startCli(['--port', '0', '--log-level', 'debug'])
    const client = await connectClient(running.port, 'dbg')
    await client.endAsync()
    await until(() => running?.lines.some((l) => l.msg === 'client disconnected' && l.clientId === 'dbg') === true)
    assert.ok(running.lines.some((l) => l.msg === 'client connected' && l.level === 20))
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

describe('shipped example config', () => {
  it('loads as it is', async () => {
    const settings = await loadSettings(new URL('../../../config/example.toml', import.meta.url).pathname)
    assert.equal(settings.plugin.mode, 'prefix')
    assert.equal(settings.plugin.rules.length, 3)
    assert.equal(settings.listeners.port, 1883)
  })
})
