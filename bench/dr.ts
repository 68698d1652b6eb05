// `npm run bench:dr`: one curtailment to 1,000 simulated load controllers behind 20 Modbus TCP
// endpoints (50 unit ids each), read-back delay 0, until every controller is written and read back.
// The simulators run in a child process so the gateway's event loop is measured alone. Every
// device is read once first (in the field the pollers hold the connections open and poll), the
// first command of the process runs (cold_total_ms: after the service's start-up warm-up, as in the
// gateway; --no-warm-up leaves it out), one restore, then the measured curtailment (total_ms).
// Per controller: time from the command's `ems.demand_response.send` span start to the end of its
// `controller_cmd` span (verified).
// Last line: one JSON object {controllers, total_ms, p50_ms, p99_ms, cold_total_ms, start_ms, goals, goal_met, ...}.
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadProfile } from '../src/modbus/profile-load.js';
import { profileControls } from '../src/modbus/write-controls.js';
import { wireAddress, type ControlDef, type DeviceProfile } from '../src/config/profile-types.js';
import type { DeviceConfig, SiteConfig } from '../src/config/site-types.js';
import type { DrAck, ResultAck } from '../src/demand-response/ack.js';
import { buildCommand, signedMessage } from '../src/demand-response/sender.js';
import { DemandResponseService } from '../src/demand-response/service.js';
import { generateKeyPair } from '../src/demand-response/signing.js';
import { parsePrivateKey } from '../src/runtime/ed25519-keys.js';
import { EndpointPool } from '../src/modbus/endpoint-pool.js';
import { systemClock } from '../src/runtime/clock.js';
import { SPANS } from '../src/telemetry/semconv.js';
import { createSimulatedDevice, startModbusServer, type ModbusSimServer } from '../simulators/modbus/index.js';
import { onParent, percentile, sleep, startChild, toParent } from './lib/child.js';

const ENDPOINTS = 20;
const UNITS = 50;
const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const role = arg('role') ?? 'gateway';
const withEnable = process.argv.includes('--no-enable') ? false : true;
const warm = !process.argv.includes('--no-warm-up');

async function benchProfile(): Promise<DeviceProfile> {
  const profile = await loadProfile(fileURLToPath(new URL('../../devices/generic-load-controller.yaml', import.meta.url)));
  const controls = profile.controls.map((c): ControlDef => {
    if (c.role !== 'setpoint') return c;
    const out: ControlDef = { ...c, verify: { ...c.verify, delay_ms: 0 } };
    if (!withEnable) delete out.enable;
    return out;
  });
  return { ...profile, controls };
}

async function simulators(): Promise<void> {
  const profile = await benchProfile();
  const servers: ModbusSimServer[] = [];
  for (let e = 0; e < ENDPOINTS; e++) {
    const units = new Map(Array.from({ length: UNITS }, (_, i) => [i + 1, createSimulatedDevice(profile, { seed: e * UNITS + i })] as const));
    servers.push(await startModbusServer({ units }));
  }
  await warmSimulator(profile);
  onParent('writes', () => toParent({ type: 'writes', count: servers.reduce((n, s) => n + s.writes.length, 0) }));
  // The device side's CPU time, asked for before and after each command (outside the timed window).
  onParent('cpu', () => {
    const c = process.cpuUsage();
    toParent({ type: 'cpu', ms: (c.user + c.system) / 1000, requests: servers.reduce((n, s) => n + s.stats.requests, 0) });
  });
  onParent('stop', () => { void Promise.all(servers.map((s) => s.close())).then(() => process.exit(0)); });
  toParent({ type: 'ports', ports: servers.map((s) => s.port) });
}

/**
 * The simulators stand in for load controllers, which have no JIT: their own write and read-back
 * handling is warmed before the run, on a throwaway server of the same profile (its writes are not
 * counted), so the gateway's first command is not timed against a cold simulator.
 */
async function warmSimulator(profile: DeviceProfile): Promise<void> {
  const units = new Map(Array.from({ length: UNITS }, (_, i) => [i + 1, createSimulatedDevice(profile, { seed: 99_000 + i })] as const));
  const server = await startModbusServer({ units });
  const pool = new EndpointPool({ clock: systemClock, logger: pino({ level: 'silent' }) });
  try {
    const controls = profileControls(profile);
    const setpoint = controls.list.find((c) => c.def.role === 'setpoint');
    const ack = setpoint?.verifyPoint;
    if (setpoint === undefined || ack === undefined) throw new Error('bench profile without a setpoint control');
    const device: DeviceConfig = { id: 'warm', profile: profile.profile, host: '127.0.0.1', port: server.port, unit_id: 1, zone: 'warm', poll_interval_ms: 1000, labels: {}, enabled: true };
    const ep = pool.forDevice(device, profile);
    for (let round = 0; round < 10; round++) {
      await Promise.all([...units.keys()].map(async (u) => {
        for (const c of [setpoint, setpoint.enable?.control]) {
          const r = c?.check(round % 2 === 0 ? c.def.min : c.def.max);
          if (r?.ok) await ep.write(u, r.write);
        }
        await ep.read({ unitId: u, table: ack.table, address: wireAddress(profile, ack), count: 1 });
      }));
    }
  } finally {
    await pool.close();
    await server.close();
  }
}

