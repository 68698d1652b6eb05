// Device samples (`record: true`): after each poll cycle of a recorded device, its numeric points
// as they stand in the snapshot, where the poller has already applied the sentinel and stale rules
// (a point not read this cycle is absent, never repeated). Samples are collected for up to one
// second and committed to the spool together; while the spool holds back (backpressure) at most
// MAX_BUFFER samples wait, older ones beyond are dropped and counted (no broker keeps them).
import type { DeviceConfig } from '../config/site-types.js';
import type { DeviceSnapshot } from '../modbus/snapshot.js';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { DeviceSampleRecord, SpoolRecord } from './records.js';

const FLUSH_MS = 1000;
const MAX_BUFFER = 50_000;

interface SampleTarget {
  append(records: readonly SpoolRecord[]): Promise<void>;
}

export class DeviceSampleRecorder {
  private readonly recorded: Map<string, DeviceConfig>;
  private buffer: DeviceSampleRecord[] = [];
  private timer: ClockTimer | undefined;
  private flushing: Promise<void> | undefined;
  private stopped = false;
  /** Samples dropped because the spool held back for longer than the buffer lasts. */
  dropped = 0;
  recordedTotal = 0;

  constructor(devices: readonly DeviceConfig[], private readonly snapshot: () => DeviceSnapshot, private readonly target: SampleTarget,
    private readonly clock: Clock, private readonly logger: Logger) {
    this.recorded = new Map(devices.filter((d) => d.enabled && d.record === true).map((d) => [d.id, d]));
  }

  get enabled(): boolean { return this.recorded.size > 0; }

  /** PollerSet's onCycle: one sample of the device's fresh numeric values. */
  cycleDone(deviceId: string): void {
    const d = this.recorded.get(deviceId);
    if (d === undefined || this.stopped) return;
    const values: Record<string, number> = {};
    let at = 0;
    let n = 0;
    this.snapshot().forEachValue(deviceId, (point, value, readAtMs) => {
      const num = typeof value === 'number' ? value : typeof value === 'boolean' ? (value ? 1 : 0) : undefined;
      if (num === undefined || !Number.isFinite(num)) return;
      values[point] = num;
      at = Math.max(at, readAtMs);
      n++;
    });
    if (n === 0) return; // a cycle that read nothing is no sample
    this.buffer.push({ kind: 'device', device_id: d.id, zone: d.zone, role: d.role ?? d.profile, timestamp_ms: at, arrived_ms: this.clock.now(), values });
    this.recordedTotal++;
    if (this.buffer.length > MAX_BUFFER) {
      const over = this.buffer.length - MAX_BUFFER;
      this.buffer.splice(0, over);
      if (this.dropped === 0) this.logger.warn({ dropped: over }, 'device samples dropped: the spool is holding back (full) and the sample buffer is full');
      this.dropped += over;
    }
    if (this.timer === undefined && this.flushing === undefined) this.timer = this.clock.setTimeout(() => { this.timer = undefined; this.flush(); }, FLUSH_MS);
  }

  private flush(): void {
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = this.target.append(batch).catch((err: unknown) => {
      // Not committed: put them back in front (bounded by MAX_BUFFER on the next sample).
      this.buffer = batch.concat(this.buffer);
      this.logger.warn({ err: { message: (err as Error).message }, samples: batch.length }, 'device samples not committed yet');
    }).finally(() => {
      this.flushing = undefined;
      if (this.buffer.length > 0 && !this.stopped && this.timer === undefined) this.timer = this.clock.setTimeout(() => { this.timer = undefined; this.flush(); }, FLUSH_MS);
    });
  }

  /** Commits what is buffered (called before the spool closes). */
  async stop(): Promise<void> {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    this.flush();
    this.stopped = true;
    await this.flushing;
  }
}
