// html_render.mjs — how long a memscope dashboard takes to render in headless
// chromium at 1280×800: over RUNS fresh loads, the time from navigation start
// until every panel is in the DOM (window.msRenderMs) and until the first
// frame after that is painted (window.msPaintMs); medians and the slowest.
// Prints "name: value" lines like the C benchmarks.
//
//   node html_render.mjs PAGE.html [RUNS]   (beside tests/browser/chromium.mjs, where
//                                           playwright-core resolves)
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch } from './chromium.mjs';

const [page_, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const url = pathToFileURL(resolve(page_)).href;
const { context, close } = await launch({ width: 1280, height: 800 });
const times = [], paints = [];
let errors = 0;
try {
  for (let i = 0; i < runs; i++) {
    const page = await context.newPage();
    page.on('pageerror', () => errors++);
    page.on('console', (m) => { if (m.type() === 'error') errors++; });
    await page.goto(url);
    await page.waitForFunction(() => document.documentElement.dataset.ready === '1', null, { timeout: 60000 });
    await page.waitForFunction(() => window.msPaintMs !== undefined, null, { timeout: 60000 });
    times.push(await page.evaluate(() => window.msRenderMs));
    paints.push(await page.evaluate(() => window.msPaintMs));
    await page.close();
  }
} finally {
  await close();
}
for (const v of [times, paints]) v.sort((a, b) => a - b);
console.log(`html_render_dom_ms_median: ${times[times.length >> 1].toFixed(0)}`);
console.log(`html_render_painted_ms_median: ${paints[paints.length >> 1].toFixed(0)}`);
console.log(`html_render_painted_ms_max: ${paints[paints.length - 1].toFixed(0)}`);
console.log(`html_render_runs: ${runs}`);
console.log(`html_render_errors: ${errors}`);
process.exit(errors ? 1 : 0);
