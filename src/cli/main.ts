#!/usr/bin/env node
/** `aedes-p2p` / `npm start`: an Aedes broker with P2P messaging. */
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { startServer } from '../server.js'
import { loadSettings, type Overrides, type Settings } from '../settings.js'
import { hashPassword } from '../users.js'
import { ConfigError } from '../validate.js'

const USAGE = `Usage: aedes-p2p [options]
       aedes-p2p hash-password [PASSWORD]   (reads stdin without PASSWORD)

  --host HOST          address the MQTT listeners bind (default 127.0.0.1)
  --port PORT          MQTT over TCP (default 1883; 0 picks a free port)
  --ws-port PORT       MQTT over WebSocket, path /mqtt (default off)
  --tls-port PORT      MQTT over TLS (default off; needs --tls-cert, --tls-key)
  --tls-cert FILE      PEM certificate chain
  --tls-key FILE       PEM private key
  --mode MODE          prefix, suffix or both (default prefix)
  --keyword WORD       the topic level that marks P2P topics (default p2p)
  --admin-port PORT    admin HTTP API and /metrics (default off)
  --admin-host HOST    admin API address (default 127.0.0.1)
  --admin-token TOKEN  bearer token for the admin API (or P2P_ADMIN_TOKEN)
  --redis URL          run as one node of a cluster sharing this Redis
  --config FILE        TOML config file; flags override it
  --log-level LEVEL    fatal, error, warn, info, debug, trace or silent (default info)
  -h, --help           show this help

SIGHUP re-reads the config file.
`

const FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  'ws-port': { type: 'string' },
  'tls-port': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  mode: { type: 'string' },
  keyword: { type: 'string' },
  'admin-port': { type: 'string' },
  'admin-host': { type: 'string' },
  'admin-token': { type: 'string' },
  config: { type: 'string' },
  redis: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

function fail (message: string, usage = false): number {
  process.stderr.write(`aedes-p2p: ${message}\n${usage ? '\n' + USAGE : ''}`)
  return 2
}

async function hashCommand (args: string[]): Promise<number> {
  if (args.length > 1) return fail('hash-password takes at most one argument', true)
  let password = args[0]
  if (password === undefined) {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  }
  if (password.length === 0) return fail('refusing to hash an empty password')
  process.stdout.write(await hashPassword(password) + '\n')
  return 0
}

async function main (argv: string[]): Promise<number> {
  if (argv[0] === 'hash-password') return hashCommand(argv.slice(1))
  let values
  try {
    values = parseArgs({ args: argv, strict: true, allowPositionals: false, options: FLAGS }).values
  } catch (err) {
    return fail((err as Error).message, true)
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }
  const flags: Overrides = {
    host: values.host,
    port: values.port,
    wsPort: values['ws-port'],
    tlsPort: values['tls-port'],
    tlsCert: values['tls-cert'],
    tlsKey: values['tls-key'],
    mode: values.mode,
    keyword: values.keyword,
    adminHost: values['admin-host'],
    adminPort: values['admin-port'],
    adminToken: values['admin-token'] ?? process.env.P2P_ADMIN_TOKEN,
    redis: values.redis,
    logLevel: values['log-level']
  }
  const configFile = values.config
  const load = async (): Promise<Settings> => loadSettings(configFile, flags)

  let settings
  try {
    settings = await load()
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message)
    throw err
  }

  const log = pino({ name: 'aedes-p2p', level: settings.log.level })
  let running: Awaited<ReturnType<typeof startServer>> | undefined
  // installed before anything listens, so an early SIGHUP cannot kill the broker
  process.on('SIGHUP', () => {
    if (running === undefined) return
    log.info({ signal: 'SIGHUP' }, 'reloading config')
    running.reload().catch(() => { /* logged by reload; the running config stays */ })
  })
  try {
    running = await startServer({ settings, log, loadSettings: configFile === undefined ? undefined : load })
  } catch (err) {
    log.fatal({ err }, 'broker did not start')
    return err instanceof ConfigError ? fail(err.message) : (fail((err as Error).message), 1)
  }
  log.info({ mode: settings.plugin.mode, keyword: settings.plugin.keyword }, 'P2P messaging ready')

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down')
      resolve()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await running?.close()
  log.info('stopped')
  return 0
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`aedes-p2p: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
