/** The hand-made MQTT clients live in harness/, shared with the bench's hostile part. */
export * from '../../harness/raw.js'
