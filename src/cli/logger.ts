/**
 * The broker's logger on stdout: JSON lines for log collectors (journald,
 * Loki, …), or with `--log-format pretty` lines a person reads at a terminal.
 */
import { pino, type Logger } from 'pino'
import type { Settings } from '../broker/settings.js'

export async function cliLogger ({ level, format }: Settings['log']): Promise<Logger> {
  const options = { name: 'aedes-p2p', level }
  if (format === 'json') return pino(options)
  // loaded only when asked for: a broker logging JSON starts without it
  const { prettyFactory } = await import('pino-pretty')
  const pretty = prettyFactory({
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:standard',
    ignore: 'pid,hostname',
    // a line per entry, its fields after the message, as in the JSON form
    singleLine: true
  })
  // Formatted and written before each log call returns, as pino's own
  // stdout is, rather than by a worker transport: the lines logged just
  // before an exit (`broker did not start`, `stopped`) are not lost.
  const out = pino.destination({ dest: 1, sync: true })
  return pino(options, { write: (line: string) => { out.write(pretty(line)) } })
}
