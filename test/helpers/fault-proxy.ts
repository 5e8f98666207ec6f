import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A fault-injecting TCP proxy for the reliability suite: it sits between the product and a
 * real service (moto's S3 server, sshd) and breaks the traffic in one chosen way, for the
 * first few connections or requests only, so that a retry can get through.
 *
 * Byte-level faults (any protocol) count the bytes the client sent on a connection:
 * - `reset`: once `afterBytes` went upstream, the connection is reset (RST) both ways;
 * - `stall`: once `afterBytes` went upstream, nothing moves either way for `stallMs`
 *   (forever, until the proxy closes, when omitted): a hung network path.
 * - `delay`: every chunk the client sends reaches the server `ms` later (a slow, distant link).
 * HTTP-aware faults (for S3; requests with a Content-Length body, the SDK's way) parse the
 * client's requests:
 * - `http-error`: the request is answered by the proxy with `status` (500/503) and an S3
 *   error body, and never reaches the server;
 * - `flip-byte`: one byte in the middle of the request body is inverted on its way to the
 *   server (a corrupting middlebox, bad RAM in a NIC): the server stores wrong bytes unless
 *   someone checks.
 * `times` bounds how many connections (byte-level) or requests (HTTP) get the fault. Open
 * connections count their bytes from the latest setMode, so a pooled connection gets it too.
 */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'reset'; afterBytes: number; times: number }
  | { kind: 'stall'; afterBytes: number; times: number; stallMs?: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'http-error'; status: 500 | 503; times: number; match?: (request: HttpRequestHead) => boolean }
  | { kind: 'flip-byte'; times: number; minBodyBytes: number; match?: (request: HttpRequestHead) => boolean };

export interface HttpRequestHead {
  method: string;
  target: string;
  headers: Record<string, string>;
}

/** One fault the proxy injected: the evidence a test checks, so it cannot pass without the fault. */
export interface FaultEvent {
  kind: FaultMode['kind'];
  connection: number;
  detail: string;
  at: number;
}

export interface FaultProxy {
  port: number;
  /** `127.0.0.1:<port>` */
  address: string;
  /** Faults injected so far. */
  events: FaultEvent[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections currently open (a stalled one stays open until its client gives up). */
  openConnections(): number;
  /** Whether connection `id` (FaultEvent.connection) is still open. */
  isOpen(id: number): boolean;
  /** Changes the fault for connections and requests from now on (the budget starts again). */
  setMode(mode: FaultMode): void;
  close(): Promise<void>;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = 64 * 1024;

export async function startFaultProxy(target: { host: string; port: number }, mode: FaultMode = { kind: 'pass' }): Promise<FaultProxy> {
  let current = mode;
  let used = 0;
  // Bumped by setMode: open connections count their bytes again from the change.
  let generation = 0;
  let accepted = 0;
  const events: FaultEvent[] = [];
  const open = new Set<Socket>();
  const openClients = new Map<number, Socket>();
  const stallTimers = new Set<NodeJS.Timeout>();

  const takeBudget = (kind: FaultMode['kind']): boolean => {
    if (current.kind !== kind || !('times' in current) || used >= current.times) return false;
    used += 1;
    return true;
  };
  const record = (kind: FaultMode['kind'], connection: number, detail: string) => events.push({ kind, connection, detail, at: Date.now() });

  const server: Server = createServer((client) => {
    const id = ++accepted;
    const upstream = createConnection(target);
    open.add(client);
    open.add(upstream);
    openClients.set(id, client);
    const forget = () => {
      openClients.delete(id);
      open.delete(client);
      open.delete(upstream);
    };
    client.once('close', () => {
      forget();
      upstream.destroy();
    });
    upstream.once('close', () => {
      forget();
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());

    let stalled = false;
    const stalledBuffers: { to: Socket; chunk: Buffer }[] = [];
    const send = (to: Socket, from: Socket, chunk: Buffer) => {
      if (chunk.length === 0 || to.destroyed) return;
      if (stalled) {
        stalledBuffers.push({ to, chunk });
        return;
      }
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    upstream.on('data', (chunk: Buffer) => send(client, upstream, chunk));

    // Byte-level faults: count what the client sent on this connection.
    let sent = 0;
    let byteFaultArmed = true;
    let seenGeneration = generation;
    const byteLevel = (chunk: Buffer): Buffer | undefined => {
      const mode = current;
      if (seenGeneration !== generation) {
        seenGeneration = generation;
        sent = 0;
        byteFaultArmed = true;
      }
      if (!byteFaultArmed || (mode.kind !== 'reset' && mode.kind !== 'stall') || sent + chunk.length <= mode.afterBytes) {
        sent += chunk.length;
        return chunk;
      }
      byteFaultArmed = false;
      if (!takeBudget(mode.kind)) {
        sent += chunk.length;
        return chunk;
      }
      const head = chunk.subarray(0, mode.afterBytes - sent);
      const rest = chunk.subarray(mode.afterBytes - sent);
      sent += chunk.length;
      send(upstream, client, head);
      if (mode.kind === 'reset') {
        record('reset', id, `reset after ${mode.afterBytes} bytes`);
        client.resetAndDestroy();
        upstream.resetAndDestroy();
        return undefined;
      }
      record('stall', id, `stalled after ${mode.afterBytes} bytes${mode.stallMs === undefined ? '' : ` for ${mode.stallMs} ms`}`);
      stalled = true;
      stalledBuffers.push({ to: upstream, chunk: rest });
      if (mode.stallMs !== undefined) {
        const timer = setTimeout(() => {
          stallTimers.delete(timer);
          stalled = false;
          for (const { to, chunk: buffered } of stalledBuffers.splice(0)) if (!to.destroyed) to.write(buffered);
        }, mode.stallMs);
        stallTimers.add(timer);
      }
      return undefined;
    };

    // HTTP-aware faults: a small request parser over the client's bytes.
    const http = new HttpRequestSplitter({
      onHead: (request) => {
        const mode = current;
        if (mode.kind === 'http-error' && (mode.match?.(request) ?? true) && takeBudget('http-error')) {
          record('http-error', id, `${mode.status} for ${request.method} ${request.target}`);
          return { action: 'answer', respond: () => answerWithError(client, upstream, mode.status, request) };
        }
        if (mode.kind === 'flip-byte' && (mode.match?.(request) ?? true)) {
          const length = Number(request.headers['content-length'] ?? '0');
          if (length >= mode.minBodyBytes && takeBudget('flip-byte')) {
            const offset = Math.floor(length / 2);
            record('flip-byte', id, `flipped body byte ${offset} of ${length} in ${request.method} ${request.target}`);
            return { action: 'flip', offset };
          }
        }
        return { action: 'forward' };
      },
      forward: (bytes) => send(upstream, client, bytes),
    });

    // Delayed chunks keep their order: each waits for the one before.
    let delayed = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      const mode = current;
      if (mode.kind === 'delay') {
        delayed = delayed.then(() => new Promise((resolve) => setTimeout(resolve, mode.ms))).then(() => send(upstream, client, chunk));
        return;
      }
      if (mode.kind === 'http-error' || mode.kind === 'flip-byte') {
        http.push(chunk);
        return;
      }
      const passed = byteLevel(chunk);
      if (passed) send(upstream, client, passed);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    events,
    connections: () => accepted,
    openConnections: () => openClients.size,
    isOpen: (id) => openClients.has(id),
    setMode(mode) {
      current = mode;
      used = 0;
      generation += 1;
    },
    async close() {
      for (const timer of stallTimers) clearTimeout(timer);
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An S3-style error response from the proxy, then the connection closes (the request never reached the server). */
function answerWithError(client: Socket, upstream: Socket, status: 500 | 503, request: HttpRequestHead): void {
  const code = status === 503 ? 'SlowDown' : 'InternalError';
  const reason = status === 503 ? 'Slow Down' : 'Internal Server Error';
  // A response to HEAD has no body (S3 then sends only the status).
  const body =
    request.method === 'HEAD'
      ? ''
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by the fault proxy</Message><Resource>${request.target}</Resource></Error>`;
  client.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  upstream.end();
}

type HeadDecision = { action: 'forward' } | { action: 'flip'; offset: number } | { action: 'answer'; respond: () => void };

/**
 * Splits a client's byte stream into HTTP/1.1 requests (head + Content-Length body), one at a
 * time, as Node's agent sends them (no pipelining). A chunked body, or anything it does not
 * understand, switches it to plain forwarding for the rest of the connection.
 */
class HttpRequestSplitter {
  private state: 'head' | 'body' | 'opaque' | 'discard' = 'head';
  private head = Buffer.alloc(0);
  private bodyLeft = 0;
  private bodyDone = 0;
  private decision: HeadDecision = { action: 'forward' };

  constructor(
    private readonly handlers: { onHead: (request: HttpRequestHead) => HeadDecision; forward: (bytes: Buffer) => void },
  ) {}

  push(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.state === 'discard') return;
      if (this.state === 'opaque') {
        this.handlers.forward(rest);
        return;
      }
      if (this.state === 'head') {
        this.head = Buffer.concat([this.head, rest]);
        const end = this.head.indexOf(HEAD_END);
        if (end < 0) {
          if (this.head.length > MAX_HEAD_BYTES) this.becomeOpaque();
          return;
        }
        const headBytes = this.head.subarray(0, end + HEAD_END.length);
        rest = this.head.subarray(end + HEAD_END.length);
        this.head = Buffer.alloc(0);
        const request = parseHead(headBytes.toString('latin1'));
        if (!request) {
          this.handlers.forward(headBytes);
          this.state = 'opaque';
          continue;
        }
        this.decision = this.handlers.onHead(request);
        const chunked = /chunked/i.test(request.headers['transfer-encoding'] ?? '');
        this.bodyLeft = chunked ? 0 : Number(request.headers['content-length'] ?? '0');
        this.bodyDone = 0;
        if (this.decision.action === 'answer') {
          // Answer at once: a client waiting for `100 Continue` would never send the body.
          this.decision.respond();
          this.state = 'discard';
          return;
        }
        this.handlers.forward(headBytes);
        if (chunked) {
          this.state = 'opaque';
          continue;
        }
        this.state = this.bodyLeft > 0 ? 'body' : 'head';
        continue;
      }
      // body
      const take = Math.min(this.bodyLeft, rest.length);
      let piece = rest.subarray(0, take);
      rest = rest.subarray(take);
      if (this.decision.action === 'flip' && this.decision.offset >= this.bodyDone && this.decision.offset < this.bodyDone + take) {
        piece = Buffer.from(piece);
        const at = this.decision.offset - this.bodyDone;
        piece[at] = piece[at]! ^ 0xff;
      }
      this.handlers.forward(piece);
      this.bodyDone += take;
      this.bodyLeft -= take;
      if (this.bodyLeft === 0) this.state = 'head';
    }
  }

  private becomeOpaque(): void {
    const buffered = this.head;
    this.head = Buffer.alloc(0);
    this.state = 'opaque';
    this.handlers.forward(buffered);
  }
}

function parseHead(text: string): HttpRequestHead | undefined {
  const [requestLine, ...lines] = text.split('\r\n');
  const match = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(requestLine ?? '');
  if (!match) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { method: match[1]!, target: match[2]!, headers };
}
