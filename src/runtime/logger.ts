// pino is the one logger. Components take a Logger and make child loggers
// ({component}, {device}); nothing logs through console.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password', '*.password', 'mqtt.password', 'private_key', '*.private_key', 'headers.authorization', '*.otlp_headers',
];

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: process.env['LOG_LEVEL'] ?? opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that discards everything: the default in tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
