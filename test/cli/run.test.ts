/**
 * The CLI in-process, for what needs no broker process: bad input refused
 * before anything listens, the usage text, hash-password.
 */
import assert from 'node:assert/strict'
import { Server } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { startServer } from '../../src/broker/server.js'
import { verifyPassword } from '../../src/broker/users.js'
import { FLAGS } from '../../src/cli/flags.js'
import { run, type CliIO } from '../../src/cli/run.js'
import { INVALID_MODE } from '../../src/index.js'
import { tempFile } from '../helpers/files.js'

interface Ran { code: number, stdout: string, stderr: string, started: number, listened: number }

/**
 * Runs the command with its output captured, counting broker starts and every
 * listen() on any server (TCP, TLS, HTTP and WebSocket servers are all
 * net.Server underneath).
 */
async function cli (t: TestContext, argv: string[], stdin: string[] = []): Promise<Ran> {
  const ran: Ran = { code: -1, stdout: '', stderr: '', started: 0, listened: 0 }
  const listen = Server.prototype.listen
  t.mock.method(Server.prototype, 'listen', function (this: Server, ...args: Parameters<Server['listen']>) {
    ran.listened++
    return listen.apply(this, args)
  })
  const io: CliIO = {
    stdout: (text) => { ran.stdout += text },
    stderr: (text) => { ran.stderr += text },
    stdin: stdin.map((s) => Buffer.from(s)),
    env: {},
    start: async (options) => {
      ran.started++
      return startServer(options)
    }
  }
  ran.code = await run(argv, io)
  return ran
}

