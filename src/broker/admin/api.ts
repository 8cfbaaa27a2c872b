/**
 * The admin API (docs/operations.md): probes, Prometheus metrics, the
 * numbers the console draws, and the plugin's config, reload and
 * start/stop, at our own paths and at rmqtt's (`/api/v1/plugins/{node}/…`),
 * so that scripts written for rmqtt work unchanged.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Aedes, Client } from 'aedes'
import type { Registry } from 'prom-client'
import { ConfigError, P2PError } from '../../plugin/errors.js'
import type { P2PHandle } from '../../plugin/register.js'
import type { Logger } from '../../plugin/log.js'
import { clientRoutes } from './clients.js'
import { consoleRoutes, packageInfo } from './console.js'
import { ClientDirectory } from './directory.js'
import { createAdminServer, HttpError, sendJson, type Route } from './http.js'

export const PLUGIN_NAME = 'aedes-p2p-messaging'
export const CONFIG_PATH = `/api/v1/plugins/${PLUGIN_NAME}/config`
export const RELOAD_PATH = CONFIG_PATH + '/reload'

export interface AdminContext {
  broker: Aedes
  plugin: P2PHandle
  metrics: Registry
  /** re-reads the config file; rejects with a ConfigError for a bad config */
  reload (): Promise<unknown>
  /** undefined without a cluster */
  redis (): 'up' | 'down' | undefined
  /** true from the moment a shutdown begins */
  closing (): boolean
  mqtt5: boolean
  /** told of what changes something: kicks, sends, stop and start */
  log: Logger
  usernameOf (client: Client): string | undefined
  token (): string | undefined
  hosts (): readonly string[]
  hostRefused? (host: string, req: IncomingMessage): void
  /** the most bytes a request body may have */
  bodyLimit: number
}

export async function createAdmin (ctx: AdminContext): Promise<Server> {
  const routes = [
    ...apiRoutes(ctx, Date.now()),
    ...clientRoutes({ broker: ctx.broker, plugin: ctx.plugin, directory: new ClientDirectory(ctx.broker), log: ctx.log, usernameOf: ctx.usernameOf }),
    ...await consoleRoutes()
  ]
  return createAdminServer({ routes, token: ctx.token, hosts: ctx.hosts, hostRefused: ctx.hostRefused, bodyLimit: ctx.bodyLimit })
}

function apiRoutes (ctx: AdminContext, startedAt: number): Route[] {
  const { broker, plugin } = ctx
  const node = broker.id
  const uptime = (): number => Math.round((Date.now() - startedAt) / 1000)
  const pluginInfo = (): Record<string, unknown> => ({
    name: PLUGIN_NAME,
    version: packageInfo.version,
    descr: 'point-to-point messaging: publish to p2p/{clientid}/{topic} and only that client receives it',
    inited: true,
    active: plugin.running,
    immutable: plugin.immutable,
    attrs: { mode: plugin.config.mode, keyword: plugin.config.keyword, rules: plugin.config.rules.length }
  })
  // rmqtt names nodes in its paths; this API answers for its own node only
  const thisNode = (asked: string | undefined): void => {
    if (asked !== node) throw new HttpError(404, `node ${JSON.stringify(asked)} is not this one (${node}): ask that node's own admin API`, 'unknown_node')
  }
  const thisPlugin = (params: Record<string, string>): void => {
    thisNode(params.node)
    if (params.plugin !== PLUGIN_NAME) throw new HttpError(404, `no plugin ${JSON.stringify(params.plugin)} on this node: it runs ${PLUGIN_NAME}`, 'unknown_plugin')
  }
  const reload: Route['run'] = async ({ res }) => {
    try {
      sendJson(res, 200, { reloaded: true, config: await ctx.reload() })
    } catch (err) {
      // a bad config is the caller's to fix; anything else is the broker's fault
      const status = err instanceof ConfigError ? 400 : err instanceof P2PError && err.code === 'ERR_P2P_IMMUTABLE' ? 403 : 500
      sendJson(res, status, { reloaded: false, error: (err as Error).message, code: (err as { code?: unknown }).code ?? null })
    }
  }
  const switchTo = (on: boolean): Route['run'] => ({ req, res, params }) => {
    thisPlugin(params)
    try {
      if (on) plugin.start()
      else plugin.stop()
    } catch (err) {
      throw new HttpError(403, (err as Error).message, (err as P2PError).code)
    }
    ctx.log.warn({ by: req.socket.remoteAddress ?? null }, on ? 'P2P routing started through the admin API' : 'P2P routing stopped through the admin API: P2P topics are ordinary topics until it is started')
    sendJson(res, 200, pluginInfo())
  }
  return [
    {
      method: 'GET',
      path: '/health',
      open: true,
      // liveness: a node whose Redis is away still serves its own clients, so it is degraded, not dead
      run: ({ res }) => { sendJson(res, 200, { status: ctx.redis() === 'down' ? 'degraded' : 'ok', uptime_seconds: uptime(), clients: broker.connectedClients, p2p: plugin.running, ...redisField(ctx) }) }
    },
    {
      method: 'GET',
      path: '/ready',
      open: true,
      run ({ res }) {
        const reasons: string[] = []
        if (ctx.closing()) reasons.push('shutting down')
        if (ctx.redis() === 'down') reasons.push('Redis unreachable: new clients would get CONNACK 3')
        sendJson(res, reasons.length === 0 ? 200 : 503, { status: reasons.length === 0 ? 'ready' : 'not ready', reasons })
      }
    },
    {
      method: 'GET',
      path: '/metrics',
      async run ({ res }) {
        const text = await ctx.metrics.metrics()
        res.writeHead(200, { 'Content-Type': ctx.metrics.contentType })
        res.end(text)
      }
    },
    {
      method: 'GET',
      path: '/api/v1/stats',
      run ({ res }) {
        sendJson(res, 200, {
          node,
          version: packageInfo.version,
          uptime_seconds: uptime(),
          mqtt5: ctx.mqtt5,
          clients: broker.connectedClients,
          ...redisField(ctx),
          p2p: { active: plugin.running, mode: plugin.config.mode, keyword: plugin.config.keyword, ...plugin.counters }
        })
      }
    },
    { method: 'GET', path: CONFIG_PATH, run: ({ res }) => { sendJson(res, 200, plugin.config) } },
    { method: 'PUT', path: RELOAD_PATH, run: reload },
    { method: 'GET', path: '/api/v1/plugins', run: ({ res }) => { sendJson(res, 200, [{ node, plugins: [pluginInfo()] }]) } },
    { method: 'GET', path: '/api/v1/plugins/:node', run: ({ res, params }) => { thisNode(params.node); sendJson(res, 200, [pluginInfo()]) } },
    { method: 'GET', path: '/api/v1/plugins/:node/:plugin', run: ({ res, params }) => { thisPlugin(params); sendJson(res, 200, pluginInfo()) } },
    { method: 'GET', path: '/api/v1/plugins/:node/:plugin/config', run: ({ res, params }) => { thisPlugin(params); sendJson(res, 200, plugin.config) } },
    { method: 'PUT', path: '/api/v1/plugins/:node/:plugin/config/reload', run: async (call) => { thisPlugin(call.params); await reload(call) } },
    { method: 'PUT', path: '/api/v1/plugins/:node/:plugin/load', run: switchTo(true) },
    { method: 'PUT', path: '/api/v1/plugins/:node/:plugin/unload', run: switchTo(false) }
  ]
}

function redisField (ctx: AdminContext): { redis?: 'up' | 'down' } {
  const redis = ctx.redis()
  return redis === undefined ? {} : { redis }
}
