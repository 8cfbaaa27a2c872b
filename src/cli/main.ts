#!/usr/bin/env node
/** `aedes-p2p` / `npm start`: an Aedes broker with P2P messaging. */
import { run } from './run.js'

run(process.argv.slice(2)).then((code) => {
  process.exitCode = code
  exitSoon(code)
}, (err: unknown) => {
  process.stderr.write(`aedes-p2p: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
  exitSoon(1)
})

// The process ends by itself once everything is closed; this only ends one
// that something forgotten would keep running, as a stop must end.
function exitSoon (code: number): void {
  setTimeout(() => { process.exit(code) }, 1000).unref()
}
