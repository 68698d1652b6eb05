// The status endpoint: node:http only, loopback by default (127.0.0.1:8780). It exposes no
// control, only reads: /healthz (the process answers), /readyz (every part running, a device up),
// /status (JSON), /status/devices/<id> (one device's raw registers and word orders), / (the page a
// field technician opens on a laptop, server-rendered) and /page (its live part, for its refresh).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../runtime/logger.js';
import { gatherStatus, readiness, type StatusContext } from './status-model.js';
import { renderStatusBody, renderStatusPage } from './status-page.js';

const DEVICE_PREFIX = '/status/devices/';

/** `?device=<id>`: whose live values the page shows when the site has too many to show them all. */
function pickedDevice(query: string): string | undefined {
  return new URLSearchParams(query).get('device') ?? undefined;
}

interface StatusServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  context: StatusContext;
  /** The component's logger (the gateway binds `component: status`). */
  logger: Logger;
}

class StatusServerError extends Error {
  readonly code = 'GW_STATUS_LISTEN';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StatusServerError';
  }
}

export class StatusServer {
  readonly name = 'status';
  private server: http.Server | undefined;
  private boundPort = 0;

  constructor(private readonly opts: StatusServerOptions) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    // A slow or idle client must not hold sockets open forever on a small box.
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new StatusServerError(`status endpoint cannot listen on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message} (set status.port in the site file or --status-port)`, { cause: err }));
      };
      server.once('error', onError);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.logger.warn({ err }, 'status server error'));
    this.boundPort = (server.address() as AddressInfo).port;
    this.server = server;
    this.opts.logger.info({ url: this.url }, 'status page listening');
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${this.boundPort}/`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    try {
      const [path = '/', query = ''] = (req.url ?? '/').split('?');
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        this.send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
        return;
      }
      switch (path) {
        case '/healthz':
          this.send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
          return;
        case '/readyz': {
          const { ready, reasons } = readiness(this.opts.context);
          this.send(res, ready ? 200 : 503, 'text/plain; charset=utf-8', ready ? 'ready\n' : `not ready\n${reasons.join('\n')}\n`);
          return;
        }
        case '/status':
          this.send(res, 200, 'application/json; charset=utf-8', JSON.stringify(gatherStatus(this.opts.context), null, 1));
          return;
        case '/':
        case '/index.html':
          this.send(res, 200, 'text/html; charset=utf-8', renderStatusPage(gatherStatus(this.opts.context), pickedDevice(query)), {
            // The page is self-contained: inline CSS and script, data only from /status on the same origin.
            'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:",
          });
          return;
        case '/page':
          // The page's live part alone: its script swaps it in every 2 s (one renderer, on the server).
          this.send(res, 200, 'text/html; charset=utf-8', renderStatusBody(gatherStatus(this.opts.context), pickedDevice(query)));
          return;
        default:
          if (path.startsWith(DEVICE_PREFIX)) {
            this.sendDevice(res, path.slice(DEVICE_PREFIX.length));
            return;
          }
          this.send(res, 404, 'text/plain; charset=utf-8', 'not found: try /, /status, /status/devices/<id>, /healthz, /readyz\n');
      }
    } catch (err) {
      this.opts.logger.warn({ err }, 'status request failed');
      if (!res.headersSent) this.send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  }

  /** /status/devices/<id>: one device with the raw registers of its last reads. */
  private sendDevice(res: http.ServerResponse, encoded: string): void {
    let id: string;
    try {
      id = decodeURIComponent(encoded);
    } catch {
      this.send(res, 400, 'text/plain; charset=utf-8', 'bad device id\n');
      return;
    }
    const detail = this.opts.context.providers.device?.(id);
    if (detail === undefined) {
      this.send(res, 404, 'text/plain; charset=utf-8', `no polled device ${JSON.stringify(id.slice(0, 100))}: the ids are in /status\n`);
      return;
    }
    this.send(res, 200, 'application/json; charset=utf-8', JSON.stringify(detail, null, 1));
  }

  private send(res: http.ServerResponse, code: number, type: string, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(code, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...headers,
    });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}
