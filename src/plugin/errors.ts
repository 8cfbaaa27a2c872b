/**
 * Errors with stable codes, as Node's own (`err.code`): callers branch on the
 * code, never on the message, which may be reworded.
 */

export type P2PErrorCode =
  /** register() was called on a broker that already has the plugin */
  | 'ERR_P2P_ALREADY_REGISTERED'
  /** stop() or reload() on a plugin registered with `immutable: true` */
  | 'ERR_P2P_IMMUTABLE'
  /** register() was handed something that is not an Aedes broker */
  | 'ERR_P2P_NOT_AEDES'
  /** an Aedes broker outside the supported versions (see peerDependencies) */
  | 'ERR_P2P_AEDES_VERSION'
  /** a bad option, config key, file or flag; `key` names it */
  | 'ERR_P2P_CONFIG'
  /**
   * a QoS 1/2 P2P message not acknowledged because too much already waits on
   * the cluster's store or emitter (Redis away); the sender sends it again
   */
  | 'ERR_P2P_UNAVAILABLE'
  /**
   * a QoS 1/2 P2P message not acknowledged because its target's session
   * queue is full (max_queued_messages, max_queued_bytes)
   */
  | 'ERR_P2P_QUEUE_FULL'
  /** the broker's data directory (--data-dir) cannot be used: locked by another broker, unreadable, inconsistent */
  | 'ERR_P2P_DATA_DIR'
  /** send() was given a target, topic, payload or QoS no P2P message can carry */
  | 'ERR_P2P_INVALID_MESSAGE'
  /** send() while the plugin is stopped: P2P topics are ordinary topics then */
  | 'ERR_P2P_STOPPED'
  /** the broker's Redis (--redis) did not answer within [cluster] startup_timeout at start */
  | 'ERR_P2P_REDIS_UNREACHABLE'

export class P2PError extends Error {
  override name = 'P2PError'
  readonly code: P2PErrorCode

  constructor (code: P2PErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

export class ConfigError extends P2PError {
  override name = 'ConfigError'
  /**
   * The setting at fault, as a path into the config: `mode`, `rules[0].action`,
   * `listeners.port`, `config` for the file itself. A flag names the setting
   * it sets (`--port` → `listeners.port`).
   */
  readonly key: string

  constructor (message: string, key: string) {
    super('ERR_P2P_CONFIG', message)
    this.key = key
  }
}
