/** The fixed-header flags of PUBREL, SUBSCRIBE and UNSUBSCRIBE: 0010, plus DUP when the sender speaks MQTT 3.1. */
import type { ProtocolVersion } from '../types.js';

/** The DUP bit of a fixed header. */
const DUP = 0x08;

/**
 * Whether `flags` are valid for a PUBREL, SUBSCRIBE or UNSUBSCRIBE of `version`. MQTT 3.1.1 and 5.0
 * reserve them as 0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]. MQTT 3.1 sent these packets at
 * QoS 1 like a PUBLISH, and a client sets DUP when it sends one again (MQTT 3.1 spec, 2.1 "DUP"), so
 * at level 3 1010 is valid too: Mosquitto accepts it, and clients written for it send it.
 */
export function isQos1Flags(flags: number, version: ProtocolVersion): boolean {
  return flags === 0x02 || (version === 3 && flags === (0x02 | DUP));
}

/** The expected flags, as an error message states them. */
export function expectedQos1Flags(version: ProtocolVersion): string {
  return version === 3 ? '0010, or 1010 with DUP in MQTT 3.1' : '0010';
}
