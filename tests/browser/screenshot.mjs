// screenshot.mjs — a picture of a memscope dashboard, as docs/dashboard.png was
// made (from the memscope-report.html that make demo writes):
//   bash tests/browser/install.sh build/tests/browser
//   cp tests/browser/screenshot.mjs tests/browser/chromium.mjs build/tests/browser/
//   node build/tests/browser/screenshot.mjs memscope-report.html docs/dashboard.png [WIDTH HEIGHT [dark]]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch } from './chromium.mjs';

const [page_, out, w, h, scheme] = process.argv.slice(2);
if (!out) {
  console.error('usage: node screenshot.mjs PAGE.html OUT.png [WIDTH HEIGHT [dark]]');
  process.exit(2);
}
const { context, close } = await launch({ width: Number(w || 1280), height: Number(h || 800) });
try {
  const page = context.pages()[0] || (await context.newPage());
  await page.emulateMedia({ colorScheme: scheme === 'dark' ? 'dark' : 'light' });
  await page.goto(pathToFileURL(resolve(page_)).href);
  await page.waitForFunction(() => window.msPaintMs !== undefined);
  await page.screenshot({ path: out });
} finally {
  await close();
}