function site(devices: DeviceConfig[]): SiteConfig {
  return {
    version: 1, site: { id: 'bench-site', region: 'bench', nominal_frequency_hz: 50 }, devices,
    telemetry: { service_name: 'bench', otlp_headers: {}, export_interval_ms: 10_000, export_timeout_ms: 5000, resource_attributes: {}, cardinality_limit: 2000, span_queue_size: 2048, span_batch_size: 512, enabled: false },
    grid: { update_interval_ms: 5000, stale_after_ms: 10_000 },
    alerts: { evaluate_interval_ms: 15_000, stale_meter_data_age_ms: 900_000, drop_ratio: 0.001, dr_ack_rate_min: 0.9, frequency_deviation_hz: 0.5, ingestion_latency_p99_ms: 5000 },
    status: { host: '127.0.0.1', port: 0, enabled: false }, logging: { level: 'info' }, source: 'bench.yaml',
  };
}

const ms = (hr: [number, number]): number => hr[0] * 1000 + hr[1] / 1e6;

async function gateway(): Promise<void> {
  // --sim-cpu-prof: a CPU profile of the simulators' process too (in the working directory).
  const sim = startChild(fileURLToPath(import.meta.url), 'sim', process.argv.includes('--sim-cpu-prof') ? ['--cpu-prof'] : []);
  const simCounters = async (): Promise<{ ms: number; requests: number }> => {
    sim.send({ type: 'cpu' });
    return sim.next<{ type: string; ms: number; requests: number }>('cpu', 10_000);
  };
  const dir = mkdtempSync(join(tmpdir(), 'ems-bench-dr-'));
  const pool = new EndpointPool({ clock: systemClock, logger: pino({ level: 'silent' }) });
  let service: DemandResponseService | undefined;
  try {
    const { ports } = await sim.next<{ type: string; ports: number[] }>('ports', 30_000);
    const profile = await benchProfile();
    const devices: DeviceConfig[] = ports.flatMap((port, e) => Array.from({ length: UNITS }, (_, i): DeviceConfig => ({
      id: `lc-${e}-${i + 1}`, profile: profile.profile, host: '127.0.0.1', port, unit_id: i + 1, zone: 'bench-zone',
      poll_interval_ms: 1000, labels: {}, capacity_kw: 300, enabled: true,
    })));
    const spans = new InMemorySpanExporter();
    // Batched, as the gateway's spans are (its queue large enough to keep every span of a command).
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans, { maxQueueSize: 50_000, maxExportBatchSize: 5_000, scheduledDelayMillis: 500 })] });
    const tracer = tracerProvider.getTracer('bench');
    const keys = generateKeyPair();
    const privateKey = parsePrivateKey(keys.privatePem);
    const concurrency = Number(arg('concurrency') ?? 64);
    const acks: DrAck[] = [];
    service = new DemandResponseService({
      config: {
        command_topic: 'ems/{site}/dr/command', ack_topic: 'ems/{site}/dr/ack/{command_id}', public_keys: [keys.publicPem],
        max_clock_skew_ms: 30_000, state_file: join(dir, 'dr-state.json'), max_concurrency: concurrency, dry_run: false,
      },
      site: site(devices), profiles: new Map([[profile.profile, profile]]),
      endpoints: (d) => pool.forDevice(d, profile),
      meter: new MeterProvider().getMeter('bench'), tracer, clock: systemClock,
      // The audit log is part of the work: one line per write, to /dev/null, written as the
      // gateway's logger writes (pino's default destination: synchronous, one write per line).
      // Asynchronous writes (sync: false) sent each line through the thread pool: a third thread
      // competing for the 2 cores of the benchmark machine, and a path the gateway never takes.
      logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true })),
      onAck: (a) => acks.push(a), checkIntervalMs: 0, warmUp: warm,
    });
    const s0 = performance.now();
    await service.start();
    const startMs = performance.now() - s0;
    // In the field the pollers hold these connections open and read every device each second:
    // poll-like reads of every controller's load before the first command (--pre-reads=N rounds, default 1).
    for (let i = 0; i < Number(arg('pre-reads') ?? 1); i++) {
      await Promise.all(devices.map((d) => pool.forDevice(d, profile).read({ unitId: d.unit_id, table: 'holding', address: 40000, count: 2 })));
    }

    // Wall time, the gateway process's CPU time (less at the mercy of a shared machine's load; JIT
    // and GC threads included) and its GC pauses.
    let gcMs = 0;
    const gc = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcMs += e.duration; });
    gc.observe({ entryTypes: ['gc'] });
    const run = async (type: 'curtail' | 'restore', id: string): Promise<{ totalMs: number; cpuMs: number; simCpuMs: number; requests: number; gcMs: number; ack: ResultAck }> => {
      await tracerProvider.forceFlush();
      spans.reset();
      const sim0 = await simCounters();
      const cmd = buildCommand({ siteId: 'bench-site', zone: 'bench-zone', type, reductionMw: 100, durationMinutes: 15, commandId: id });
      // Signed before the clock starts: the EMS signs in its own process.
      const message = Buffer.from(signedMessage(cmd, privateKey));
      const c0 = process.cpuUsage();
      const g0 = gcMs;
      const t0 = performance.now();
      await service?.handleMessage(message, { retained: false });
      const totalMs = performance.now() - t0;
      const c = process.cpuUsage(c0);
      await sleep(0); // the observer is told of the last collections on a later tick
      const ack = acks.filter((a) => a.status === 'completed').at(-1) as ResultAck;
      const sim1 = await simCounters();
      return { totalMs, cpuMs: (c.user + c.system) / 1000, simCpuMs: sim1.ms - sim0.ms, requests: sim1.requests - sim0.requests, gcMs: gcMs - g0, ack };
    };
    const cold = await run('curtail', 'warmup-curtail');
    await sleep(1100); // the profile's 1 s rate limit per controller
    await run('restore', 'warmup-restore');
    await sleep(1100);
    const measured = await run('curtail', 'bench-curtail');
    gc.disconnect();
    await tracerProvider.forceFlush();
    const finished = spans.getFinishedSpans();
    const send = finished.find((s: ReadableSpan) => s.name === SPANS.drSend);
    const perController = finished.filter((s) => s.name === SPANS.drControllerCmd)
      .map((s) => ms(s.endTime) - ms(send?.startTime ?? s.startTime)).sort((a, b) => a - b);
    sim.send({ type: 'writes' });
    const { count: writes } = await sim.next<{ type: string; count: number }>('writes', 10_000);
    const result = {
      controllers: measured.ack.controller_count,
      acknowledged: measured.ack.ack_count,
      endpoints: ENDPOINTS,
      // As the simulators counted them: setpoint, enable, the acknowledge register read back and,
      // because that register can still hold an earlier ACCEPTED, the setpoint register read too.
      requests_per_controller: Number((measured.requests / Math.max(1, measured.ack.controller_count)).toFixed(2)),
      max_concurrency: concurrency,
      total_ms: Number(measured.totalMs.toFixed(1)),
      p50_ms: Number(percentile(perController, 0.5).toFixed(2)),
      p99_ms: Number(percentile(perController, 0.99).toFixed(2)),
      max_ms: Number((perController.at(-1) ?? 0).toFixed(2)),
      cold_total_ms: Number(cold.totalMs.toFixed(1)),
      cold_acknowledged: cold.ack.ack_count,
      cpu_ms: Number(measured.cpuMs.toFixed(1)),
      cold_cpu_ms: Number(cold.cpuMs.toFixed(1)),
      simulator_cpu_ms: Number(measured.simCpuMs.toFixed(1)),
      cold_simulator_cpu_ms: Number(cold.simCpuMs.toFixed(1)),
      gc_ms: Number(measured.gcMs.toFixed(1)),
      cold_gc_ms: Number(cold.gcMs.toFixed(1)),
      warm_up: warm,
      start_ms: Number(startMs.toFixed(1)),
      simulator_writes_total: writes,
      goals: { total_ms: 250, cold_total_ms: 500 },
      goal_met: measured.ack.ack_count === 1000 && cold.ack.ack_count === 1000 && measured.totalMs < 250 && cold.totalMs < 500,
    };
    process.stdout.write(`dr bench: ${result.acknowledged}/${result.controllers} controllers verified in ${result.total_ms} ms (first command of the process ${result.cold_total_ms} ms, ` +
      `start-up ${result.start_ms} ms${warm ? ' with the warm-up' : ', no warm-up'}); per controller p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await service?.stop();
    await pool.close();
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (role === 'sim') await simulators();
else await gateway();
