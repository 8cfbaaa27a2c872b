/**
 * What `--redis` names (docs/behaviour.md §10): one Redis (`redis://`,
 * `rediss://`), a Redis Cluster (`redis+cluster://h1:p1,h2:p2,…`) or a
 * Sentinel set (`redis+sentinel://h1:p1,h2:p2/<master name>`), and the
 * ioredis options each takes. A password may be given in the URL's
 * userinfo (`redis+cluster://:secret@h1:p1,…`, a username before the colon),
 * and `+tls` (`rediss+cluster://`, `rediss+sentinel://`) turns TLS on for
 * the Redis nodes.
 */

export interface HostPort { host: string, port: number }

export type RedisTarget =
  | { kind: 'single', url: string }
  | { kind: 'cluster', nodes: HostPort[], username?: string, password?: string, tls: boolean }
  | { kind: 'sentinel', sentinels: HostPort[], name: string, username?: string, password?: string, tls: boolean }

const MULTI = /^(redis|rediss)\+(cluster|sentinel):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#@]+)(?:\/([^?#]*))?$/i

/** The target a URL names, or what is wrong with it (to follow the setting's name: "--redis must be …"). */
export function redisTarget (url: string): RedisTarget | string {
  if (/^rediss?:\/\//i.test(url)) {
    try {
      new URL(url)
    } catch {
      return 'must be a redis:// or rediss:// URL that parses'
    }
    return { kind: 'single', url }
  }
  const match = MULTI.exec(url)
  if (match === null) return 'must be a redis:// or rediss:// URL, or redis+cluster://host:port,host:port… or redis+sentinel://host:port,host:port…/<master name>'
  const [, scheme, kind, user, pass, hosts, path] = match
  const decode = (text: string): string | undefined => {
    try {
      return decodeURIComponent(text)
    } catch {
      return undefined
    }
  }
  const nodes: HostPort[] = []
  for (const part of (hosts as string).split(',')) {
    const hostPort = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(part)
    const port = Number(hostPort?.[2])
    if (hostPort === null || port < 1 || port > 65535) return `must list host:port pairs: ${JSON.stringify(part)} is not one`
    nodes.push({ host: (hostPort[1] as string).replace(/^\[|\]$/g, ''), port })
  }
  const [username, password, name] = [decode(user ?? ''), decode(pass ?? ''), decode(path ?? '')]
  if (username === undefined || password === undefined || name === undefined) return 'must percent-encode its user, password and master name properly'
  const auth = {
    ...(username === '' ? {} : { username }),
    ...(pass === undefined ? {} : { password })
  }
  const tls = scheme?.toLowerCase() === 'rediss'
  if (kind?.toLowerCase() === 'cluster') {
    if (path !== undefined && path !== '') return 'must have no path for a Redis Cluster: a cluster has one database'
    return { kind: 'cluster', nodes, tls, ...auth }
  }
  if (name === '') return 'must end with the master name for Sentinel: redis+sentinel://host:port,…/<master name>'
  return { kind: 'sentinel', sentinels: nodes, name, tls, ...auth }
}

/** The URL as it may be logged: its password hidden, wherever it is written. */
export function redactedUrl (url: string): string {
  // up to the last @ before the host: a password may hold '@' and '/' itself
  const hidden = url.replace(/^([a-z+]+:\/\/[^:@/]*:).*@(?=[^@]*$)/i, '$1***@')
  return hidden.replace(/([?&]password=)[^&#]*/i, '$1***')
}
