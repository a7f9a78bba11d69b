// Drives the admin dashboard in Debian's chromium (headless, playwright-core)
// against a running platform. Run by test/e2e/dashboard_e2etest.cpp, which
// starts the platform and passes:
//   JOBS_DASH_URL         the API's base URL (the dashboard is at /admin/)
//   JOBS_DASH_KEY         an admin key
//   JOBS_DASH_VIEWER_KEY  a viewer key (must be refused)
//   JOBS_DASH_SHOTS       a directory for the screenshots
//   JOBS_DASH_MODE        "operator_only": only check that an admin key of a tenant
//                         not in JOBS_OPERATOR_TENANTS signs in and sees the refusal
//                         where the queue table and the charts would be;
//                         "broker_alarm": only check that, with the broker under a
//                         memory alarm, the banner says so (screenshot
//                         01-broker-alarm.png, which tells the test to lift it), then
//                         that it goes once the alarm is lifted
// Exits 0 when every step passed; on a failure it saves failure.png and exits 1.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const base = process.env.JOBS_DASH_URL;
const key = process.env.JOBS_DASH_KEY;
const viewerKey = process.env.JOBS_DASH_VIEWER_KEY;
const shots = process.env.JOBS_DASH_SHOTS;
const wait = { timeout: 30000 };
mkdirSync(shots, { recursive: true });

async function call(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}
const submit = (job) => call('POST', '/v1/jobs', { queue: 'processing', ...job });

