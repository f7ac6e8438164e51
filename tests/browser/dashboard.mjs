// dashboard.mjs — loads a memscope HTML dashboard in Debian's chromium
// (headless, through playwright-core) and checks what a person would see.
//
//   node dashboard.mjs PAGE.html EXPECT.json OUT_DIR
//
// EXPECT.json (written by page.c): {name, peak, active, estimate, panels: [ids
// that must show data], hotspot_stacks, and for the full run names, threads,
// hostile and interact}; or report_json, a JSON report whose figures the page
// must show. Fails (exit 1) on a console error, an uncaught exception, a
// dialog, any request that is not the page itself, "NaN" anywhere in the page,
// a panel without data that should have it, or a wrong figure. Writes
// OUT_DIR/NAME-1280x800.png, and for the full run dashboard-full.png,
// dashboard-dark.png and dashboard-phone.png (NAME "full" is saved as
// "dashboard").
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch } from './chromium.mjs';

const [pagePath, expectPath, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node dashboard.mjs PAGE.html EXPECT.json OUT_DIR');
  process.exit(2);
}
const expect = JSON.parse(readFileSync(expectPath, 'utf8'));
if (expect.report_json) { // the figures of a JSON report of the same run
  const r = JSON.parse(readFileSync(expect.report_json, 'utf8')).report;
  expect.peak = r.peak_memory_bytes;
  expect.active = r.active_allocations;
  expect.estimate = r.is_estimate;
}
const url = pathToFileURL(resolve(pagePath)).href;
const shot = expect.name === 'full' || !expect.name ? 'dashboard' : 'dashboard-' + expect.name;
const failures = [];
const check = (ok, what) => {
  console.log((ok ? 'ok   ' : 'FAIL ') + what);
  if (!ok) failures.push(what);
};


// The full run: sorting, filtering, a stack, zooming, the dark theme and a
// phone-width window, with the screenshots for people.
async function interact(page) {
  // Interactions: sort, filter, expand a stack, zoom.
  const firstLeak = () => page.evaluate(() => document.querySelector('#leaks tbody tr td').textContent);
  const before = await firstLeak();
  await page.click('#leaks th:nth-child(1) button');
  check((await firstLeak()) !== before, 'clicking a column header sorts the leaks');
  await page.fill('#active input[type=search]', 'image');
  const filtered = await page.evaluate(() => document.querySelectorAll('#active tbody tr').length);
  check(filtered === 1, `filtering active blocks by "image" leaves 1 row (${filtered})`);
  await page.fill('#active input[type=search]', '');
  await page.click('#leaks details summary');
  const frames = await page.evaluate(() => document.querySelectorAll('#leaks details[open] li').length);
  check(frames > 0, 'a leak row expands to its stack');
  await page.locator('#memory svg').scrollIntoViewIfNeeded();
  const box = await page.locator('#memory svg').boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const zoomed = await page.evaluate(() => !!document.querySelector('#memory .zoomnote button'));
  check(zoomed, 'dragging across the memory chart zooms in');
  if (zoomed) await page.click('#memory .zoomnote button');
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));

  await page.screenshot({ path: join(outDir, 'dashboard-full.png'), fullPage: true });

  // Dark theme from the system setting.
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const lum = dark.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0) / 765;
  check(lum < 0.3, `dark theme follows the system setting (${dark})`);
  await page.screenshot({ path: join(outDir, 'dashboard-dark.png') });
  await page.emulateMedia({ colorScheme: 'light' });

  // A phone-width window: no sideways scrolling of the page itself.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForFunction(() => document.documentElement.dataset.ready === '1');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal overflow at 390 px (${overflow} px)`);
  await page.screenshot({ path: join(outDir, 'dashboard-phone.png') });
}

