// Subscribing with confirmation: the SUBACK's granted QoS is checked per filter, because a broker
// that refuses a filter (ACL, bad $share syntax) answers 0x80 and otherwise nothing tells us.
import type { MqttClient } from 'mqtt';

class SubscriptionError extends Error {
  readonly code = 'EMS_MQTT_SUBSCRIBE';
  constructor(message: string, readonly refused: string[]) {
    super(message);
    this.name = 'SubscriptionError';
  }
}

interface SubscriptionResult {
  /** Granted QoS per filter. */
  granted: Map<string, number>;
  /** Filters granted a lower QoS than requested (still delivering, but at-most-once). */
  downgraded: string[];
}

export async function subscribeConfirmed(client: MqttClient, filters: readonly string[], qos: 0 | 1): Promise<SubscriptionResult> {
  const map: Record<string, { qos: 0 | 1; rh?: number }> = {};
  // MQTT 5: retain handling 1 = retained messages only for a new subscription, so re-confirming
  // a subscription after each reconnect does not replay retained readings as duplicates.
  for (const f of filters) map[f] = client.options.protocolVersion === 5 ? { qos, rh: 1 } : { qos };
  let grants;
  try {
    grants = await client.subscribeAsync(map);
  } catch (err) {
    // mqtt.js rejects the whole SUBSCRIBE when any filter's reason code is >= 0x80.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number' && code >= 0x80) {
      throw new SubscriptionError(`broker refused subscription to ${filters.map((t) => `'${t}'`).join(', ')}: ${(err as Error).message}`, [...filters]);
    }
    throw err;
  }
  const granted = new Map<string, number>();
  const refused: string[] = [];
  const downgraded: string[] = [];
  for (const g of grants) {
    granted.set(g.topic, g.qos);
    if (g.qos === 128 || g.qos > 2) refused.push(g.topic);
    else if (g.qos < qos) downgraded.push(g.topic);
  }
  if (refused.length > 0) throw new SubscriptionError(`broker refused subscription to ${refused.map((t) => `'${t}'`).join(', ')}`, refused);
  return { granted, downgraded };
}
