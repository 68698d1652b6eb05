// One small HTTP(S) client for the HTTP sinks: keep-alive, a timeout per request, TLS with a
// site-provided CA or client certificate (node:https options; the global fetch cannot take a CA
// without undici's Agent, which Node 20 does not expose).
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { SinkTlsConfig } from '../../config/site-types.js';
import { networkFailure } from './sink.js';

interface HttpResponse { status: number; body: string }

export class HttpPoster {
  private readonly agent: http.Agent;
  private readonly tls: https.AgentOptions;

  constructor(private readonly base: URL, tls: SinkTlsConfig | undefined, private readonly timeoutMs: number) {
    this.tls = tls ? {
      ...(tls.ca_file ? { ca: readFileSync(tls.ca_file) } : {}),
      ...(tls.cert_file ? { cert: readFileSync(tls.cert_file) } : {}),
      ...(tls.key_file ? { key: readFileSync(tls.key_file) } : {}),
      rejectUnauthorized: tls.reject_unauthorized,
    } : {};
    this.agent = base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 4, ...this.tls }) : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  post(pathAndQuery: string, body: string | Buffer, headers: Record<string, string>, what: string): Promise<HttpResponse> {
    const url = new URL(pathAndQuery, this.base);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = mod.request(url, {
        method: 'POST', agent: this.agent, timeout: this.timeoutMs,
        headers: { 'content-length': String(Buffer.byteLength(body)), ...headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => { if (size < 4096) { chunks.push(c); size += c.length; } });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8').slice(0, 4096) }));
        res.on('error', (err) => reject(networkFailure(err, what)));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(networkFailure(err, what)));
      req.end(body);
    });
  }

  close(): void { this.agent.destroy(); }
}
