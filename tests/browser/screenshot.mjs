// screenshot.mjs — a picture of a memscope dashboard, as docs/dashboard.png was
// made (from the memscope-report.html that make demo writes):
//   bash tests/browser/install.sh build/tests/browser
//   cp tests/browser/screenshot.mjs build/tests/browser/
//   node build/tests/browser/screenshot.mjs memscope-report.html docs/dashboard.png [WIDTH HEIGHT [dark]]
import { chromium } from 'playwright-core';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [page_, out, w, h, scheme] = process.argv.slice(2);
if (!out) {
  console.error('usage: node screenshot.mjs PAGE.html OUT.png [WIDTH HEIGHT [dark]]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: Number(w || 1280), height: Number(h || 800) },
    colorScheme: scheme === 'dark' ? 'dark' : 'light' });
  await page.goto(pathToFileURL(resolve(page_)).href);
  await page.waitForFunction(() => window.msPaintMs !== undefined);
  await page.screenshot({ path: out });
} finally {
  await browser.close();
}
