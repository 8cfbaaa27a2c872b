/**
 * The `aedes-p2p` command: parses the flags, checks every setting before
 * anything listens, runs the broker until SIGINT or SIGTERM, and re-reads the
 * config file on SIGHUP. Bad input exits 2, a broker that cannot start 1.
 */
import { constants } from 'node:os'
import { parseArgs } from 'node:util'
import { startServer, type RunningBroker, type ServerOptions } from '../broker/server.js'
import { loadSettings, type Settings } from '../broker/settings.js'
import { hashPassword } from '../broker/users.js'
import { ConfigError } from '../plugin/errors.js'
import { flagArgs, flagError, HASH_USAGE, overrides, parseArgsOptions, usage } from './flags.js'
import { cliLogger } from './logger.js'

/** Where the command reads and writes; the process's own unless a test says otherwise. */
export interface CliIO {
  stdout (text: string): void
  stderr (text: string): void
  stdin: AsyncIterable<Buffer | string> | Iterable<Buffer | string>
  env: NodeJS.ProcessEnv
  start (options: ServerOptions): Promise<RunningBroker>
}

export const processIO: CliIO = {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
  stdin: process.stdin,
  env: process.env,
  start: startServer
}

/** Resolves with the exit code. */
export async function run (argv: readonly string[], io: CliIO = processIO): Promise<number> {
  if (argv[0] === 'hash-password') return hashCommand(argv.slice(1), io)
  let values
  try {
    values = parseArgs({ args: flagArgs(argv), strict: true, allowPositionals: false, options: parseArgsOptions() }).values
  } catch (err) {
    // one line and where to look, rather than every flag, which hides it
    return fail(io, `${flagError(err)}. Run aedes-p2p --help for the options.`)
  }
  if (values.help === true) {
    io.stdout(usage())
    return 0
  }
  const configFile = typeof values.config === 'string' ? values.config : undefined
  const given = overrides(values, io.env)
  const load = async (): Promise<Settings> => loadSettings(configFile, given)

  let settings
  try {
    settings = await load()
  } catch (err) {
    if (err instanceof ConfigError) return fail(io, err.message)
    throw err
  }

  const log = await cliLogger(settings.log)
  if (given.some((o) => o.key === 'admin.token' && o.where === '--admin-token')) {
    log.warn({ flag: '--admin-token' }, 'the admin token given with --admin-token is visible to every local user in the process list: use --admin-token-file or P2P_ADMIN_TOKEN')
  }
  let running: RunningBroker | undefined
  // installed before anything listens, so an early SIGHUP cannot kill the broker
  const reload = (): void => {
    if (configFile === undefined) {
      log.warn({ signal: 'SIGHUP' }, 'SIGHUP ignored: this broker was started without --config, so there is no config file to re-read')
      return
    }
    if (running === undefined) return
    log.info({ signal: 'SIGHUP' }, 'reloading config')
    running.reload().catch(() => { /* logged by reload; the running config stays */ })
  }
  process.on('SIGHUP', reload)
  // Also before anything listens, so that one that comes as the first
  // listener binds is not the default kill. While the broker starts (it may
  // wait for a Redis that is not there), a stop ends the process at once, as
  // that default would; once it has started, the stop is graceful.
  let stop = (_signal: NodeJS.Signals): void => {}
  const stopped = new Promise<void>((resolve) => {
    stop = (signal) => {
      // a second signal is not swallowed: it ends the process the default way
      process.removeListener('SIGINT', stop)
      process.removeListener('SIGTERM', stop)
      if (running === undefined) {
        log.warn({ signal }, 'stopped while starting')
        process.exit(128 + (constants.signals[signal] ?? 0))
      }
      log.info({ signal }, 'shutting down')
      resolve()
    }
  })
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  try {
    running = await io.start({ settings, log, loadSettings: configFile === undefined ? undefined : load })
  } catch (err) {
    process.removeListener('SIGHUP', reload)
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
    log.fatal({ err }, 'broker did not start')
    return err instanceof ConfigError ? fail(io, err.message) : (fail(io, (err as Error).message), 1)
  }
  if (settings.broker.mqtt5) log.warn('MQTT 5 runs on Aedes 2, a beta: experimental, with the gaps the README lists')
  log.info({ mode: settings.plugin.mode, keyword: settings.plugin.keyword, mqtt5: settings.broker.mqtt5 }, 'P2P messaging ready')

  await stopped
  const complete = await running.close()
  process.removeListener('SIGHUP', reload)
  log.info({ complete }, complete ? 'stopped' : 'stopped without flushing everything')
  return complete ? 0 : 1
}

/** Reports bad input on stderr; the exit code for it. */
function fail (io: CliIO, message: string): number {
  io.stderr(`aedes-p2p: ${message}\n`)
  return 2
}

async function hashCommand (given: readonly string[], io: CliIO): Promise<number> {
  // after `--`, an argument is the password whatever it starts with
  const ended = given[0] === '--'
  const args = ended ? given.slice(1) : given
  if (!ended && (args.includes('--help') || args.includes('-h'))) {
    io.stdout(HASH_USAGE)
    return 0
  }
  const refuse = (message: string): number => fail(io, `${message}. Run aedes-p2p hash-password --help for its usage.`)
  if (args.length > 1) return refuse('hash-password takes at most one argument')
  let password = args[0]
  // a mistyped option must not become the password
  if (!ended && password?.startsWith('-') === true) return refuse(`Unknown option '${password}' for hash-password (to hash a password that starts with '-', pass it on stdin, or after '--')`)
  if (password === undefined) {
    const chunks: Buffer[] = []
    for await (const chunk of io.stdin) chunks.push(Buffer.from(chunk))
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  }
  if (password.length === 0) return fail(io, 'refusing to hash an empty password')
  io.stdout(await hashPassword(password) + '\n')
  return 0
}
