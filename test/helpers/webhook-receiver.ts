import { createServer, type Server } from 'node:http';

/** A Slack-style webhook endpoint on loopback that records every JSON body posted to it. */
export interface WebhookReceiver {
  url: string;
  received: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** `status`: what it answers (e.g. 404, a webhook whose token was revoked). */
export async function startWebhookReceiver(status = 200): Promise<WebhookReceiver> {
  const received: Array<Record<string, unknown>> = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      received.push(JSON.parse(body) as Record<string, unknown>);
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'refused');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('webhook receiver has no port');
  return {
    url: `http://127.0.0.1:${address.port}/hooks/erp4`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
