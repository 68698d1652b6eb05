// A small InfluxDB line-protocol receiver for sink tests, on a loopback port 0, plain HTTP or HTTPS
// (a test CA's server certificate): it records every request (time, method, path and query,
// headers, body lines) and answers with what `respond` says (default 204, as InfluxDB does). It
// checks nothing itself: the tests assert on what it recorded.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface ReceivedWrite {
  atMs: number;
  method: string;
  /** Path and query as sent, e.g. /api/v2/write?org=o&bucket=b&precision=ms */
  url: string;
  headers: http.IncomingHttpHeaders;
  lines: string[];
  status: number;
}

export class LineProtocolReceiver {
  readonly writes: ReceivedWrite[] = [];
  /** Status to answer a request with (it is recorded either way). */
  respond: (lines: string[], req: http.IncomingMessage) => number = () => 204;

  private constructor(private readonly server: http.Server, readonly url: string) {}

  static async start(tls?: { certFile: string; keyFile: string }): Promise<LineProtocolReceiver> {
    const box: { self?: LineProtocolReceiver } = {};
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l !== '');
        const status = box.self?.respond(lines, req) ?? 500;
        box.self?.writes.push({ atMs: performance.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, lines, status });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status >= 300 ? `refused with ${status}` : '');
      });
    };
    const server = tls ? https.createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, handler) : http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const self = new LineProtocolReceiver(server, `${tls ? 'https' : 'http'}://127.0.0.1:${port}`);
    box.self = self;
    return self;
  }

  /** Lines of the requests answered 2xx, in arrival order. */
  accepted(): string[] {
    return this.writes.filter((w) => w.status < 300).flatMap((w) => w.lines);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
