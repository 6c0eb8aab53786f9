/**
 * `preview ID --png FILE [--width 600|375]`: a screenshot through the system Chromium. The PNG
 * test needs /usr/bin/chromium (CI installs Debian's `chromium` in .ci/run); without it the test
 * fails and says how to install it. The "no Chromium" message is tested everywhere, by pointing
 * --chromium at a path that does not exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);

let ws: Workspace;
let id: number;

beforeAll(async () => {
  assertBuilt();
  ws = await makeWorkspace('newsletter-preview-');
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(2);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const template = path.join(ws.copyTemplates(), 'welcome.mjml');
  const created = await ws.json<{ id: number }>([
    'create',
    '--subject',
    'Hello {{name}}',
    '--template',
    template,
    '--list',
    'readers',
    '--json',
  ]);
  id = created.id;
});

afterAll(async () => ws?.cleanup());

/** Width and height from the IHDR chunk, after checking the PNG signature. */
function pngSize(file: string): { width: number; height: number } {
  const png = readFileSync(file);
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('preview --png', () => {
  it('writes a PNG at 375 px (mobile) and 600 px (the default)', async () => {
    if (!hasChromium) throw new Error('needs /usr/bin/chromium: apt-get install chromium (as .ci/run does)');
    const mobile = await ws.json<{ file: string; width: number; height: number; to: string }>(
      [
        'preview',
        String(id),
        '--png',
        'mobile.png',
        '--width',
        '375',
        '--recipient',
        'reader2@example.net',
        '--json',
      ],
      { timeoutMs: 60_000 },
    );
    expect(mobile).toMatchObject({ file: ws.path('mobile.png'), width: 375, to: 'reader2@example.net' });
    expect(pngSize(ws.path('mobile.png'))).toEqual({ width: 375, height: mobile.height });
    expect(mobile.height).toBeGreaterThan(300);

    const desktop = await ws.run(['preview', String(id), '--png', 'desktop.png'], { timeoutMs: 60_000 });
    expect(desktop.code, describeRun(['preview', '--png'], desktop)).toBe(0);
    expect(desktop.stdout).toMatch(
      /^Wrote .*desktop\.png \(600×\d+ px, for reader1@example\.net; template sha256 [0-9a-f]{12}, stored .+\)\.$/m,
    );
    expect(pngSize(ws.path('desktop.png')).width).toBe(600);
    // The HTML preview was not written: --png replaces it.
    expect(existsSync(ws.path('preview.html'))).toBe(false);
  });

  it('without Chromium: a clear message saying how to install it, and the configuration exit code', async () => {
    const result = await ws.run([
      'preview',
      String(id),
      '--png',
      'x.png',
      '--chromium',
      ws.path('no-chromium'),
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      `preview --png needs Chromium, and there is none at ${ws.path('no-chromium')}`,
    );
    expect(result.stderr).toContain('apt-get install chromium');
    expect(existsSync(ws.path('x.png'))).toBe(false);
  });

  it('only 600 and 375 are widths', async () => {
    const result = await ws.run(['preview', String(id), '--png', 'x.png', '--width', '1024']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('600, 375');
  });

  it('HTML stays the default', async () => {
    await ws.ok(['preview', String(id)]);
    expect(readFileSync(ws.path('preview.html'), 'utf8')).toContain('<html');
  });
});
