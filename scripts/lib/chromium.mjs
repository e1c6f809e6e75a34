// Headless Debian chromium driven by playwright-core, for the e2e driver (scripts/e2e/run.mjs)
// and the real-VS-Code benchmark (test/bench/vscode.ts): launched as a playwright browser
// server (so its process group can be stopped whatever state the page is in), connected,
// and stopped with everything it started.
import { chromium } from 'playwright-core';
import { stopGroup } from './codeServer.mjs';

export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/**
 * Launches chromium (playwright gives every launch a fresh temporary profile of its own) and
 * connects to it. `stop()` closes the browser and ends its process group; it may be called
 * more than once and never throws.
 * @returns {Promise<{ browser: import('playwright-core').Browser, pid: number, stop: () => Promise<void> }>}
 */
export async function launchChromium() {
  const browserServer = await chromium.launchServer({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  const pid = browserServer.process().pid;
  let browser;
  const withDeadline = (p, ms) => Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, ms).unref())]);
  let stopped;
  const stop = () =>
    (stopped ??= (async () => {
      if (browser) await withDeadline(browser.close(), 5000);
      await withDeadline(browserServer.close(), 5000);
      await stopGroup(pid, 'chromium', 2000);
    })());
  try {
    browser = await chromium.connect(browserServer.wsEndpoint());
  } catch (err) {
    await stop();
    throw err;
  }
  return { browser, pid, stop };
}
