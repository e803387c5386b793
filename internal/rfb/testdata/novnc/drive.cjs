// Drives noVNC in headless Chromium for internal/rfb's tests: opens the
// test page (argument 1), prints the page's result ("CONNECTED" or
// "FAILED <reason>") on stdout, and stays connected until stdin closes.
const { chromium } = require('playwright-core');

(async () => {
  const url = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--ignore-certificate-errors', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on('console', (m) => console.error('console:', m.text()));
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  await page.goto(url);
  const res = await page.waitForFunction(() => window.reelResult, null, { timeout: 60000 });
  console.log(await res.jsonValue());
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
  await browser.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
