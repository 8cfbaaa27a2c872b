/**
 * Which core each process of a benchmark runs on. Brokers compared side by
 * side share one core and the load generator has another, so the scheduler
 * neither moves a broker mid-run nor seats one beside the load generator
 * while another has a core to itself. Pinning uses `taskset` (util-linux);
 * on a machine without it, or with a single core, nothing is pinned.
 */
import { execFileSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

const CORES = availableParallelism()

// Asked on first use and remembered, not at import: loading a bench module
// (the reports' tests do) must not start a process.
let hasTaskset: boolean | undefined
const taskset = (): boolean => (hasTaskset ??= onPath('taskset'))

/** Whether `command --version` runs. */
export function onPath (command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export interface Placement {
  /** where the load generator and everything not under test run */
  driver: string
  /** where the brokers under test run */
  brokers: string
}

/** null when pinning is not possible here */
export function findPlacement (): Placement | null {
  return !taskset() || CORES < 2 ? null : { driver: '0', brokers: String(CORES - 1) }
}

/** Moves a running process, all its threads, onto `cores` (a taskset list). */
export function pin (pid: number, cores: string): void {
  if (!taskset()) return
  execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cores, String(pid)], { stdio: 'ignore' })
}

/** Every core: undoes pin(). */
export const ALL_CORES = `0-${CORES - 1}`

/**
 * How to fork a Node process so it starts on `cores`: through taskset, which
 * execs Node with the IPC channel intact, so no thread ever runs elsewhere.
 */
export function forkOn (cores: string | undefined, execArgv: string[]): { execPath: string, execArgv: string[] } {
  if (cores === undefined || !taskset()) return { execPath: process.execPath, execArgv }
  return { execPath: 'taskset', execArgv: ['--cpu-list', cores, process.execPath, ...execArgv] }
}
