/**
 * What the kernel says a process has used, read from /proc so that a broker
 * is measured from outside, threads and all, without code of ours inside it.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

// utime and stime are in clock ticks; 100 on every Linux we know, but ask
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100

/** User plus system CPU seconds the process has used so far. */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // the command name may hold spaces; fields are counted after its closing paren
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS
}

/** Resident set size in bytes. */
export function rssBytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error(`no VmRSS for process ${pid}`)
  return Number(match[1]) * 1024
}