const { context, close } = await launch({ width: 1280, height: 800 });
try {
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push('console ' + m.type() + ': ' + m.text()); });
  page.on('pageerror', (e) => problems.push('uncaught: ' + e.message));
  page.on('dialog', (d) => { problems.push('dialog: ' + d.message()); d.dismiss(); });
  page.on('request', (r) => { if (r.url() !== url) problems.push('request: ' + r.url()); });

  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === '1', null, { timeout: 20000 });
  const renderMs = await page.evaluate(() => window.msRenderMs);
  console.log(`rendered in ${renderMs.toFixed(0)} ms`);

  // Figures and names.
  const card = (key) => page.evaluate((k) => {
    const c = document.querySelector(`.card[data-key="${k}"]`);
    return c && { value: c.dataset.value, text: c.textContent };
  }, key);
  const peak = await card('peak');
  check(peak && Number(peak.value) === expect.peak, `peak card holds ${expect.peak} (got ${peak && peak.value})`);
  check(peak && peak.text.includes(expect.peak.toLocaleString('en-US') + ' B'), 'peak card shows the exact bytes');
  check(peak && peak.text.includes('estimated') === !!expect.estimate, `peak card ${expect.estimate ? 'says' : 'does not say'} "estimated"`);
  const active = await card('active');
  check(active && Number(active.value) === expect.active, `active card holds ${expect.active}`);
  const text = await page.evaluate(() => document.body.innerText);
  for (const n of expect.names || []) check(text.includes(n), `the page names ${JSON.stringify(n)}`);
  const nan = await page.evaluate(() => document.documentElement.outerHTML.replace(/<script[\s\S]*?<\/script>/g, '').includes('NaN'));
  check(!nan, 'no NaN anywhere in the drawn page');

  // The hostile name is text, not markup.
  if (expect.hostile) check(text.includes(expect.hostile), 'the hostile name is shown as text');
  const scripts = await page.evaluate(() => document.scripts.length);
  check(scripts === 2, `the page has its own two scripts only (${scripts})`);
  const imgs = await page.evaluate(() => document.querySelectorAll('img').length);
  check(imgs === 0, 'no element was made from a name');

  // Every panel drew something, and none failed.
  const panels = await page.evaluate(() => [...document.querySelectorAll('main > section.panel')].map((s) => ({
    id: s.id, error: !!s.querySelector('.error'), empty: !!s.querySelector('.empty'),
    svg: s.querySelectorAll('svg path, svg rect').length, rows: s.querySelectorAll('tbody tr').length,
  })));
  const want = new Set(expect.panels || []);
  for (const p of panels) {
    check(!p.error, `panel ${p.id} drawn without an error`);
    if (want.has(p.id)) check(!p.empty, `panel ${p.id} shows data`);
    else check(p.empty, `panel ${p.id} says it has nothing to show`);
  }
  const byId = Object.fromEntries(panels.map((p) => [p.id, p]));
  if (want.has('memory')) check(byId.memory.svg > 0, 'memory chart has lines');
  if (want.has('system')) check(byId.system.svg >= 5, 'system charts drawn');
  if (want.has('leaks')) check(byId.leaks.rows > 0, 'leaks table has rows');
  if (want.has('active')) {
    // Sampled: the table lists the recorded blocks, fewer than the estimate.
    const rows = Math.min(expect.active, 50);
    check(expect.estimate ? byId.active.rows > 0 : byId.active.rows === rows, `active table lists its first rows (${byId.active.rows})`);
  }
  if (expect.threads) check(byId.threads.rows === expect.threads, `${expect.threads} threads`);
  if (want.has('flame')) check(byId.flame.svg >= 3, 'flame graph has frames');
  if (want.has('sizes')) check(byId.sizes.svg > 0, 'size histogram has bars');
  if (expect.hotspot_stacks) {
    const withStack = await page.evaluate(() => document.querySelectorAll('#hotspots tbody details').length);
    check(withStack > 0, 'hotspot rows carry their stacks');
  }
  await page.screenshot({ path: join(outDir, shot + '-1280x800.png') });
  if (expect.interact) await interact(page);

  for (const p of problems) check(false, p);
  check(problems.length === 0, 'no console error, exception, dialog or request');
} finally {
  await close();
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
