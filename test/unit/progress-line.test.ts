import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProgressDisplay, progressText, type ProgressSample } from '../../src/commands/progress-line.js';

const MiB = 1024 * 1024;
const sample = (at: number, phase: string, bytes?: number): ProgressSample => ({
  elapsedMs: at,
  phase,
  inFlight: bytes === undefined ? [] : [{ step: 'db', bytes, attempt: 1 }],
  at,
});

function stream(isTTY: boolean): PassThrough & { isTTY: boolean; text: () => string } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; text: () => string };
  let text = '';
  s.on('data', (chunk: Buffer) => (text += chunk.toString()));
  s.isTTY = isTTY;
  s.text = () => text;
  return s;
}

describe('progressText', () => {
  it('shows the phase, the bytes and the rate since the previous poll', () => {
    expect(progressText(sample(2000, 'transferring', 6 * MiB), sample(0, 'transferring', 0))).toBe('[0m02s] transferring: db 6.0 MiB (3.0 MiB/s)');
    expect(progressText(sample(0, 'dumping', 512))).toBe('[0m00s] dumping: db 512 B');
    expect(progressText(sample(0, 'writing-manifest'))).toBe('[0m00s] writing-manifest');
  });
});

describe('ProgressDisplay', () => {
  it('on a terminal: one line on stderr, rewritten in place, the phase in colour; nothing on stdout', async () => {
    const out = stream(false);
    const tty = stream(true);
    const display = new ProgressDisplay(out, tty, {});
    display.show(sample(0, 'dumping', 0));
    display.show(sample(1000, 'dumping', MiB));
    display.endLine();
    await new Promise((resolve) => setImmediate(resolve));
    expect(tty.text()).toBe('\r\x1b[2K[0m00s] \x1b[36mdumping\x1b[39m: db 0 B\r\x1b[2K[0m01s] \x1b[36mdumping\x1b[39m: db 1.0 MiB (1.0 MiB/s)\n');
    expect(out.text()).toBe('');
  });

  it('respects NO_COLOR', async () => {
    const tty = stream(true);
    const display = new ProgressDisplay(stream(false), tty, { NO_COLOR: '1' });
    display.show(sample(0, 'dumping', 0));
    await new Promise((resolve) => setImmediate(resolve));
    expect(tty.text()).toBe('\r\x1b[2K[0m00s] dumping: db 0 B');
  });

  it('elsewhere: plain lines on stdout when the phase or step changes, else every 30 s', async () => {
    const out = stream(false);
    const stderr = stream(false);
    const display = new ProgressDisplay(out, stderr, {});
    for (let second = 0; second <= 40; second++) display.show(sample(second * 1000, second < 35 ? 'dumping' : 'transferring', second * MiB));
    display.endLine();
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.text().split('\n').filter(Boolean)).toEqual([
      '[0m00s] dumping: db 0 B',
      '[0m30s] dumping: db 30.0 MiB (1.0 MiB/s)',
      '[0m35s] transferring: db 35.0 MiB (1.0 MiB/s)',
    ]);
    expect(stderr.text()).toBe('');
  });
});