describe('broker CLI refuses bad input before anything listens', () => {
  const cases: Array<[string, () => Promise<string[]>, RegExp | string]> = [
    ['an invalid mode', async () => ['--mode', 'sideways'], INVALID_MODE],
    ['an unknown flag', async () => ['--prot', '1'], /Unknown option '--prot'/],
    ['a port out of range', async () => ['--port', '70000'], /--port must be a port number/],
    ['a negative port', async () => ['--port=-1'], /--port must be a port number/],
    ['a negative port after a space, which looks like an option', async () => ['--port', '-1'], /--port must be a port number/],
    ['a flag with another flag for its value', async () => ['--mode', '--keyword', 'x'], "--mode needs a value: '--keyword' looks like an option; write --mode=--keyword if you mean it"],
    ['a flag without its value', async () => ['--mode'], /--mode needs a value/],
    ['a non-numeric port', async () => ['--port', 'abc'], /--port must be a port number/],
    ['a stray argument', async () => ['--port', '0', 'extra'], /Unexpected argument 'extra'/],
    ['a missing config file', async () => ['--config', '/nonexistent/p2p.toml'], /cannot read config file/],
    ['an invalid mode in the file', async () => ['--config', await tempFile('m.toml', 'mode = "x"\n')], INVALID_MODE],
    ['an unknown key in the file', async () => ['--config', await tempFile('k.toml', 'mdoe = "both"\n')], /unknown key 'mdoe'/],
    ['an unknown key in a table', async () => ['--config', await tempFile('t.toml', '[listeners]\nprot = 1\n')], /\[listeners\]: unknown key 'prot'/],
    ['a table that is not one', async () => ['--config', await tempFile('n.toml', 'listeners = 1\n')], /\[listeners\] must be a table/],
    ['a TOML syntax error', async () => ['--config', await tempFile('s.toml', 'mode = \n')], /s\.toml/],
    ['an admin API on the network without a token', async () => ['--admin-port', '0', '--admin-host', '0.0.0.0'], /set admin\.token/],
    ['TLS without a key', async () => ['--tls-port', '0', '--tls-cert', 'c.pem'], /needs both/],
    ['a Redis URL that is not one', async () => ['--redis', 'http://127.0.0.1:6379'], /--redis must be a redis:\/\/ or rediss:\/\/ URL/],
    ['a bad keyword', async () => ['--keyword', 'a/b'], /keyword must be one non-empty topic level/],
    ['a wait for Redis a timer cannot hold', async () => ['--config', await tempFile('st.toml', '[cluster]\nstartup_timeout = 9999999\n')], /cluster\.startup_timeout must be at most 86400 seconds/],
    ['a bad log level', async () => ['--log-level', 'loud'], /--log-level must be one of/],
    ['a bad log format', async () => ['--log-format', 'xml'], '--log-format must be one of json, pretty (got "xml")'],
    ['a bad log format in the file', async () => ['--config', await tempFile('f.toml', '[log]\nformat = "plain"\n')], /log\.format must be one of json, pretty/],
    ['a packet size too small for a CONNECT', async () => ['--max-packet-size', '10'], /--max-packet-size must be a whole number of at least 64/],
    ['a packet size past MQTT\'s own largest', async () => ['--max-packet-size', '300000000'], /--max-packet-size must be at most 268435460/],
    ['no connections at all', async () => ['--max-connections', '0'], /--max-connections must be a whole number of at least 1/],
    ['a count that is not a number', async () => ['--max-connections', 'lots'], /--max-connections must be a whole number/],
    ['an unknown limit in the file', async () => ['--config', await tempFile('l.toml', '[limits]\nmax_packets = 1\n')], /\[limits\]: unknown key 'max_packets'/],
    ['a negative expiry in the file', async () => ['--config', await tempFile('e.toml', '[limits]\nmessage_expiry = -1\n')], /limits\.message_expiry must be a whole number of at least 0/],
    ['a data directory with Redis', async () => ['--data-dir', '/tmp/p2p', '--redis', 'redis://127.0.0.1:6379'], /cannot be combined/],
    ['a zero cluster buffer in the file', async () => ['--config', await tempFile('c.toml', '[cluster]\nmax_buffered_messages = 0\n')], /cluster\.max_buffered_messages must be a whole number of at least 1/]
  ]
  for (const [name, args, message] of cases) {
    it(`exits 2 on ${name}, without starting the broker`, async (t) => {
      const result = await cli(t, ['--port', '0', ...await args()])
      assert.equal(result.code, 2)
      if (typeof message === 'string') assert.ok(result.stderr.includes(message), result.stderr)
      else assert.match(result.stderr, message)
      assert.equal(result.started, 0)
      assert.equal(result.listened, 0)
    })
  }

  it('says what is wrong with a flag in one line and where to look, without the usage', async (t) => {
    for (const [argv, first] of [
      [['--prot', '1'], "aedes-p2p: Unknown option '--prot'."],
      [['extra'], "aedes-p2p: Unexpected argument 'extra'."],
      [['--mqtt5=yes'], "aedes-p2p: Option '--mqtt5' does not take an argument."]
    ] as const) {
      const result = await cli(t, [...argv])
      assert.equal(result.code, 2)
      assert.equal(result.stderr, `${first} Run aedes-p2p --help for the options.\n`)
    }
  })

  it('exits 2 on an unreadable TLS certificate, read before any listener binds, and leaves no signal handler', async (t) => {
    const handlers = process.listenerCount('SIGHUP')
    const result = await cli(t, ['--port', '0', '--tls-port', '0', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /cannot read listeners\.tls_cert/)
    assert.equal(result.started, 1)
    assert.equal(result.listened, 0)
    assert.equal(process.listenerCount('SIGHUP'), handlers)
  })

  it('exits 2 on an unreadable TLS certificate before it waits for a Redis that is not there', { timeout: 20_000 }, async (t) => {
    const result = await cli(t, ['--port', '0', '--redis', 'redis://127.0.0.1:1', '--tls-port', '0', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /cannot read listeners\.tls_cert/)
    assert.equal(result.listened, 0)
  })
})

describe('broker CLI usage', () => {
  it('lists every flag of the table, with the defaults from the settings', async (t) => {
    const result = await cli(t, ['--help'])
    assert.equal(result.code, 0)
    for (const flag of FLAGS) {
      // the longest flag and its argument still stand apart from their help
      assert.ok(result.stdout.includes(`--${flag.name}${flag.arg === undefined ? '' : ' ' + flag.arg}  `), `--${flag.name} in the usage, in its column`)
    }
    assert.match(result.stdout, /--port PORT .*\(default 1883\)/)
    assert.match(result.stdout, /--host HOST .*\(default 127\.0\.0\.1\)/)
    assert.match(result.stdout, /--mode MODE .*\(default prefix\)/)
    assert.match(result.stdout, /--admin-token TOKEN .*\(or P2P_ADMIN_TOKEN\)/)
    assert.equal(result.listened, 0)
  })
})

describe('hash-password', () => {
  it('prints a salted hash that verifies, from an argument or from stdin', async (t) => {
    const first = await cli(t, ['hash-password', 'pw'])
    const second = await cli(t, ['hash-password'], ['pw\n'])
    assert.equal(first.code, 0)
    assert.equal(second.code, 0)
    assert.match(first.stdout, /^\$scrypt\$N=\d+,r=\d+,p=\d+\$\S+\$\S+\n$/)
    assert.notEqual(first.stdout, second.stdout, 'salted')
    assert.equal(await verifyPassword(Buffer.from('pw'), first.stdout.trim()), true)
    assert.equal(await verifyPassword(Buffer.from('pw'), second.stdout.trim()), true)
  })

  it('prints its usage for --help and -h, and hashes neither', async (t) => {
    for (const flag of ['--help', '-h']) {
      const result = await cli(t, ['hash-password', flag])
      assert.equal(result.code, 0)
      assert.match(result.stdout, /^Usage: aedes-p2p hash-password \[--\] \[PASSWORD\]\n/)
      assert.doesNotMatch(result.stdout, /\$scrypt\$/)
    }
  })

  it('refuses any other argument that starts with -, pointing to stdin for such a password', async (t) => {
    for (const argument of ['--hlep', '-secret']) {
      const result = await cli(t, ['hash-password', argument])
      assert.equal(result.code, 2)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, new RegExp(`^aedes-p2p: Unknown option '${argument}' for hash-password \\(to hash a password that starts with '-', pass it on stdin, or after '--'\\)\\.`))
    }
    const fromStdin = await cli(t, ['hash-password'], ['-secret\n'])
    assert.equal(fromStdin.code, 0)
    assert.equal(await verifyPassword(Buffer.from('-secret'), fromStdin.stdout.trim()), true)
    // after --, what follows is the password, --help included
    for (const password of ['-secret', '--help']) {
      const ended = await cli(t, ['hash-password', '--', password])
      assert.equal(ended.code, 0)
      assert.equal(await verifyPassword(Buffer.from(password), ended.stdout.trim()), true)
    }
  })

  it('refuses an empty password', async (t) => {
    const result = await cli(t, ['hash-password'], ['\n'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /empty password/)
  })
})
