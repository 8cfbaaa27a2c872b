/**
 * What the kernel says a process has used, read from /proc so that a broker
 * is measured from outside, threads and all, without code of ours inside it.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

// utime and stime are in clock ticks; 100 on every Linux we know, but ask:
// once, when first needed, since loading a bench module must start no process
let ticks: number | undefined
const ticksPerSecond = (): number => (ticks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100)
const RUNTIME = /^se\.sum_exec_runtime\s*:\s*([\d.]+)$/m

/**
 * CPU seconds the process has used so far. Each thread's scheduler runtime
 * (`/proc/<pid>/task/<tid>/sched`, in ms to the ns) where the kernel keeps
 * it: a 1 s run measured in clock ticks would be ±1% from rounding alone.
 * Otherwise user plus system time from `/proc/<pid>/stat`, in ticks.
 */
export function cpuSeconds (pid: number): number {
  const precise = schedRuntime(pid)
  if (precise !== undefined) return precise
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // the command name may hold spaces; fields are counted after its closing paren
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
}

// Threads that have ended take their runtime with them; a broker's threads
// (V8's and libuv's) live as long as it does.
function schedRuntime (pid: number): number | undefined {
  let ms = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let sched: string
    try {
      sched = readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8')
    } catch {
      continue // ended since the listing, or no scheduler debug info here
    }
    const found = RUNTIME.exec(sched)
    if (found === null) return undefined
    ms += Number(found[1])
  }
  return ms > 0 ? ms / 1000 : undefined
}

/** Resident set size in bytes. */
export function rssBytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error(`no VmRSS for process ${pid}`)
  return Number(match[1]) * 1024
}

/** How many files this process may have open (ulimit -n), if the kernel says. */
export function openFileLimit (): number | undefined {
  const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
  return match === null ? undefined : Number(match[1])
}
