// `ems-gateway run --config <site.yaml> [--status-port N] [--status-host H]`: the program an
// operator runs on the box (deploy/ems-gateway.service). Exit codes: 0 after a graceful stop on
// SIGTERM/SIGINT; 1 when a part fails to start (one line on stderr naming the part); 2 for usage
// and config errors (every config problem printed at once as file:line:col path: message).
import { ConfigError, formatProblem } from '../config/errors.js';
import { loadSite } from '../config/load.js';
import { buildGateway } from '../gateway.js';
import { StartupError, errorText } from '../runtime/lifecycle.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { handleShutdownSignals, type ShutdownSignal } from '../runtime/signals.js';
import { gatewayVersion } from '../runtime/version.js';
import { defineCommand, parseCommandArgs, usageFailure } from './args.js';
import { LOAD_CHECKS } from './load-checks.js';

const USAGE = 'usage: ems-gateway run --config <site.yaml> [--status-port N] [--status-host H] [--log-level L]';

/** After a graceful stop, a handle a library forgot to close must not keep the process alive. */
const EXIT_GRACE_MS = 1000;

const ARGS = defineCommand({
  command: 'run',
  usage: USAGE,
  options: { config: { type: 'string' }, 'status-port': { type: 'string', kind: 'port' }, 'status-host': { type: 'string' }, 'log-level': { type: 'string' } },
  // The site file may also come as the one positional argument.
  positionals: { max: 1 },
});

export async function run(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, ARGS);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (values.config !== undefined && positionals.length > 0) return usageFailure(ARGS, `unexpected argument ${JSON.stringify(positionals[0])} (the site file is already --config)`);
  const configPath = values.config ?? positionals[0];
  if (configPath === undefined) return usageFailure(ARGS, '--config <site.yaml> is required');
  const statusPort = values['status-port'];
  const statusHost = values['status-host'];
  const logLevel = values['log-level'];

  let loaded;
  try {
    loaded = await loadSite(configPath, { env: process.env, ...LOAD_CHECKS });
  } catch (err) {
    if (err instanceof ConfigError) {
      const errors = err.problems.filter((p) => p.severity === 'error');
      process.stderr.write(`${err.problems.map((p) => formatProblem(p)).join('\n')}\n`);
      process.stderr.write(`ems-gateway run: ${errors.length} error(s) in the configuration; not starting\n`);
      return 2;
    }
    process.stderr.write(`ems-gateway run: cannot load ${configPath}: ${errorText(err)}\n`);
    return 2;
  }

  const env = logLevel !== undefined ? { ...process.env, LOG_LEVEL: logLevel } : process.env;
  const root = createLogger({ level: loaded.site.logging.level, env });
  // The gateway adds `site` to its parts' loggers itself; this one says it on run's own lines.
  const logger = root.child({ site: loaded.site.site.id });
  for (const w of loaded.warnings) logger.warn({ component: 'config', where: `${w.file}:${w.line}:${w.col}`, path: w.path }, w.message);

  const gateway = buildGateway(loaded, {
    env: process.env, logger: root,
    ...(statusPort !== undefined ? { statusPort } : {}),
    ...(statusHost !== undefined ? { statusHost } : {}),
  });
  return runUntilSignal(gateway, logger);
}

/** Starts the gateway, waits for SIGTERM/SIGINT, stops it; shared with `demo`. */
export async function runUntilSignal(
  gateway: { start(): Promise<void>; stop(): Promise<{ timedOut: string[]; durationMs: number }>; statusUrl(): string | undefined },
  logger: Logger,
  opts: { onRunning?: () => void; onStopping?: () => void } = {},
): Promise<number> {
  let signalled: ((s: ShutdownSignal) => void) | undefined;
  const signal = new Promise<ShutdownSignal>((resolve) => { signalled = resolve; });
  const removeSignals = handleShutdownSignals({
    onSignal: (s) => {
      logger.info({ component: 'lifecycle', signal: s }, 'stopping');
      signalled?.(s);
    },
    onSecondSignal: (s) => {
      logger.warn({ component: 'lifecycle', signal: s }, 'second signal: exiting without waiting');
      process.exit(130);
    },
  });
  const removeFaultHandlers = installProcessFaultHandlers(logger, () => signalled?.('SIGTERM'));
  try {
    const started = gateway.start();
    // A signal during start-up stops what has started so far.
    const first = await Promise.race([started.then(() => 'started' as const), signal]);
    if (first !== 'started') {
      await started.catch(() => undefined);
      await gateway.stop();
      removeSignals();
      removeFaultHandlers();
      return process.exitCode === 70 ? 70 : 0;
    }
  } catch (err) {
    removeSignals();
    removeFaultHandlers();
    const msg = err instanceof StartupError ? err.message : errorText(err);
    logger.fatal({ component: 'lifecycle', err }, 'start-up failed');
    process.stderr.write(`ems-gateway: start-up failed: ${msg}\n`);
    return 1;
  }
  logger.info({ component: 'lifecycle', version: gatewayVersion(), status_url: gateway.statusUrl() }, 'gateway running');
  opts.onRunning?.();
  await signal;
  opts.onStopping?.();
  const report = await gateway.stop();
  logger.info({ component: 'lifecycle', ms: report.durationMs, timed_out: report.timedOut }, 'stopped');
  removeSignals();
  removeFaultHandlers();
  setTimeout(() => process.exit(process.exitCode ?? 0), EXIT_GRACE_MS).unref();
  // 70 (EX_SOFTWARE) when the stop was caused by an uncaught exception, so systemd counts a failure.
  return process.exitCode === 70 ? 70 : 0;
}

/**
 * The last line of defence: parts must not throw from callbacks (Lifecycle.guard), but if
 * something does, an unhandled rejection is logged (state is intact), and an uncaught exception
 * stops the gateway gracefully (state may not be) so systemd restarts it cleanly.
 */
function installProcessFaultHandlers(logger: Logger, stopGracefully: () => void): () => void {
  const onRejection = (reason: unknown): void => {
    logger.error({ component: 'lifecycle', err: reason }, 'unhandled promise rejection (a bug: please report it)');
  };
  const onException = (err: Error): void => {
    logger.fatal({ component: 'lifecycle', err }, 'uncaught exception (a bug: please report it); stopping');
    process.exitCode = 70;
    stopGracefully();
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
