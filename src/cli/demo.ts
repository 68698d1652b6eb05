// `ems-gateway demo` (npm run demo): the demo site on one laptop with nothing to install. Starts the
// site's simulated Modbus devices, an embedded MQTT broker and a meter fleet, runs the gateway
// in-process against them, prints a live summary every 2 s, and runs a short scenario (a signed
// curtailment, a malformed burst, a dead device). Exports OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT
// is set. Ctrl-C stops everything and exits 0. Logs go to a file (the terminal is for the summary).
import { createWriteStream, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, formatProblem } from '../config/errors.js';
import { loadSite } from '../config/load.js';
import type { LoadedSite } from '../config/site-types.js';
import { buildGateway } from '../gateway.js';
import { errorText } from '../runtime/lifecycle.js';
import { createLogger } from '../runtime/logger.js';
import { packagePath } from '../runtime/package-root.js';
import { alertTransitions, dataAgeBuckets, formatSummary, quantileOfIncrease } from '../demo/summary.js';
import { PullMetricReader } from '../telemetry/pull-reader.js';
import { DemoFleet, portFree, startDemoSite } from '../demo/site.js';
import { DemoScenario, demoSigningKey } from '../demo/scenario.js';
import { runUntilSignal } from './run.js';
import { defineCommand, parseCommandArgs } from './args.js';
import { LOAD_CHECKS } from './load-checks.js';

const USAGE = `usage: ems-gateway demo [--config config/demo-site.yaml] [--status-port N] [--free-ports] [--meters N] [--rate MSGS_PER_S]
       [--duration S] [--log-file <path>]
  The gateway's JSON log goes to a temporary file, removed when the demo stops cleanly (kept, and
  named, when it does not); --log-file writes it where you say and keeps it.`;

const ARGS = defineCommand({
  command: 'demo',
  usage: USAGE,
  options: {
    config: { type: 'string' }, 'status-port': { type: 'string', kind: 'port' }, 'free-ports': { type: 'boolean' },
    meters: { type: 'string', kind: 'number' }, rate: { type: 'string', kind: 'number' }, duration: { type: 'string', kind: 'number' },
    'log-file': { type: 'string' },
  },
});

