#!/usr/bin/env node
/** `aedes-p2p` / `npm start`: an Aedes broker with P2P messaging. */
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { ConfigError } from '../config.js'
import { startServer } from '../server.js'
import { loadSettings } from '../settings.js'

const USAGE = `Usage: aedes-p2p [options]

  --host HOST        address to listen on for MQTT (default 127.0.0.1)
  --port PORT        MQTT port (default 1883; 0 picks a free one)
  --mode MODE        prefix, suffix or both (default prefix)
  --keyword WORD     the topic level that marks P2P topics (default p2p)
  --config FILE      TOML config file; flags override it
  --log-level LEVEL  fatal, error, warn, info, debug, trace or silent (default info)
  -h, --help         show this help
`

async function main (argv: string[]): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        mode: { type: 'string' },
        keyword: { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    }).values
  } catch (err) {
    process.stderr.write(`aedes-p2p: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }

  let settings
  try {
    settings = await loadSettings(values.config, {
      host: values.host,
      port: values.port,
      mode: values.mode,
      keyword: values.keyword,
      logLevel: values['log-level']
    })
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`aedes-p2p: ${err.message}\n`)
      return 2
    }
    throw err
  }

  const log = pino({ name: 'aedes-p2p', level: settings.log.level })
  let running
  try {
    running = await startServer(settings, log)
  } catch (err) {
    log.fatal({ err }, 'broker did not start')
    process.stderr.write(`aedes-p2p: ${(err as Error).message}\n`)
    return 1
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
  await running.close()
  log.info('stopped')
  return 0
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`aedes-p2p: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