let step = 'start';
function log(msg) { console.log(`dashboard: ${msg}`); }
async function shot(page, name) {
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}
// Polls check() every 200 ms until it is true; throws `what` after wait.timeout.
async function waitFor(check, what) {
  for (const t = Date.now(); !(await check()); await new Promise((r) => setTimeout(r, 200)))
    if (Date.now() - t > wait.timeout) throw new Error(what);
}
async function cellNumber(page, queue, field) {
  const text = await page.textContent(`#queues-table tr[data-queue="${queue}"] td[data-field="${field}"]`);
  return Number(text);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
page.on('pageerror', (e) => log(`page error: ${e.message}`));
let status = 0;
try {
  if (process.env.JOBS_DASH_MODE === 'operator_only') {
    step = 'an admin key of a tenant that is no operator sees why the queues are empty';
    await page.goto(`${base}/admin/`);
    await page.fill('#key-input', key);
    await page.click('#key-submit');
    const cell = '#queues-table tbody td[data-problem="operator_only"]';
    await page.waitForSelector(cell, wait);
    const text = await page.textContent(cell);
    if (!text.includes('JOBS_OPERATOR_TENANTS') || !text.startsWith('Needs a key of an operator tenant'))
      throw new Error(`the queue table says: ${text}`);
    await page.waitForSelector('#charts [data-problem="operator_only"]', wait);
    await shot(page, '01-operator-only');
    log('all steps passed');
    await browser.close();
    process.exit(0);
  }

  if (process.env.JOBS_DASH_MODE === 'broker_alarm') {
    step = 'the banner says why submissions are refused';
    await page.goto(`${base}/admin/`);
    await page.fill('#key-input', key);
    await page.click('#key-submit');
    await page.waitForSelector('#health[data-broker="blocked"]:not([hidden])', wait);
    const text = await page.textContent('#health');
    if (!text.includes('memory or disk alarm') || !text.includes('503'))
      throw new Error(`the banner says: ${text}`);
    await page.waitForSelector('#queues-table tr[data-queue="processing"]', wait);
    await shot(page, '01-broker-alarm');
    step = 'the banner goes once the alarm is lifted';
    await page.waitForSelector('#health[hidden][data-broker="accepting"]', { state: 'attached', timeout: 60000 });
    await shot(page, '02-broker-recovered');
    log('all steps passed');
    await browser.close();
    process.exit(0);
  }

  step = 'the page names an icon the API serves';
  await page.goto(`${base}/admin/`);
  {
    const href = await page.getAttribute('link[rel="icon"]', 'href');
    const icon = await page.request.get(new URL(href, `${base}/admin/`).href);
    const type = icon.headers()['content-type'] || '';
    if (icon.status() !== 200 || !type.startsWith('image/svg+xml') || !(await icon.text()).includes('<svg'))
      throw new Error(`the icon ${href}: ${icon.status()} ${type}`);
  }

  step = 'a viewer key is refused';
  await page.fill('#key-input', viewerKey);
  await page.click('#key-submit');
  await page.waitForSelector('#login-error:has-text("not an admin key")', wait);
  await shot(page, '01-viewer-refused');

  step = 'an admin key signs in and sees the queues';
  await page.fill('#key-input', key);
  await page.click('#key-submit');
  await page.waitForSelector('#queues-table tr[data-queue="processing"]', wait);
  // A healthy platform shows no banner.
  await page.waitForSelector('#health[hidden][data-broker="accepting"]', { state: 'attached', ...wait });
  // No supervisor runs here: the workers column says so, as jobsctl queues does.
  await page.waitForSelector(
    '#queues-table tr[data-queue="processing"] td[data-field="workers"]:has-text("(no supervisor)")', wait);
  // The test put one message in jobs.dead.
  await page.waitForSelector('#queues-note:has-text("1 dead letter kept in jobs.dead.")', wait);
  await shot(page, '02-overview');

  step = 'pause processing from the overview';
  await page.click('#queues-table tr[data-queue="processing"] button[data-action="pause"]');
  await page.waitForSelector('#queues-table tr[data-queue="processing"][data-paused="true"]', wait);
  // The worker hears the NOTIFY within its next round (200 ms) and cancels
  // its consumer; until then it would take the jobs below (held unclaimed,
  // not ready). Wait for the broker to say so, not for a guessed time.
  await waitFor(async () => (await call('GET', '/v1/queues')).queues.find((x) => x.name === 'processing').consumers === 0,
    'the paused worker kept its consumer');
  // A second pause (as from a page that had not yet seen the first) changes
  // nothing, and the toast says so.
  await page.evaluate(() => setPaused('processing', true));
  await page.waitForSelector('#toast:not([hidden]):has-text("processing already was paused: nothing changed")', wait);

  step = 'jobs submitted to the paused queue wait: the depth goes up';
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await submit({ type: 'noop', payload: { echo: `dash-${i}` } })).id);
  await page.waitForFunction(() => {
    const c = document.querySelector('#queues-table tr[data-queue="processing"] td[data-field="ready"]');
    return c && Number(c.textContent) >= 5;
  }, null, wait);
  await page.waitForTimeout(1000);
  const still = await call('GET', `/v1/jobs/${ids[0]}`);
  if (still.state !== 'queued') throw new Error(`a job of the paused queue is ${still.state}`);
  await shot(page, '03-paused-depth');

  step = 'resume: the jobs run, the depth falls and the counts rise';
  await page.click('#queues-table tr[data-queue="processing"] button[data-action="resume"]');
  await page.waitForSelector('#queues-table tr[data-queue="processing"][data-paused="false"]', wait);
  await page.waitForFunction(() => {
    const c = document.querySelector('#queues-table tr[data-queue="processing"] td[data-field="ready"]');
    return c && Number(c.textContent) === 0;
  }, null, wait);
  // The success count comes from the history sampled every 10 s.
  await page.waitForFunction(() => {
    const c = document.querySelector('#queues-table tr[data-queue="processing"] td[data-field="succeeded"]');
    return c && Number(c.textContent) >= 5;
  }, null, { timeout: 45000 });
  log(`processing succeeded in 5 min: ${await cellNumber(page, 'processing', 'succeeded')}`);
  await shot(page, '04-resumed-counts');

  step = 'search a job by id and open it';
  await page.click('a[data-nav="jobs"]');
  await page.waitForSelector('#filters', wait);
  await page.fill('#search-input', ids[2]);
  await page.click('#search');
  await page.waitForFunction((id) => {
    const rows = document.querySelectorAll('#jobs-table tbody tr[data-id]');
    return rows.length === 1 && rows[0].dataset.id === id;
  }, ids[2], wait);
  await shot(page, '05-search-by-id');
  await page.click(`#jobs-table tr[data-id="${ids[2]}"] a`);
  await page.waitForSelector('#job-state [data-state="succeeded"]', wait);
  await page.waitForSelector('#payload:has-text("dash-2")', wait);
  await page.waitForSelector('#timeline li[data-to="succeeded"]', wait);
  await shot(page, '06-job-page');

  step = 'a dead job is retried from its page and succeeds';
  const dead = await submit({ type: 'test.fail_first', payload: {}, max_attempts: 1 });
  await page.goto(`${base}/admin/#/job/${dead.id}`);
  await page.waitForSelector('#job-state [data-state="dead"]', wait);
  await shot(page, '07-dead-job');
  await page.click('#retry-btn');
  await page.waitForSelector('#job-state [data-state="succeeded"]', wait);
  await page.waitForSelector('#attempts tbody tr:nth-child(2)', wait);
  await page.waitForSelector('#timeline li[data-to="dead"]', wait);
  await shot(page, '08-retried-job');

  step = 'bulk-cancel scheduled jobs with a confirmation showing the count';
  const later = new Date(Date.now() + 3600e3).toISOString();
  const marker = `bulk-${Date.now()}`;
  const scheduled = [];
  for (let i = 0; i < 3; i++)
    scheduled.push((await submit({ type: 'noop', payload: { echo: marker }, run_at: later })).id);
  await page.click('a[data-nav="jobs"]');
  await page.waitForSelector('#filters', wait);
  await page.fill('#search-input', marker);
  await page.selectOption('#filters select[name="state"]', 'scheduled');
  // A created_before filter later than the count: the count's time still bounds the cancel.
  await page.fill('#filters input[name="created_before"]', '2099-01-01T00:00');
  await page.click('#search');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-table tbody tr[data-id]').length === 3, null, wait);
  await page.click('#bulk-cancel');
  await page.waitForSelector('#confirm:not([hidden])', wait);
  const text = await page.textContent('#confirm-text');
  if (!text.includes('Cancel 3 jobs')) throw new Error(`the confirmation says: ${text}`);
  await shot(page, '09-bulk-confirm');
  // A matching job submitted while the dialog is open is not swept in.
  const latecomer = (await submit({ type: 'noop', payload: { echo: marker }, run_at: later })).id;
  await page.click('#confirm-ok');
  await page.waitForSelector('#bulk-result[data-applied="3"]', wait);
  for (const id of scheduled) {
    const j = await call('GET', `/v1/jobs/${id}`);
    if (j.state !== 'cancelled') throw new Error(`job ${id} is ${j.state} after the bulk cancel`);
  }
  const late = await call('GET', `/v1/jobs/${latecomer}`);
  if (late.state !== 'scheduled') throw new Error(`the job submitted during the confirmation is ${late.state}`);
  // The table is refreshed: only the latecomer is still scheduled.
  await page.waitForFunction((id) => {
    const rows = document.querySelectorAll('#jobs-table tbody tr[data-id]');
    return rows.length === 1 && rows[0].dataset.id === id;
  }, latecomer, wait);
  await shot(page, '10-bulk-cancelled');

  step = 'requeue the queued jobs of a paused queue (as after a broker that lost them)';
  await call('POST', '/v1/admin/queues/processing/pause');
  const lost = `lost-${Date.now()}`;
  const queued = [];
  for (let i = 0; i < 2; i++) queued.push((await submit({ type: 'noop', payload: { echo: lost } })).id);
  await page.fill('#search-input', lost);
  await page.selectOption('#filters select[name="state"]', 'queued');
  await page.click('#search');
  await page.waitForFunction(() => document.querySelectorAll('#jobs-table tbody tr[data-id]').length === 2, null, wait);
  await page.click('#bulk-requeue');
  await page.waitForSelector('#confirm:not([hidden])', wait);
  const asked = await page.textContent('#confirm-text');
  if (!asked.includes('Publish again 2 jobs')) throw new Error(`the confirmation says: ${asked}`);
  await page.click('#confirm-ok');
  await page.waitForSelector('#bulk-result[data-applied="2"]', wait);
  for (const id of queued) {
    const { events } = await call('GET', `/v1/jobs/${id}/events`);
    if (!events.some((e) => e.from === 'queued' && e.to === 'scheduled'))
      throw new Error(`job ${id} was not handed back to the scheduler: ${JSON.stringify(events)}`);
  }
  await call('POST', '/v1/admin/queues/processing/resume');
  for (const id of queued)
    await waitFor(async () => (await call('GET', `/v1/jobs/${id}`)).state === 'succeeded', `requeued job ${id} did not succeed`);

  step = 'a refused list (a stale cursor, a date that is none) is said where the jobs would be';
  for (const bad of ['cursor=garbage', 'created_after=garbage']) {
    await page.goto(`${base}/admin/#/jobs?${bad}`);
    await page.waitForSelector('#jobs-table tbody td.error[data-problem="invalid_field"]', wait);
  }
  if (await page.inputValue('#filters input[name="created_after"]') !== '')
    throw new Error('a created_after that is no date was put in the form');
  await shot(page, '10b-refused-list');

  step = 'the overview on a phone';
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('a[data-nav="overview"]');
  await page.waitForSelector('#queues-table tr[data-queue="processing"]', wait);
  await page.waitForSelector('[data-chart="processing"] svg', wait);
  await shot(page, '11-phone-overview');
  log('all steps passed');
} catch (e) {
  status = 1;
  console.error(`dashboard: FAILED at "${step}": ${e.stack || e}`);
  try { await shot(page, 'failure'); } catch (ignored) { /* the page may be gone */ }
} finally {
  await browser.close();
}
process.exit(status);
