/**
 * A screenshot of a rendered newsletter, as a desktop (600 px) or mobile (375 px) mail client
 * would lay it out, taken with the system's Chromium driven by playwright-core. playwright-core
 * downloads no browser: it drives the one the system package manager installed
 * (`apt-get install chromium`), so nothing is fetched at run time.
 *
 * Loaded only by `preview --png`.
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../domain/errors.js';
import { writePrivateFile } from '../host/private-files.js';

/** Where Debian/Ubuntu (and most distributions) put it. */
export const CHROMIUM_CANDIDATES: readonly string[] = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export const SCREENSHOT_WIDTHS = [600, 375] as const;

/** How long remote images and fonts may take before the screenshot is taken anyway. */
const LOAD_TIMEOUT_MS = 15_000;

export function findChromium(candidates: readonly string[] = CHROMIUM_CANDIDATES): string | null {
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return null;
}

/** The Chromium binary, or a configuration error that says how to install one. */
export function requireChromium(candidates: readonly string[] = CHROMIUM_CANDIDATES): string {
  const found = findChromium(candidates);
  if (found !== null) return found;
  throw new ConfigError(`preview --png needs Chromium, and there is none at ${candidates.join(' or ')}.`, [
    'Install it with `apt-get install chromium` (Debian, Ubuntu), then run the command again.',
    'Without it, `newsletter preview ID --to-file preview.html` writes the HTML to open in any browser.',
  ]);
}

export interface ScreenshotOptions {
  /** Where to write the PNG. */
  file: string;
  /** The viewport width in CSS pixels; the height is the whole page. */
  width: number;
  /** The Chromium binary; found with findChromium() when absent. */
  executablePath?: string;
}

/** Writes a full-page PNG of `html`; returns its size in pixels. */
export async function screenshotHtml(
  html: string,
  options: ScreenshotOptions,
): Promise<{ file: string; width: number; height: number }> {
  const executablePath = options.executablePath ?? requireChromium();
  const { chromium } = await import('playwright-core');
  const asRoot = process.getuid?.() === 0;
  // A profile of its own each time: no leftover state, and no clash with a running browser.
  const profile = await mkdtemp(path.join(tmpdir(), 'newsletter-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      // Chromium's sandbox refuses to run as root; elsewhere keep it.
      chromiumSandbox: !asRoot,
      args: [
        ...(asRoot ? ['--no-sandbox'] : []),
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: options.width, height: 800 },
      deviceScaleFactor: 1,
      timeout: 60_000,
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      try {
        await page.setContent(html, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
      } catch (error) {
        // Remote images or fonts that never load (no network): show what has loaded.
        if ((error as Error).name !== 'TimeoutError') throw error;
      }
      const png = await page.screenshot({ fullPage: true, type: 'png' });
      // A picture of a subscriber's message: owner-only whatever the umask.
      await writePrivateFile(options.file, png);
      return { file: options.file, ...pngSize(png) };
    } finally {
      await context.close();
    }
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** Width and height from a PNG's IHDR chunk (bytes 16 to 23). */
export function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
