#!/usr/bin/env node
/** `aedes-p2p` / `npm start`: an Aedes broker with P2P messaging. */
import { run } from './run.js'

run(process.argv.slice(2)).then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`aedes-p2p: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
