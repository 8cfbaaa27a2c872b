/** Waiting for something that may never answer (Redis away), for at most a while. */

/** What `within` resolves with when the time ran out first. */
export const LATE: unique symbol = Symbol('late')

/** `work`'s value, or LATE once `ms` have passed without it; `work` goes on either way. */
export async function within<T> (work: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<typeof LATE>((resolve) => { timer = setTimeout(resolve, ms, LATE) })
  return Promise.race([work, late]).finally(() => { clearTimeout(timer) })
}
