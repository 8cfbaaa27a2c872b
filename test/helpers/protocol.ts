/**
 * The MQTT version a test file's clients speak. The shared suites run once
 * with 3.1.1 clients on Aedes 1.2 and once, from test/mqtt5/, with MQTT 5
 * clients on Aedes 2, which alone speaks it; where the two protocols answer
 * differently, a test asks here what its clients are told.
 */
export const protocol = { version: 4 as 4 | 5 }

/** For a test file's top level: its brokers run on Aedes 2 and its clients speak MQTT 5. */
export function speakMqtt5 (): void {
  protocol.version = 5
}

export const v5 = (): boolean => protocol.version === 5

/**
 * The CONNACK code for a refusal, in the file's protocol: a 3.1.1 return
 * code (2 identifier rejected, 3 server unavailable, 4 bad username or
 * password, 5 not authorized) or its MQTT 5 reason code.
 */
export function refusal (code: 2 | 3 | 4 | 5): number {
  return v5() ? { 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87 }[code] : code
}

/** What a SUBACK grants a refused filter: 0x80 in 3.1.1; Aedes 2 tells an MQTT 5 client 0x87 (not authorized). */
export function subscribeRefused (): number {
  return v5() ? 0x87 : 0x80
}

/**
 * The reason code a sender's PUBACK/PUBREC carries for a message at `qos`
 * that the broker answers with `reason`: an MQTT 3.1.1 sender, and any QoS 0
 * one, is told nothing (0).
 */
export function told (qos: number, reason: number): number {
  return v5() && qos > 0 ? reason : 0
}
