// Time logic with an injected clock: poll scheduling, overrun skipping, per-unit backoff growth.
// The endpoint here is a small in-memory ModbusEndpointClient whose answers take fake time, so
// every instant is exact (real-socket behaviour is covered by poller.test.ts).
import { describe, expect, it } from 'vitest';
import type { DeviceProfile } from '../../src/config/profile-types.js';
import { DevicePoller } from '../../src/modbus/poller.js';
import { DeviceSnapshot } from '../../src/modbus/snapshot.js';
import { ModbusError, type ModbusEndpointClient, type ReadRequest, type ReadResult } from '../../src/modbus/types.js';
import { UnitBackoff } from '../../src/modbus/unit-backoff.js';
import type { Clock, ClockTimer } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { testDevice, testProfile, testRegisters } from './poller-fixtures.js';

class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private nextId = 1;
  now(): number { return 1_700_000_000_000 + this.t; }
  monotonic(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = this.nextId++;
    this.timers.push({ at: this.t + Math.max(0, ms), fn, id });
    return id as unknown as ClockTimer;
  }
  clearTimeout(timer: ClockTimer): void {
    this.timers = this.timers.filter((x) => x.id !== (timer as unknown as number));
  }
  /** Advance fake time, firing due timers in order and letting promise chains settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }
}

/** Answers every read after `latencyMs` of fake time, recording when each request was made. */
class FakeEndpoint implements ModbusEndpointClient {
  readonly key = 'fake:502';
  readonly connected = true;
  starts: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  fail: ModbusError | undefined;
  constructor(private readonly clock: FakeClock, public latencyMs: number) {}
  read(req: ReadRequest): Promise<ReadResult> {
    this.starts.push(this.clock.t);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve, reject) => {
      this.clock.setTimeout(() => {
        this.inFlight -= 1;
        if (this.fail) reject(this.fail);
        else resolve(Uint16Array.from(testRegisters(req.address, req.count)));
      }, this.latencyMs);
    });
  }
  write(): Promise<void> { return Promise.resolve(); }
  onConnect(): () => void { return () => undefined; }
  close(): Promise<void> { return Promise.resolve(); }
}

function setup(latencyMs: number, intervalMs: number) {
  const clock = new FakeClock();
  const endpoint = new FakeEndpoint(clock, latencyMs);
  const profile: DeviceProfile = testProfile({ points: testProfile().points.slice(0, 4) });
  const device = testDevice('d', 502, 1, { poll_interval_ms: intervalMs });
  const snapshot = new DeviceSnapshot();
  snapshot.register(device, profile);
  const overruns: number[] = [];
  const poller = new DevicePoller(device, profile, {
    clock, logger: silentLogger(), endpoint, snapshot,
    observer: { cycleDone: (_id, ms, overrun) => { if (overrun) overruns.push(ms); }, decodeError: () => undefined },
  });
  return { clock, endpoint, poller, snapshot, overruns };
}

describe('poll scheduling with an injected clock', () => {
  it('polls at the start offset, then exactly every interval', async () => {
    const { clock, endpoint, poller, snapshot } = setup(5, 100);
    poller.start(30);
    await clock.advance(430);
    expect(endpoint.starts).toEqual([30, 130, 230, 330, 430]);
    expect(snapshot.get('d', 'w')).toMatchObject({ value: 123.4, readAtMs: clock.now() - 430 + 335 });
    // stop() waits for the cycle in flight (its answer is 5 ms of fake time away).
    const stopping = poller.stop();
    await clock.advance(10);
    await stopping;
    await clock.advance(500);
    expect(endpoint.starts).toHaveLength(5);
    expect(snapshot.values('d').size).toBe(0);
  });

  it('a cycle that overruns is measured and the missed slot skipped, never stacked', async () => {
    const { clock, endpoint, poller, overruns } = setup(250, 100);
    poller.start(0);
    await clock.advance(1000);
    // 250 ms cycles on a 100 ms grid: slots 100 and 200 are skipped, the next cycle starts at 300.
    expect(endpoint.starts).toEqual([0, 300, 600, 900]);
    expect(endpoint.maxInFlight).toBe(1);
    expect(overruns).toEqual([250, 250, 250]);
    expect(poller.status()).toMatchObject({ overruns: 3, up: true });
    const stopping = poller.stop();
    await clock.advance(300);
    await stopping;
  });

  it('the device goes down on a failed cycle, its values leave the snapshot, and up again after', async () => {
    const { clock, endpoint, poller, snapshot } = setup(5, 100);
    poller.start(0);
    await clock.advance(50);
    expect(poller.status().up).toBe(true);
    endpoint.fail = new ModbusError('timeout', 'no response', { device: 'd' });
    await clock.advance(100);
    expect(poller.status()).toMatchObject({ up: false, lastError: { code: 'timeout' } });
    expect(snapshot.values('d').size).toBe(0);
    expect(poller.status().lastGoodAgeMs).toBe(145); // last good cycle ended at 5, now is 150
    endpoint.fail = undefined;
    await clock.advance(100);
    expect(poller.status().up).toBe(true);
    const stopping = poller.stop();
    await clock.advance(10);
    await stopping;
  });
});