export async function run(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, ARGS);
  if (typeof parsed === 'number') return parsed;
  const flags = parsed.values;
  const configPath = flags.config ?? packagePath('config', 'demo-site.yaml');
  const env = process.env;
  const freePorts = flags['free-ports'] === true || env['EMS_DEMO_FREE_PORTS'] === '1';
  const out = (line: string): void => { process.stdout.write(`${line}\n`); };

  let original: LoadedSite;
  try {
    original = await loadSite(configPath, { env, ...LOAD_CHECKS });
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(`${err.problems.map((p) => formatProblem(p)).join('\n')}\n`);
    process.stderr.write(`ems-gateway demo: cannot load ${configPath}: ${err instanceof ConfigError ? 'configuration errors above' : errorText(err)}\n`);
    return 2;
  }

  const keepLog = flags['log-file'] !== undefined;
  const logFile = flags['log-file'] ?? join(tmpdir(), `ems-gateway-demo-${process.pid}.log`);
  let logFd: number;
  try {
    logFd = openSync(logFile, 'w');
  } catch (err) {
    process.stderr.write(`ems-gateway demo: cannot write the log to ${logFile}: ${errorText(err)}\n`);
    return 2;
  }
  const logStream = createWriteStream(logFile, { fd: logFd });
  const logger = createLogger({ level: original.site.logging.level, env, destination: logStream });
  // The stop's exit grace (runUntilSignal) may end the process before closeLog has run.
  if (!keepLog) process.once('exit', (c) => { if (c === 0) rmSync(logFile, { force: true }); });
  /** Closes the log; a temporary one is removed after a clean stop, and named when something failed. */
  const closeLog = async (code: number): Promise<void> => {
    await new Promise<void>((r) => logStream.end(() => r()));
    if (keepLog) return;
    if (code === 0) rmSync(logFile, { force: true });
    else process.stderr.write(`ems-gateway demo: the log is kept in ${logFile}\n`);
  };

  const key = demoSigningKey(packagePath('config', 'keys'), original.site.mqtt?.demand_response?.public_keys ?? []);
  const demo = await startDemoSite(original, { freePorts, logger, env }).catch((err: unknown) => err as Error);
  if (demo instanceof Error) {
    process.stderr.write(`ems-gateway demo: cannot start the simulated site: ${errorText(demo)}\n`);
    await closeLog(1);
    return 1;
  }
  let loaded = demo.loaded;
  // Export only when asked: a demo must not spend its time failing to reach a collector.
  const exporting = (env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? '') !== '' || (env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'] ?? '') !== '';
  loaded = { ...loaded, site: { ...loaded.site, telemetry: { ...loaded.site.telemetry, enabled: exporting } } };
  // Alerts evaluated every 5 s rather than the site's interval, so the demo's faults show promptly.
  loaded = { ...loaded, site: { ...loaded.site, alerts: { ...loaded.site.alerts, evaluate_interval_ms: Math.min(5000, loaded.site.alerts.evaluate_interval_ms) } } };
  const drCfg = loaded.site.mqtt?.demand_response;
  if (key.publicPem !== undefined && loaded.site.mqtt && drCfg) {
    loaded = { ...loaded, site: { ...loaded.site, mqtt: { ...loaded.site.mqtt, demand_response: { ...drCfg, public_keys: [...drCfg.public_keys, key.publicPem] } } } };
  }

  // A pull-only reader on the gateway's MeterProvider (createTelemetry adds the cumulative producer
  // the data-age histogram comes from): collect() when the summary wants figures.
  const reader = new PullMetricReader();
  const st = loaded.site.status;
  const statusPort = flags['status-port']
    ?? (freePorts || !(await portFree(st.host, st.port)) ? 0 : undefined);
  const gateway = buildGateway(loaded, {
    env, logger, extraMetricReaders: [reader], ...(statusPort !== undefined ? { statusPort } : {}),
  });
  const meters = loaded.site.mqtt?.meters;
  const fleet = meters ? new DemoFleet({
    url: demo.broker.url, meters: flags.meters ?? 500, regions: meters.regions?.length ? meters.regions : [loaded.site.site.region],
    rate: flags.rate ?? 200, filter: meters.topics[0] ?? 'meters/+', regionLevel: meters.region_topic_level,
  }) : undefined;
  const scenario = fleet ? new DemoScenario({ loaded, simulators: demo.simulators, fleet, key: key.key, print: out }) : undefined;

  const t0 = Date.now();
  let summaryTimer: NodeJS.Timeout | undefined;
  let durationTimer: NodeJS.Timeout | undefined;
  let previous: ReturnType<typeof dataAgeBuckets>;
  let firing = new Set<string>();
  const tick = async (): Promise<void> => {
    let p99: number | null = null;
    try {
      const { resourceMetrics } = await reader.collect();
      const now = dataAgeBuckets(resourceMetrics);
      p99 = quantileOfIncrease(0.99, now, previous);
      previous = now;
    } catch {
      // The reader is shut down while stopping: print what the status has.
    }
    const status = gateway.status();
    const tr = alertTransitions(firing, status);
    firing = tr.firing;
    for (const l of tr.lines) out(l);
    for (const l of formatSummary({ elapsedMs: Date.now() - t0, status, dataAgeP99S: p99 })) out(l);
  };

  let code = 1;
  try {
    code = await runUntilSignal(gateway, logger, {
      onRunning: () => {
        out(`ems-gateway demo: site ${loaded.site.site.id}, ${loaded.site.devices.length} simulated Modbus devices, broker ${demo.broker.url}, ${fleet ? `meter fleet at ${flags.rate ?? 200} msg/s` : 'no meters'}`);
        out(`  modbus ${demo.simulators.endpoints.map((e) => `127.0.0.1:${e.server.port} (${e.devices.map((d) => `${d.id} unit ${d.unitId}`).join(', ')})`).join('; ')}`);
        out(`  status page ${gateway.statusUrl() ?? '(disabled)'}   logs ${logFile}${keepLog ? '' : ' (removed at exit; --log-file to keep)'}   DR key: ${key.source}`);
        out(`  OTLP export ${exporting ? `to ${env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'] ?? ''}` : 'off (set OTEL_EXPORTER_OTLP_ENDPOINT to export)'}   Ctrl-C to stop`);
        void fleet?.start().catch((err: unknown) => out(`» meter fleet failed: ${errorText(err)}`));
        scenario?.start();
        summaryTimer = setInterval(() => { void tick(); }, 2000);
        const duration = flags.duration;
        // --duration: stop on our own (README checks, CI), the same way Ctrl-C does.
        if (duration !== undefined) durationTimer = setTimeout(() => process.kill(process.pid, 'SIGINT'), duration * 1000);
      },
      onStopping: () => {
        if (summaryTimer) clearInterval(summaryTimer);
        if (durationTimer) clearTimeout(durationTimer);
        scenario?.stop();
        out('ems-gateway demo: stopping');
      },
    });
    await fleet?.stop();
  } finally {
    if (summaryTimer) clearInterval(summaryTimer);
    scenario?.stop();
    await fleet?.stop();
    await demo.close();
    await closeLog(code);
  }
  if (code === 0) out('ems-gateway demo: stopped cleanly');
  return code;
}
