// The browser test of the pages cnscd serves, in headless Chromium driven by playwright-core.
// Run by the Rust test `browser` (tests/tests/api/browser.rs) against a server on the demo data:
//
//   CNSCD_URL=http://127.0.0.1:8080 CNSCD_TOKEN=<a VIEWER token for unit 19> \
//   CNSCD_SCREENSHOTS=../target/browser node browser-test.mjs
//
// GraphiQL: opens /graphql, enters the token, sees the schema's documentation, runs a query
// and compares its result with the API's. Dashboard: enters the token, picks an indicator, a
// unit and a year, compares every number and status shown (children's table, bars, months)
// with the API's `indicatorTable`, switches the language, downloads the CSV, and takes a
// screenshot. Any request to another origin, any script error or content-security-policy
// violation fails the test: the pages must work without internet access.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const base = process.env.CNSCD_URL;
const token = process.env.CNSCD_TOKEN;
const shots = process.env.CNSCD_SCREENSHOTS || '.';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!base || !token) {
  console.error('set CNSCD_URL and CNSCD_TOKEN');
  process.exit(2);
}
const origin = new URL(base).origin;
const failures = [];
const fail = (msg) => {
  failures.push(msg);
  console.error(`FAIL: ${msg}`);
};
const check = (ok, msg) => (ok ? console.log(`ok: ${msg}`) : fail(msg));
const close = (a, b) => (a === null || b === null ? a === b : Math.abs(a - b) < 1e-9 * Math.max(1, Math.abs(b)));

// The API's own answer, for comparison.
async function api(query, variables = {}) {
  const resp = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await resp.json();
  if (body.errors) throw new Error(`API error: ${JSON.stringify(body.errors)}`);
  return body.data;
}

