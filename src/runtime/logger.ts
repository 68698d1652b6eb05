// pino is the one logger. Components take a Logger and make child loggers
// ({component}, {device}); nothing logs through console.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

// Secrets never reach a log line, however a config object or an error is logged.
const REDACT_PATHS = [
  'password', '*.password', 'mqtt.password', 'private_key', '*.private_key', 'headers.authorization', '*.otlp_headers',
  'otlp_headers', 'authorization', '*.authorization', 'token', '*.token', 'secret', '*.secret', 'site.mqtt.password',
  'site.telemetry.otlp_headers',
];

interface CreateLoggerOptions {
  /** The level from the site file; LOG_LEVEL in the environment wins. */
  level?: string;
  destination?: NodeJS.WritableStream;
  /** The environment to read LOG_LEVEL from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Extra base bindings (site id, ...). */
  base?: Record<string, unknown>;
}

function isLogLevel(s: string | undefined): s is LogLevel {
  return s !== undefined && (LOG_LEVELS as readonly string[]).includes(s);
}

/** LOG_LEVEL wins over the site file; an unknown value falls back (with no crash) to the site's or info. */
export function resolveLogLevel(env: NodeJS.ProcessEnv, configured?: string): LogLevel {
  const fromEnv = env['LOG_LEVEL']?.trim().toLowerCase();
  if (isLogLevel(fromEnv)) return fromEnv;
  const fromConfig = configured?.trim().toLowerCase();
  return isLogLevel(fromConfig) ? fromConfig : 'info';
}

export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const options: LoggerOptions = {
    level: resolveLogLevel(opts.env ?? process.env, opts.level),
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid, ...(opts.base ?? {}) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that discards everything: the default in tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The child logger of a component (`meters`, `modbus`, `dr`, ...), optionally of one device. */
export function componentLogger(logger: Logger, component: string, bindings: Record<string, unknown> = {}): Logger {
  return logger.child({ component, ...bindings });
}
