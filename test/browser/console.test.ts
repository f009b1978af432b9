/**
 * The web console in headless Chromium against the whole local stack on a 60× scaled clock (the
 * ALB needs real HTTP load for its 5xx alarm, and the page polls over real sockets): a bad commit
 * fails its first canary step, the console shows BakeCanary failed with what the judge saw, and
 * after the fault is cleared the Redrive button resumes the deployment to success.
 *
 * Every wait is bounded; the load loop stops with the test.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendPush } from "../../local/cli/commands.ts";
import { type SeedResult, seedService } from "../../local/seed.ts";
import { PROJECT_ROOT } from "../../local/serverless.ts";
import { Stack } from "../../local/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = path.join(PROJECT_ROOT, "test", "artifacts");
/** Wall-clock bound for one phase of the deployment on the scaled clock (each takes a few seconds). */
const PHASE_MS = 90_000;

if (!HAVE_CHROMIUM) console.warn(`skipping the console browser test: ${CHROMIUM} is missing (apt-get install chromium)`);

describe.skipIf(!HAVE_CHROMIUM)("web console in Chromium (needs /usr/bin/chromium: apt-get install chromium)", () => {
  let stack: Stack;
  let seeded: SeedResult;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    stack = await Stack.start({ clock: "scaled:60", settings: { "elbv2.realHealthChecks": false } });
    seeded = await seedService(stack.cloud, { service: "web", commit: randomBytes(20).toString("hex"), instances: 4 });
    userDataDir = mkdtempSync(path.join(tmpdir(), "kiln-console-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 1000 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 30_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(PHASE_MS);
    page.on("pageerror", (err) => pageErrors.push(err.message));
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await stack?.stop();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  }, 30_000);

  it("shows a bad commit failing at BakeCanary (the watched bake), then redrives it to success", async () => {
    const clock = stack.cloud.clock;
    const consoleUrl = stack.consoleUrl!;
    expect(consoleUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    // The services page shows the seeded fleet serving the previous commit, all traffic on kiln-web-a.
    await page.goto(consoleUrl);
    // web runs in production and staging: one card per environment; the push to main is production's.
    const card = page.locator('section[data-service="web"][data-environment="production"]');
    await expect.poll(() => card.textContent(), { timeout: 30_000 }).toContain(`live commit ${seeded.commit.slice(0, 12)}`);
    await expect
      .poll(() => card.locator('[data-testid="traffic"]').textContent(), { timeout: 30_000 })
      .toContain("kiln-web-a 100%");

    // A bad commit: its instances answer 500, which the service's 5xx alarm turns into ALARM.
    const commit = randomBytes(20).toString("hex");
    stack.cloud.faults.add({ kind: "bad-commit", commit, mode: "500" });
    // The webhook's 10 s Lambda timeout is a fraction of a wall second here: a delivery that times out
    // on a busy machine is delivered again, as GitHub's redelivery would (the same commit starts nothing new).
    let pushed = await sendPush(stack.webhookUrl, stack.webhookSecret, { repository: "example/web", branch: "main", commit });
    for (let attempt = 1; attempt < 3 && pushed.status >= 500; attempt++) {
      pushed = await sendPush(stack.webhookUrl, stack.webhookSecret, { repository: "example/web", branch: "main", commit });
    }
    expect(pushed.status).toBeLessThan(300);
    const arn = String(pushed.body.executionArn);
    expect(arn).toMatch(/:execution:kiln-local-deploy:web-/);

    // Live traffic through the ALB for the whole scenario (the alarm needs requests): 4 clients,
    // a request every 2 s of cloud time each.
    let loading = true;
    const requests = { ok: 0, failed: 0 };
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (loading) {
          try {
            const res = await fetch(seeded.loadBalancerUrl!, { signal: AbortSignal.timeout(5_000) });
            await res.text();
            if (res.status >= 500) requests.failed++;
            else requests.ok++;
          } catch {
            requests.failed++;
          }
          await clock.sleep(2_000);
        }
      }),
    );

    try {
      // The new execution appears on the services page; its link opens the execution page.
      const link = card.locator(`a[href="#/execution/${encodeURIComponent(arn)}"]`);
      await link.click({ timeout: 30_000 });
      await page.waitForSelector('[data-testid="graph"] svg g[data-state="Prepare"]', { timeout: 30_000 });

      // It fails at the first canary step: BakeCanary is marked failed, with what the alarm or the judge saw.
      await page.waitForSelector('g[data-state="BakeCanary"][data-outcome="failed"]', { timeout: PHASE_MS });
      await expect.poll(() => page.locator('[data-testid="execution-status"]').textContent(), { timeout: 30_000 }).toBe("FAILED");
      const failure = await page.locator('[data-testid="failure"]').textContent();
      expect(failure).toContain("kiln.VerificationFailed");
      expect(failure).toContain("at BakeCanary");
      expect(failure).toMatch(/alarm kiln-web-5xx in ALARM|the judge failed green/);
      const state = page.locator('[data-testid="state"]');
      await expect.poll(() => state.locator("h2").first().textContent(), { timeout: 30_000 }).toBe("BakeCanary");
      expect(await state.locator('[data-testid="step-result"]').last().textContent()).toMatch(/Judge report/);
      // States before it succeeded, states after it never ran.
      expect(await page.getAttribute('g[data-state="ShiftTraffic"]', "data-outcome")).toBe("succeeded");
      expect(await page.getAttribute('g[data-state="ServiceOutBlue"]', "data-outcome")).toBe("notRun");
      // Traffic is back on blue; the history lists the failure.
      await expect
        .poll(() => page.locator('[data-testid="traffic"]').textContent(), { timeout: 30_000 })
        .toContain("kiln-web-a 100%");
      expect(await page.locator(".history").textContent()).toContain("ExecutionFailed");
      expect(await page.isDisabled('button[data-action="approve"]')).toBe(true);
      await page.screenshot({ path: path.join(ARTIFACTS, "console-failed.png"), fullPage: true });

      // The fix: the commit stops failing, and the operator redrives from the failed step.
      // A commit the canary failed: Redrive is no longer the primary action and asks first, naming
      // the way forward (abort or a new push); confirmed, it redrives with force.
      stack.cloud.faults.clear("bad-commit");
      expect(await page.getAttribute('button[data-action="redrive"]', "class")).toBe("secondary");
      const asked = new Promise<string>((resolve) =>
        page.once("dialog", (d) => {
          resolve(d.message());
          void d.accept();
        }),
      );
      await page.click('button[data-action="redrive"]');
      expect(await asked).toMatch(/failed the canary[^]*Abort or a new push[^]*Redrive anyway\?/);
      await expect
        .poll(() => page.locator('[data-testid="action-message"]').textContent(), { timeout: 30_000 })
        .toContain(`redriven ${arn}`);
      await page.waitForSelector('[data-testid="execution-status"] .s-SUCCEEDED', { timeout: PHASE_MS });
      expect(await page.getAttribute('g[data-state="VerifyCanary"]', "data-outcome")).toBe("succeeded");
      expect(await page.getAttribute('g[data-state="Done"]', "data-outcome")).toBe("succeeded");
      await expect
        .poll(() => page.locator('[data-testid="traffic"]').textContent(), { timeout: 30_000 })
        .toContain("kiln-web-b 100%");
      expect(await page.locator('[data-testid="failure"]').count()).toBe(0);
      expect(await page.isDisabled('button[data-action="redrive"]')).toBe(true);
      await page.screenshot({ path: path.join(ARTIFACTS, "console.png"), fullPage: true });

      // Back on the services page, the new commit is live and the execution reads SUCCEEDED, redriven once.
      await page.click("a.brand");
      await expect.poll(() => card.textContent(), { timeout: 30_000 }).toContain(`live commit ${commit.slice(0, 12)}`);
      expect(
        await card
          .locator("tbody tr", { hasText: arn.split(":").pop()! })
          .first()
          .textContent(),
      ).toMatch(/SUCCEEDED.*1×/);
      await page.screenshot({ path: path.join(ARTIFACTS, "console-services.png"), fullPage: true });
    } finally {
      loading = false;
      await load;
    }
    expect(requests.ok).toBeGreaterThan(0);
    expect(pageErrors).toEqual([]);
  }, 300_000);
});
