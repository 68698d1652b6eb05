// A lost broker session is an event. Every MQTT client of the gateway asks for a persistent
// session (clean start off; MQTT 5: a session expiry above 0; the DR client over MQTT 3.1.1 is
// clean on purpose, see src/demand-response/service.ts), so that QoS 1 messages published
// while it is away are queued for it. When the broker answers a reconnect with
// session_present: false after a session existed, those messages are gone: the broker restarted
// without having saved its sessions (mosquitto saves them only at a clean shutdown or every
// autosave_interval, 30 min by default), failed over without session state, or let the session
// expire while the client was away. Subscriptions are made again after every CONNACK
// (SubscriptionKeeper, the DR service), so flow resumes; what was published in between is not
// coming. Here that is logged as a warning naming what may be lost, counted
// (ems.mqtt.session_lost{client}) and kept for /status.
import type { Counter, Meter } from '@opentelemetry/api';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import { METRICS, METRIC_ATTRS, METRIC_UNITS } from '../telemetry/semconv.js';

export interface SessionStatus {
  /** The client asks for a persistent session; false: a loss cannot be told from a normal connect. */
  persistent: boolean;
  /** Reconnects answered without the session the broker should have kept, since start. */
  lost: number;
  /** Wall-clock ms of the latest loss. */
  lastLostAtMs?: number;
}

interface SessionContinuityDeps {
  /** Names the client in the log line and the metric (`meters`, `dr`). */
  client: string;
  /** What the client receives, for the warning: QoS 1 `<at risk>` published meanwhile are lost. */
  atRisk: string;
  clock: Clock;
  logger: Logger;
  /** Where ems.mqtt.session_lost is counted; without one the loss is logged and kept for status only. */
  meter?: Meter;
}

export class SessionContinuity {
  private persistent = false;
  private expiryS: number | undefined;
  private established = false;
  private lostCount = 0;
  private lastLostAtMs: number | undefined;
  private disconnectedAtMs: number | undefined;
  private readonly counter: Counter | undefined;

  constructor(private readonly deps: SessionContinuityDeps) {
    this.counter = deps.meter?.createCounter(METRICS.mqttSessionLost, {
      unit: METRIC_UNITS.mqttSessionLost,
      description: 'Reconnects the broker answered without the persistent session it should have kept (QoS 1 messages published meanwhile are lost), by client',
    });
    // The series exists from the start at 0, so the first loss is an increase a rule can see.
    this.counter?.add(0, { [METRIC_ATTRS.client]: deps.client });
  }

  /**
   * What the client asks for, from its connect options: persistent when clean start is off and,
   * on MQTT 5, the session expiry (seconds) is above 0.
   */
  expect(clean: boolean, protocolVersion: number, sessionExpiryS: number | undefined): void {
    this.persistent = !clean && (protocolVersion !== 5 || (sessionExpiryS ?? 0) > 0);
    this.expiryS = protocolVersion === 5 ? sessionExpiryS : undefined;
  }

  /** The connection closed (the first close after a CONNACK starts the time away). */
  disconnected(): void {
    if (this.established && this.disconnectedAtMs === undefined) this.disconnectedAtMs = this.deps.clock.now();
  }

  /** A CONNACK. Returns true when it reports a lost session. */
  connected(sessionPresent: boolean): boolean {
    const now = this.deps.clock.now();
    const awayMs = this.disconnectedAtMs === undefined ? undefined : now - this.disconnectedAtMs;
    this.disconnectedAtMs = undefined;
    // The first CONNACK of the process creates or resumes the session: nothing to compare with.
    const lost = this.persistent && this.established && !sessionPresent;
    this.established = true;
    if (!lost) return false;
    this.lostCount += 1;
    this.lastLostAtMs = now;
    this.counter?.add(1, { [METRIC_ATTRS.client]: this.deps.client });
    const expired = awayMs !== undefined && this.expiryS !== undefined && awayMs >= this.expiryS * 1000;
    this.deps.logger.warn({
      client: this.deps.client,
      sessions_lost: this.lostCount,
      ...(awayMs !== undefined ? { disconnected_ms: awayMs } : {}),
      ...(this.expiryS !== undefined ? { session_expiry_s: this.expiryS } : {}),
      likely_cause: expired
        ? 'the session expired while disconnected (longer than mqtt.session_expiry)'
        : 'the broker restarted without its saved sessions (mosquitto: persistence true, a short autosave_interval) or failed over without session state',
    }, `broker session lost: QoS 1 ${this.deps.atRisk} published while the broker held no session for this client were not queued and are lost; subscriptions are made again`);
    return true;
  }

  status(): SessionStatus {
    return { persistent: this.persistent, lost: this.lostCount, ...(this.lastLostAtMs !== undefined ? { lastLostAtMs: this.lastLostAtMs } : {}) };
  }
}
