// End-to-end test of the `palette serve` page in a real browser: Debian's headless Chromium
// driven by playwright-core. Uploads two sample images and one corrupt file, presses Extract,
// checks the swatches against `palette extract` on the same files, the error row, the CSV
// download (byte-identical to `palette extract`), keyboard reachability and the phone-width
// layout, and saves a screenshot of the results.
//
//   node page.test.mjs PALETTE_BINARY SAMPLES_DIR SCREENSHOT_PNG
// Exit codes: 0 passed, 1 failed, 77 skipped (no Chromium or no playwright-core installed).

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [palette, samples, screenshot] = process.argv.slice(2);
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!palette || !samples || !screenshot) {
  console.error("usage: node page.test.mjs PALETTE_BINARY SAMPLES_DIR SCREENSHOT_PNG");
  process.exit(2);
}
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch {
  console.log("SKIP: playwright-core is not installed (npm ci in tests/e2e/browser)");
  process.exit(77);
}
if (!fs.existsSync(chromiumPath)) {
  console.log(`SKIP: no Chromium at ${chromiumPath} (Debian: apt-get install chromium)`);
  process.exit(77);
}

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}

// The files: two sample images and a JPEG cut short, side by side in a temporary directory.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "palette-page-"));
const names = ["coffee.jpg", "chelsea.jpg", "broken.jpg"];
fs.copyFileSync(path.join(samples, "coffee.jpg"), path.join(dir, "coffee.jpg"));
fs.copyFileSync(path.join(samples, "chelsea.jpg"), path.join(dir, "chelsea.jpg"));
const jpeg = fs.readFileSync(path.join(samples, "astronaut.jpg"));
fs.writeFileSync(path.join(dir, "broken.jpg"), jpeg.subarray(0, Math.floor(jpeg.length / 3)));
const k = "4";

// What `palette extract` says about the same files with the same options.
function extract(format) {
  const r = spawnSync(palette, ["extract", ...names, "-k", k, "--format", format, "-q"],
                      { cwd: dir, encoding: "utf8" });
  if (r.status !== 1) throw new Error(`palette extract exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
const expectedCsv = extract("csv");
const expected = extract("jsonl").trim().split("\n").map((l) => JSON.parse(l));

// The server, on a free port.
const server = spawn(palette, ["serve", "--port", "0", "--backend", "cpu"],
                     { stdio: ["ignore", "ignore", "pipe"] });
const url = await new Promise((resolve, reject) => {
  let err = "";
  const timer = setTimeout(() => reject(new Error("server did not start: " + err)), 15000);
  server.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/open (http:\/\/[^ ]+)/);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  server.on("exit", (code) => reject(new Error(`server exited ${code}: ${err}`)));
});

const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ acceptDownloads: true,
                                             viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  await page.goto(url);
  check((await page.title()).startsWith("palette"), "page loads from the binary");

  // Keyboard: the file picker, the options and Extract are reachable with Tab.
  const reached = [];
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press("Tab");
    reached.push(await page.evaluate(() => document.activeElement.id));
  }
  check(["files", "k", "space", "extract"].every((id) => reached.includes(id)),
        `Tab reaches the controls (${reached.join(", ")})`);

  await page.setInputFiles("#files", names.map((n) => path.join(dir, n)));
  await page.fill("#k", k);
  await page.click("#extract");
  await page.waitForSelector("#rows tr:nth-child(3)", { timeout: 30000 });

  const rows = await page.$$eval("#rows tr", (trs) => trs.map((tr) => ({
    name: tr.querySelector(".name")?.textContent,
    swatches: [...tr.querySelectorAll(".swatch")].map((b) => ({
      hex: b.dataset.hex, bg: getComputedStyle(b).backgroundColor,
      label: b.getAttribute("aria-label") })),
    error: tr.querySelector(".error")?.textContent ?? null,
  })));
  check(rows.length === 3, "three rows, one per file");
  const rgb = (hex) => `rgb(${parseInt(hex.slice(1, 3), 16)}, ${parseInt(hex.slice(3, 5), 16)}, ` +
                       `${parseInt(hex.slice(5, 7), 16)})`;
  for (let i = 0; i < 2; i++) {
    check(rows[i].name === names[i], `row ${i + 1} is ${names[i]}`);
    check(JSON.stringify(rows[i].swatches.map((s) => s.hex)) === JSON.stringify(expected[i].colors),
          `${names[i]}: swatches ${rows[i].swatches.map((s) => s.hex).join(" ")} are ` +
          `palette extract's ${expected[i].colors.join(" ")}`);
    check(rows[i].swatches.every((s) => s.bg === rgb(s.hex)), `${names[i]}: swatches show their colour`);
    check(rows[i].swatches.every((s) => s.label.startsWith("Copy #")), `${names[i]}: swatches say what they copy`);
  }
  check(rows[2].name === "broken.jpg" && rows[2].error !== null &&
        rows[2].error.includes(expected[2].error),
        `broken.jpg is an error row ("${rows[2].error}")`);
  const status = await page.textContent("#status");
  check(/could not be read/.test(status), `status says a file failed ("${status}")`);

  await page.screenshot({ path: screenshot, fullPage: true });

  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const csv = fs.readFileSync(await download.path(), "utf8");
  check(download.suggestedFilename() === "palettes.csv", "download is palettes.csv");
  check(csv === expectedCsv, "downloaded CSV is byte-identical to palette extract's");

  // Phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  check(overflow <= 1, `no horizontal scrolling at 390 px (${overflow} px too wide)`);
} finally {
  await browser.close();
  server.kill("SIGTERM");
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(failures ? `${failures} check(s) failed` : "all checks passed");
process.exit(failures ? 1 : 0);