// A number as the dashboard shows it (vi-VN: `.` groups thousands, `,` is the decimal point;
// en-GB the other way round), or null for the dash.
function shown(text, lang) {
  const t = text.trim();
  if (t === '—') return null;
  const plain = lang === 'vi' ? t.replace(/\./g, '').replace(',', '.') : t.replace(/,/g, '');
  return Number(plain);
}
const rounded = (v) => (v === null ? null : Math.round(v * 100) / 100);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
// Nothing may be fetched from elsewhere: such a request is refused and fails the test.
await context.route('**/*', (route) => {
  const url = route.request().url();
  if (url.startsWith(origin) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
  fail(`the page asked for ${url}, outside the server`);
  return route.abort();
});

function watch(page, name) {
  page.on('pageerror', (e) => fail(`${name}: script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) {
      fail(`${name}: ${m.text()}`);
    }
  });
}

try {
  // ---------------------------------------------------------------------------------------
  // GraphiQL
  const page = await context.newPage();
  watch(page, 'graphiql');
  const resp = await page.goto(`${base}/graphql`);
  check(resp.status() === 200, `GET /graphql answers a browser 200 (got ${resp.status()})`);
  await page.fill('#token', token);
  await page.click('#token-apply');
  await page.waitForSelector('.graphiql-container', { timeout: 20000 });
  await page.click('button[aria-label="Show Documentation Explorer"]');
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Query', { exact: true }).first().click({ timeout: 20000 });
  await docs.getByText('indicatorTable', { exact: true }).first().waitFor({ timeout: 20000 });
  check(true, 'GraphiQL shows the schema documentation (Query.indicatorTable) after the token is entered');
  const query =
    'query BrowserCheck { me { subject roles } indicators(codes: ["CNS02", "EG01"], unitCodes: ["169"], ' +
    'from: "2023-01-01", to: "2023-12-31", granularity: YEAR) { indicator { code } value status } }';
  // Typed as a person would (select all, then the new text), so GraphiQL sees the change.
  await page.click('.graphiql-query-editor .CodeMirror');
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(query);
  await page.waitForFunction(
    (q) => {
      const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
      // GraphiQL notes the operation's name on the editor once it has parsed the change.
      return cm.getValue() === q && cm.operationName === 'BrowserCheck';
    },
    query,
  );
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => {
      const cm = document.querySelector('.graphiql-response .CodeMirror');
      return cm && cm.CodeMirror.getValue().includes('"data"');
    },
    null,
    { timeout: 20000 },
  );
  const result = JSON.parse(
    await page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()),
  );
  const expected = await api(query);
  check(
    JSON.stringify(result.data) === JSON.stringify(expected),
    `GraphiQL's result equals the API's: ${JSON.stringify(result.data)}`,
  );
  await page.screenshot({ path: join(shots, 'graphiql.png') });

  // ---------------------------------------------------------------------------------------
  // Dashboard: a fresh tab has no token; the page says so, then works once it is entered.
  const dash = await context.newPage();
  watch(dash, 'dashboard');
  const unit = '169';
  const year = '2023';
  await dash.goto(`${base}/dashboard?unit=${unit}&year=${year}&lang=vi`);
  await dash.waitForFunction(() => document.getElementById('message').textContent.includes('token'));
  check(true, 'the dashboard asks for a token before showing figures');
  await dash.fill('#token', token);
  await dash.click('#token-apply');
  await dash.waitForSelector('#children-table tbody tr[data-unit]', { timeout: 20000 });
  for (const code of ['CNS02', 'EG01']) {
    await dash.selectOption('#indicator', code);
    await dash.selectOption('#year', year);
    await dash.selectOption('#unit', unit);
    await dash.click('#show');
    await dash.waitForFunction((c) => document.getElementById('heading').textContent.startsWith(c), code, {
      timeout: 20000,
    });
    await dash.waitForFunction(() => document.getElementById('message').textContent === '');
    const truth = await api(
      `query Truth($c: [String!]!, $u: [String!]!) {
        children: indicatorTable(codes: $c, unitCodes: $u, from: "${year}-01-01", to: "${year}-12-31", granularity: YEAR, breakdown: CHILDREN) { units values statuses }
        months: indicatorTable(codes: $c, unitCodes: $u, from: "${year}-01-01", to: "${year}-12-31", granularity: MONTH) { periods values statuses }
        whole: indicatorTable(codes: $c, unitCodes: $u, from: "${year}-01-01", to: "${year}-12-31", granularity: YEAR) { values statuses } }`,
      { c: [code], u: [unit] },
    );
    const rows = await dash.$$eval('#children-table tbody tr[data-unit]', (trs) =>
      trs.map((tr) => ({
        unit: tr.getAttribute('data-unit'),
        value: tr.querySelector('td.value').getAttribute('data-value'),
        text: tr.querySelector('td.value').textContent,
        status: tr.querySelector('[data-status]').getAttribute('data-status'),
      })),
    );
    check(
      rows.length === truth.children.units.length && rows.length > 0,
      `${code}: the table has a row per child unit (${rows.length} of ${truth.children.units.length})`,
    );
    let same = true;
    truth.children.units.forEach((u, i) => {
      const r = rows[i] || {};
      const v = truth.children.values[i];
      const attr = r.value === 'null' ? null : Number(r.value);
      if (r.unit !== u || !close(attr, v) || !close(shown(r.text || '', 'vi'), rounded(v)) || r.status !== truth.children.statuses[i]) {
        same = false;
        fail(`${code}: row ${i} shows ${JSON.stringify(r)}, the API says ${u} ${v} ${truth.children.statuses[i]}`);
      }
    });
    check(same, `${code}: every child's value (as stored and as shown) and status equal the API's`);
    const bars = await dash.$$eval('#bars rect[data-unit]', (rs) => rs.map((r) => [r.getAttribute('data-unit'), r.getAttribute('data-value')]));
    check(
      bars.length === truth.children.units.length &&
        bars.every(([u, v], i) => u === truth.children.units[i] && close(v === 'null' ? null : Number(v), truth.children.values[i])),
      `${code}: the bar chart has the children's values`,
    );
    const months = await dash.$$eval('#months-table tbody tr[data-period]', (trs) =>
      trs.map((tr) => [tr.getAttribute('data-period'), tr.querySelector('td.value').getAttribute('data-value'), tr.querySelector('[data-status]').getAttribute('data-status')]),
    );
    check(
      months.length === 12 &&
        months.every(
          ([p, v, s], i) =>
            p === truth.months.periods[i] && close(v === 'null' ? null : Number(v), truth.months.values[i]) && s === truth.months.statuses[i],
        ),
      `${code}: the twelve months equal the API's`,
    );
    const points = await dash.$$eval('#months circle[data-period]', (cs) => cs.length);
    check(points === truth.months.values.filter((v) => v !== null).length, `${code}: the month line has a point per month with a value (${points})`);
    const whole = await dash.getAttribute('#unit-value', 'data-value');
    check(close(whole === 'null' ? null : Number(whole), truth.whole.values[0]), `${code}: the unit's own value equals the API's (${whole})`);
  }
  await dash.screenshot({ path: join(shots, 'dashboard-vi.png'), fullPage: true });

  // English labels.
  await dash.click('#lang');
  await dash.waitForFunction(() => document.documentElement.lang === 'en');
  const header = await dash.textContent('#children-table thead');
  check(header.includes('Value') && header.includes('Status'), `English labels after the toggle: ${header.trim().replace(/\s+/g, ' ')}`);
  const statusText = await dash.textContent('#children-table tbody [data-status]');
  check(['Complete', 'No data', 'Partial', 'Estimated'].includes(statusText), `statuses in English (${statusText})`);

  // The CSV download, with the token.
  const href = await dash.getAttribute('#csv', 'href');
  check(
    href.startsWith('/exports/indicators.csv?') && href.includes('breakdown=CHILDREN') && href.includes(`unitCodes=${unit}`),
    `the CSV link names the same figures: ${href}`,
  );
  const [download] = await Promise.all([dash.waitForEvent('download', { timeout: 20000 }), dash.click('#csv')]);
  const csv = readFileSync(await download.path(), 'utf8');
  const lines = csv.trim().split('\n');
  check(csv.startsWith('\uFEFFindicator,'), 'the CSV download is UTF-8 with a BOM and a header');
  const rowsShown = await dash.$$eval('#children-table tbody tr[data-unit]', (trs) => trs.length);
  check(lines.length === rowsShown + 1, `the CSV has a line per child (${lines.length - 1})`);
  mkdirSync(shots, { recursive: true });
  const shot = join(shots, 'dashboard.png');
  await dash.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
} catch (e) {
  fail(`${e.stack || e}`);
} finally {
  await browser.close();
}

if (failures.length) {
  console.error(`${failures.length} browser check(s) failed`);
  process.exit(1);
}
console.log('browser checks passed');
