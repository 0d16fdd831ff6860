// Opens an HTML report in Debian's headless Chromium (via playwright-core) and prints one JSON
// object on stdout: the page's title, every console message and page error, every request the
// page made other than for the report itself, how long it took to load, the coverage grid read
// from the DOM, and, when asked, the sizes of a PDF and a full-page screenshot.
//
//   node infra/browser/open-report.mjs REPORT.html [--screenshot PNG] [--pdf PDF]
//
// Exit 0 when the report could be opened and read; non-zero, with the reason on stderr,
// otherwise. Needs infra/browser/setup to have run (Chromium at /usr/bin/chromium,
// playwright-core in infra/browser/node_modules); no browser is downloaded.

import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

const CHROMIUM = "/usr/bin/chromium";
// --headless is added by playwright (headless: true); the rest keep Chromium off the network
// (a closed network refuses its background connections) and quiet.
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const TIMEOUT_MS = 60_000;
const USAGE = "usage: node infra/browser/open-report.mjs REPORT.html [--screenshot PNG] [--pdf PDF]";

function fail(message, code = 1) {
  process.stderr.write(`open-report: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { report: null, screenshot: null, pdf: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--screenshot" || arg === "--pdf") {
      const value = argv[++i];
      if (value === undefined || value === "") fail(`${arg} needs a file name\n${USAGE}`, 2);
      opts[arg.slice(2)] = resolve(value);
    } else if (arg === "-h" || arg === "--help") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg.startsWith("-") || opts.report !== null) {
      fail(`unexpected argument ${JSON.stringify(arg)}\n${USAGE}`, 2);
    } else {
      opts.report = resolve(arg);
    }
  }
  if (opts.report === null) fail(USAGE, 2);
  return opts;
}

// Runs in the page. Follows the report's DOM contract: #coverage[data-from][data-to], rows
// [data-account][data-region] inside it, runs [data-outcome][data-from][data-hours] inside
// each row, all in DOM order. getAttribute, not dataset, so that SVG elements work too.
function readCoverage() {
  const root = document.getElementById("coverage");
  if (root === null) return null;
  // data-hours as a number when it is a decimal integer; otherwise its raw text, so that a
  // test comparing it with a number fails visibly instead of seeing NaN or null.
  const hours = (text) => (text !== null && /^[0-9]+$/.test(text) ? Number(text) : text);
  return {
    from: root.getAttribute("data-from"),
    to: root.getAttribute("data-to"),
    rows: Array.from(root.querySelectorAll("[data-account]"), (row) => ({
      account: row.getAttribute("data-account"),
      region: row.getAttribute("data-region"),
      runs: Array.from(row.querySelectorAll("[data-outcome]"), (run) => ({
        from: run.getAttribute("data-from"),
        hours: hours(run.getAttribute("data-hours")),
        outcome: run.getAttribute("data-outcome"),
      })),
    })),
  };
}

function withoutFragment(url) {
  const hash = url.indexOf("#");
  return hash === -1 ? url : url.slice(0, hash);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(opts.report)) fail(`no such file: ${opts.report}`);
  if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} is missing: run infra/browser/setup`);
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (err) {
    fail(`playwright-core is not installed (${err.message.split("\n")[0]}): run infra/browser/setup`);
  }

  const profile = mkdtempSync(join(tmpdir(), "trailvault-chromium-"));
  let context = null;
  let cleaning = null;
  // Closes the browser and removes the profile, once; every caller waits for the same work.
  const cleanup = () =>
    (cleaning ??= (async () => {
      try {
        if (context !== null) await context.close();
      } catch {
        // The browser may already be gone; the profile is removed regardless.
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    })());
  // Playwright's own signal handlers would kill the browser and exit before the profile is
  // removed; these close the browser, remove the profile, then exit.
  let signalled = null;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
    process.once(signal, () => {
      signalled = code;
      process.stderr.write(`open-report: ${signal}: closing the browser\n`);
      cleanup().finally(() => process.exit(code));
    });
  }

  try {
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ARGS,
        timeout: TIMEOUT_MS,
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
      });
    } catch (err) {
      throw new Error(`could not start ${CHROMIUM}: ${err.message}`);
    }
    context.setDefaultTimeout(TIMEOUT_MS);

    const url = pathToFileURL(opts.report).href;
    const consoleMessages = [];
    const requests = [];
    // Context-wide, so that requests from popups or workers count too.
    context.on("console", (msg) => consoleMessages.push({ type: msg.type(), text: msg.text() }));
    context.on("weberror", (webError) => {
      const err = webError.error();
      const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      consoleMessages.push({ type: "pageerror", text });
    });
    context.on("request", (req) => {
      if (withoutFragment(req.url()) !== url) requests.push(req.url());
    });

    const page = context.pages()[0] ?? (await context.newPage());
    const start = performance.now();
    await page.goto(url, { waitUntil: "load" });
    const openMs = Math.round((performance.now() - start) * 10) / 10;

    const result = {
      title: await page.title(),
      console: consoleMessages,
      requests,
      open_ms: openMs,
      coverage: await page.evaluate(readCoverage),
      pdf_bytes: null,
      screenshot: null,
    };
    if (opts.screenshot !== null) {
      await page.screenshot({ path: opts.screenshot, fullPage: true });
      result.screenshot = opts.screenshot;
    }
    if (opts.pdf !== null) {
      await page.pdf({ path: opts.pdf, printBackground: true });
      result.pdf_bytes = statSync(opts.pdf).size;
    }
    // Messages and requests that arrived while the screenshot and PDF were made are in the
    // arrays already: they are the same arrays.
    await cleanup();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (err) {
    await cleanup();
    // After a signal, the page's failure is only its consequence: the handler exits.
    if (signalled !== null) process.exit(signalled);
    fail(err.message);
  }
}

main().catch((err) => fail(err.stack || String(err)));