describe('plan compile: prepared requests', () => {
  /** An endpoint that prepares reads: records what it prepared and what each read was given. */
  class PreparingEndpoint extends FakeEndpoint {
    prepared: ReadRequest[] = [];
    given: ReadRequest[] = [];
    prepareRead(req: ReadRequest): ReadRequest {
      const r = Object.freeze({ ...req });
      this.prepared.push(r);
      return r;
    }
    override read(req: ReadRequest): Promise<ReadResult> {
      this.given.push(req);
      return super.read(req);
    }
  }

  it('each planned read is prepared once when the plan is compiled, and every poll sends that request', async () => {
    const clock = new FakeClock();
    const endpoint = new PreparingEndpoint(clock, 1);
    const profile = testProfile();
    const device = testDevice('d', 502, 9, { poll_interval_ms: 100 });
    const snapshot = new DeviceSnapshot();
    snapshot.register(device, profile);
    const poller = new DevicePoller(device, profile, { clock, logger: silentLogger(), endpoint, snapshot });
    poller.start(0);
    await clock.advance(450);
    const reads = endpoint.prepared.length;
    expect(reads).toBeGreaterThan(0);
    expect(endpoint.prepared.every((r) => r.unitId === 9)).toBe(true);
    expect(endpoint.given).toHaveLength(5 * reads);
    expect(endpoint.given.every((r) => endpoint.prepared.includes(r))).toBe(true);
    expect(snapshot.get('d', 'w')?.value).toBe(123.4);
    // A recompiled plan prepares its reads again.
    poller.prepare();
    expect(endpoint.prepared).toHaveLength(2 * reads);
    const stopping = poller.stop();
    await clock.advance(10);
    await stopping;
  });
});

describe('UnitBackoff', () => {
  it('backs a unit off after the threshold, growing exponentially up to the cap, and clears on success', () => {
    const b = new UnitBackoff({ failuresBeforeBackoff: 2, baseMs: 1000, maxMs: 10_000, random: () => 1 });
    expect(b.failed(7, 0)).toBe(0);
    expect(b.isBackedOff(7, 0)).toBe(false);
    // random() = 1 draws the ceiling: base + min(max, base * 2^attempt), capped at max.
    expect(b.failed(7, 0)).toBe(2000);
    expect(b.isBackedOff(7, 1999)).toBe(true);
    expect(b.isBackedOff(7, 2000)).toBe(false);
    expect(b.failed(7, 2000)).toBe(3000);
    expect(b.failed(7, 5000)).toBe(5000);
    expect(b.failed(7, 10_000)).toBe(9000);
    expect(b.failed(7, 20_000)).toBe(10_000);
    expect(b.isBackedOff(8, 20_000)).toBe(false); // neighbours untouched
    b.succeeded(7);
    expect(b.isBackedOff(7, 20_001)).toBe(false);
    expect(b.failed(7, 30_000)).toBe(0);
  });

  it('a gateway exception backs off at once, with jitter never below the base', () => {
    const b = new UnitBackoff({ baseMs: 1000, maxMs: 60_000, random: () => 0 });
    expect(b.failed(3, 0, true)).toBe(1000);
    expect(b.remainingMs(3, 400)).toBe(600);
  });
});
