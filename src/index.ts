/**
 * aedes-p2p-messaging: point-to-point messaging for an Aedes broker.
 * The public API; everything else in the package is internal.
 */
export { register } from './plugin/register.js'
export type { P2PHandle } from './plugin/register.js'
export type { P2POptions, PluginConfig, UserDirectory } from './plugin/options.js'
export { INVALID_MODE, PLUGIN_DEFAULTS } from './plugin/options.js'
export type { AuthorizeP2P, P2PMessage } from './plugin/authorization.js'
export type { RuleConfig } from './plugin/rules.js'
export type { Mode } from './plugin/topic.js'
export type { CounterSnapshot, DropReason } from './plugin/counters.js'
export type { PluginLimits } from './plugin/limits.js'
export { LIMIT_DEFAULTS } from './plugin/limits.js'
export type { Logger } from './plugin/log.js'
export { ConfigError, P2PError } from './plugin/errors.js'
export type { P2PErrorCode } from './plugin/errors.js'
export { standalone } from './cluster/standalone.js'
export { emitterCluster } from './cluster/emitter.js'
export type { ReceiverCount } from './cluster/emitter.js'
export { SENDER_PROPERTY } from './plugin/headers.js'
export type { MessageHeaders, PublishProperties } from './plugin/headers.js'
export type { Addressed, Cluster, ClusterLimits, ClusterNode, Outcome } from './cluster/strategy.js'
export { CLUSTER_LIMIT_DEFAULTS } from './cluster/strategy.js'
