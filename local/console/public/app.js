// kiln console: two pages routed by the URL fragment, refreshed by polling the console's JSON API.
//   #/                      services: live commit, traffic split, fleets, recent executions
//   #/execution/<arn>       one execution: state graph, step results, history, actions
// Every string from AWS reaches the page as a text node or an attribute value set through the DOM,
// never as markup.

const POLL_MS = 1500;
const SVG_NS = "http://www.w3.org/2000/svg";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const live = document.getElementById("live");
const targetLabel = document.getElementById("target");

// ───────────────────────────── DOM helpers ─────────────────────────────

/** Appends children: strings and numbers become text nodes, arrays are flattened, null/false skipped. */
function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  return el;
}

/** An HTML element: `h("td", {class: "num"}, text)`. */
function h(tag, attrs, ...children) {
  return append(setAttrs(document.createElement(tag), attrs), children);
}

/** An SVG element. */
function s(tag, attrs, ...children) {
  return append(setAttrs(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** A link only for http(s) URLs (a `javascript:` URL from anywhere is shown as text). */
function safeLink(url, text) {
  return /^https?:\/\//i.test(url ?? "")
    ? h("a", { href: url, rel: "noreferrer noopener", target: "_blank" }, text ?? url)
    : (text ?? url ?? "");
}

function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

function short(commit) {
  return commit ? commit.slice(0, 12) : "?";
}

function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { hour12: false });
}

/** Long texts (a cause with everything a check saw) are cut in tables; the full text is the tooltip. */
function clipText(text, max) {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function badge(status, prefix = "s") {
  return h("span", { class: `badge ${prefix}-${status}` }, status);
}

function pretty(v) {
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}

/** kiln's failure causes end in `Seen: {…}` (what the check saw): that part is shown as indented JSON. */
function formatCause(text) {
  const i = text.lastIndexOf("Seen: {");
  if (i < 0) return text;
  try {
    return `${text.slice(0, i)}\nSeen: ${JSON.stringify(JSON.parse(text.slice(i + 6)), null, 2)}`;
  } catch {
    return text;
  }
}

function executionHref(arn) {
  return `#/execution/${encodeURIComponent(arn)}`;
}

// ───────────────────────────── data ─────────────────────────────

async function getJson(url) {
  const r = await fetch(url, { headers: { accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(body.error ?? `HTTP ${r.status}`);
  return body;
}

async function postJson(url, payload) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(payload),
  });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok || body.ok === false) throw new Error(body.error ?? `HTTP ${r.status}`);
  return body;
}

function showBanner(text) {
  banner.hidden = !text;
  banner.textContent = text ?? "";
}

// ───────────────────────────── shared pieces ─────────────────────────────

/** The listener's weights as a bar. */
function trafficSplit(weights) {
  if (!weights || weights.length === 0) return h("p", { class: "muted" }, "no listener weights found");
  const bar = h("div", { class: "split", "data-testid": "traffic" });
  for (const w of weights) {
    const seg = h("div", { title: `${w.name}: ${w.weight}%` }, w.weight > 0 ? `${w.name} ${w.weight}%` : "");
    seg.style.width = `${w.weight}%`;
    bar.append(seg);
  }
  return h("div", null, bar, h("div", { class: "split-legend" }, weights.map((w) => `${w.name} ${w.weight}%`).join("  ·  ")));
}

function fleetTable(fleets) {
  const shown = (fleets ?? []).filter((f) => f.capacity.desired > 0 || f.instances.length > 0);
  if (shown.length === 0) return h("p", { class: "muted" }, "no fleets");
  return h(
    "table",
    null,
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["state", "group", "commit", "target groups", "desired", "healthy", "instances"].map((c) => h("th", null, c)),
      ),
    ),
    h(
      "tbody",
      null,
      shown.map((f) =>
        h(
          "tr",
          null,
          h("td", { "data-testid": "fleet-state" }, f.state ?? f.role),
          h("td", { class: "mono" }, f.group),
          h("td", { class: "mono", title: f.commit ?? "" }, short(f.commit)),
          h("td", null, f.targetGroups.join(", ")),
          h("td", { class: "num" }, f.capacity.desired),
          h("td", { class: "num" }, `${f.instances.filter((i) => i.health === "healthy").length}/${f.instances.length}`),
          h(
            "td",
            null,
            h(
              "div",
              { class: "chips" },
              f.instances.map((i) =>
                h("span", {
                  class: `chip h-${i.health ?? "none"}`,
                  title: `${i.id} ${i.lifecycle} ${i.health ?? "not registered"}`,
                }),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

// ───────────────────────────── services page ─────────────────────────────

function renderOverview(data) {
  targetLabel.textContent = data.stack.kind === "local" ? `local stack · ${data.stack.region}` : `AWS · ${data.stack.region}`;
  const cards = data.services.map((svc) =>
    h(
      "section",
      { class: "card", "data-service": svc.service, "data-environment": svc.environment ?? "" },
      h(
        "div",
        { class: "row" },
        h("h2", null, svc.service, svc.environment ? h("span", { class: "muted" }, ` · ${svc.environment}`) : null),
        h("span", null, "live commit ", h("code", { title: svc.liveCommit ?? "" }, short(svc.liveCommit))),
        svc.loadBalancer ? h("span", { class: "muted" }, svc.loadBalancer.name, " ", safeLink(svc.loadBalancer.url)) : null,
      ),
      svc.error ? h("p", { class: "message error" }, svc.error) : null,
      h("h3", null, "Traffic"),
      trafficSplit(svc.weights),
      h("h3", null, "Fleets"),
      fleetTable(svc.fleets),
      h("h3", null, "Recent executions"),
      svc.executions.length === 0
        ? h("p", { class: "muted" }, "none yet")
        : h(
            "table",
            null,
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["status", "execution", "started", "stopped", "redriven"].map((c) => h("th", null, c)),
              ),
            ),
            h(
              "tbody",
              null,
              svc.executions.map((e) =>
                h(
                  "tr",
                  null,
                  h(
                    "td",
                    null,
                    badge(e.status),
                    e.currentStep
                      ? h(
                          "span",
                          { class: "muted" },
                          e.currentStep === "RequestApproval" ? " waiting for approval" : ` at ${e.currentStep}`,
                        )
                      : null,
                  ),
                  h("td", null, h("a", { href: executionHref(e.arn), class: "mono" }, e.name)),
                  h("td", null, time(e.startDate)),
                  h("td", null, time(e.stopDate)),
                  h("td", { class: "num" }, e.redriveCount ? `${e.redriveCount}×` : ""),
                ),
              ),
            ),
          ),
    ),
  );
  fill(
    main,
    h("h1", null, "Services"),
    h("p", { class: "muted" }, `as of ${time(data.now)}`),
    cards.length ? cards : h("p", null, "kiln.config.yaml lists no services"),
  );
}

// ───────────────────────────── execution page ─────────────────────────────

/** The page's persistent parts, built once per execution so typed input and scroll survive refreshes. */
function executionSkeleton(arn) {
  const page = {
    arn,
    selected: undefined,
    focus: undefined,
    data: undefined,
    head: h("div"),
    graph: h("div", { class: "card graph", "data-testid": "graph" }),
    state: h("div", { class: "card", "data-testid": "state" }),
    fleet: h("div", { class: "card" }),
    history: h("div", { class: "card" }),
    message: h("div", { class: "message", role: "status", "data-testid": "action-message" }),
    buttons: {},
    reason: h("input", { type: "text", placeholder: "reason (for reject)", maxlength: 500, "aria-label": "rejection reason" }),
  };
  const button = (action, label, cls, confirmText) => {
    const b = h("button", { type: "button", class: cls, "data-action": action, disabled: true }, label);
    b.addEventListener("click", () => act(page, action, confirmText));
    page.buttons[action] = b;
    return b;
  };
  const actions = h(
    "div",
    { class: "actions" },
    button("approve", "Approve", "primary"),
    button("reject", "Reject", "danger", "Reject this deployment?"),
    page.reason,
    button("redrive", "Redrive", "primary"),
    button("abort", "Abort", "danger", "Abort this deployment? Traffic returns to blue and green is removed."),
  );
  fill(
    main,
    h("div", { class: "card" }, page.head, actions, page.message),
    h("div", { class: "exec-grid" }, page.graph, h("div", null, page.state, page.fleet)),
    page.history,
  );
  return page;
}

async function act(page, action, confirmText) {
  // An action the server marks for confirmation (a redrive of a commit the canary failed) asks with
  // its own words, and is sent with force once confirmed.
  const asked = page.confirm?.[action];
  if ((asked || confirmText) && !window.confirm(asked || confirmText)) return;
  const payload = { action, execution: page.arn };
  if (asked) payload.force = true;
  const reason = page.reason.value.trim();
  if (action === "reject" && reason) payload.reason = reason;
  for (const b of Object.values(page.buttons)) b.disabled = true;
  page.message.className = "message";
  page.message.textContent = `${action}…`;
  try {
    const r = await postJson("/api/actions", payload);
    page.message.className = "message ok";
    fill(
      page.message,
      r.message || `${action} done`,
      r.executionArn ? [" · ", h("a", { href: executionHref(r.executionArn) }, "follow it")] : null,
    );
    if (action === "reject") page.reason.value = "";
  } catch (err) {
    page.message.className = "message error";
    page.message.textContent = `${action} failed: ${err.message}`;
  }
  refreshNow();
}

function renderExecution(page, v) {
  page.data = v;
  const e = v.execution;
  const replay = v.replay;
  targetLabel.textContent = e.stateMachineArn.split(":").pop() ?? "";
  fill(
    page.head,
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Services"), " › ", v.service ?? "?", " › execution"),
    h(
      "div",
      { class: "row" },
      h("h1", { class: "mono" }, e.name),
      h("span", { "data-testid": "execution-status" }, badge(e.status)),
    ),
    h(
      "div",
      { class: "row muted" },
      h("span", null, "started ", time(e.startDate)),
      e.stopDate ? h("span", null, "stopped ", time(e.stopDate)) : null,
      e.redriveCount ? h("span", null, `redriven ${e.redriveCount}×`) : null,
      replay.current.length ? h("span", null, "now at ", h("strong", null, replay.current.join(", "))) : null,
      h("span", { class: "mono" }, e.arn),
    ),
    e.error || e.cause
      ? h(
          "div",
          { class: "failure", "data-testid": "failure" },
          h("strong", null, e.error ?? "failed"),
          replay.failed ? ` at ${replay.failed}` : "",
          e.cause ? h("pre", null, formatCause(e.cause)) : null,
        )
      : null,
  );
  page.confirm = {};
  for (const [action, b] of Object.entries(page.buttons)) {
    const a = v.actions[action];
    b.disabled = !a.enabled;
    b.title = a.enabled ? "" : (a.why ?? "");
    if (a.confirm) page.confirm[action] = a.confirm;
  }
  // After a failed canary the way forward is Abort: Redrive stops being the primary action.
  page.buttons.redrive.className = v.actions.redrive.confirm ? "secondary" : "primary";
  // Follow the execution: select its failed or current state until the operator picks one.
  const lastResult = [...replay.events].reverse().find((ev) => ev.state && replay.states[ev.state]?.results.length);
  const focus = replay.failed ?? replay.current[0] ?? lastResult?.state;
  const moved = focus !== page.focus;
  page.focus = focus;
  if (!page.picked) page.selected = focus ?? page.selected;
  renderGraph(page, moved);
  renderState(page);
  fill(
    page.fleet,
    h("h2", null, "Traffic"),
    v.status ? trafficSplit(v.status.weights) : h("p", { class: "muted" }, "unknown service"),
    h("h2", { class: "spaced" }, "Fleets"),
    v.status ? fleetTable(v.status.fleets) : null,
    v.status?.error ? h("p", { class: "message error" }, v.status.error) : null,
  );
  renderHistory(page);
}

function renderGraph(page, scrollToFocus) {
  const { graph, replay } = page.data;
  const current = new Set(replay.current);
  const svg = s("svg", {
    width: graph.width,
    height: graph.height,
    viewBox: `0 0 ${graph.width} ${graph.height}`,
    role: "img",
    "aria-label": "state graph",
  });
  svg.append(
    s(
      "defs",
      null,
      s(
        "marker",
        { id: "arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        s("path", { d: "M0 0 L8 4 L0 8 z", class: "arrow" }),
      ),
    ),
  );
  for (const e of graph.edges) {
    svg.append(
      s("path", { d: e.d, class: ["edge", e.back && "back", e.kind === "catch" && "catch"], "marker-end": "url(#arrow)" }),
    );
  }
  for (const n of graph.nodes) {
    const run = replay.states[n.id] ?? { outcome: "notRun", visits: 0 };
    const label = n.id.length > 24 ? `${n.id.slice(0, 23)}…` : n.id;
    const g = s(
      "g",
      {
        class: [
          "node",
          `type-${n.type}`,
          `outcome-${run.outcome}`,
          current.has(n.id) && "current",
          page.selected === n.id && "selected",
        ],
        "data-state": n.id,
        "data-outcome": run.outcome,
        transform: `translate(${n.x} ${n.y})`,
        tabindex: 0,
      },
      s(
        "title",
        null,
        `${n.id} (${n.type}) — ${run.outcome}${run.visits > 1 ? `, ${run.visits} visits` : ""}${n.comment ? `\n${n.comment}` : ""}`,
      ),
      s("rect", { width: n.w, height: n.h, rx: n.type === "Choice" ? 14 : n.type === "Task" ? 4 : 8 }),
      s("text", { x: n.w / 2, y: n.h / 2 }, label),
    );
    const pick = () => {
      page.selected = n.id;
      page.picked = true;
      renderGraph(page, false);
      renderState(page);
    };
    g.addEventListener("click", pick);
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") pick();
    });
    svg.append(g);
  }
  const legend = h(
    "div",
    { class: "legend" },
    ["succeeded", "running", "failed", "notRun"].map((o) => h("span", { class: `l-${o}` }, o === "notRun" ? "not run" : o)),
  );
  fill(page.graph, legend, svg);
  const focus = graph.nodes.find((n) => n.id === page.focus);
  if (scrollToFocus && focus) page.graph.scrollTop = Math.max(0, focus.y - page.graph.clientHeight / 2);
}

function renderState(page) {
  const { graph, replay } = page.data;
  const node = graph.nodes.find((n) => n.id === page.selected);
  if (!node) {
    fill(page.state, h("h2", null, "Step"), h("p", { class: "muted" }, "select a state in the graph"));
    return;
  }
  const run = replay.states[node.id] ?? { outcome: "notRun", visits: 0, results: [] };
  fill(
    page.state,
    h(
      "div",
      { class: "row" },
      h("h2", null, node.id),
      badge(run.outcome, "o"),
      h("span", { class: "muted" }, node.type, run.visits ? ` · ${run.visits} visit${run.visits > 1 ? "s" : ""}` : ""),
    ),
    node.comment ? h("p", { class: "muted" }, node.comment) : null,
    run.results.length === 0
      ? h("p", { class: "muted" }, run.visits ? "no task result recorded for this state" : "not run yet")
      : [
          h("h3", null, "What the step saw (latest last)"),
          run.results.map((r) =>
            h(
              "div",
              { class: "result", "data-testid": "step-result" },
              h(
                "div",
                { class: "row" },
                badge(r.ok ? "succeeded" : "failed", "o"),
                h("span", { class: "muted" }, time(r.at), ` · event ${r.eventId}`),
              ),
              r.ok
                ? h("pre", null, pretty(r.output))
                : [h("strong", null, r.error ?? "error"), r.cause ? h("pre", null, formatCause(r.cause)) : null],
            ),
          ),
        ],
  );
}

function renderHistory(page) {
  const events = page.data.replay.events;
  const shown = events.slice(-500).reverse();
  fill(
    page.history,
    h(
      "h2",
      null,
      `Event history (${events.length} events${events.length > shown.length ? `, newest ${shown.length} shown` : ""})`,
    ),
    h(
      "div",
      { class: "history" },
      h(
        "table",
        null,
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["#", "time", "type", "state", "detail"].map((c) => h("th", null, c)),
          ),
        ),
        h(
          "tbody",
          null,
          shown.map((ev) =>
            h(
              "tr",
              { class: /Failed|TimedOut|Aborted/.test(ev.type) ? "failed" : null },
              h("td", { class: "num" }, ev.id),
              h("td", null, time(ev.at)),
              h("td", { class: "mono" }, ev.type),
              h("td", null, ev.state ?? ""),
              h(
                "td",
                { class: "detail", title: ev.detail && ev.detail.length > 300 ? ev.detail : null },
                clipText(ev.detail ?? "", 300),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

// ───────────────────────────── routing and polling ─────────────────────────────

let generation = 0;
let timer;
let page;

/** Reads again now; a read already in flight is dropped so only one polling loop runs. */
function refreshNow() {
  generation++;
  clearTimeout(timer);
  void tick(generation);
}

async function tick(gen) {
  try {
    const shown = page;
    const data = await getJson(shown ? `/api/execution?arn=${encodeURIComponent(shown.arn)}` : "/api/overview");
    // The operator navigated away while this read was in flight.
    if (gen !== generation) return;
    if (shown) renderExecution(shown, data);
    else renderOverview(data);
    showBanner("");
    live.classList.remove("stale");
  } catch (err) {
    if (gen !== generation) return;
    showBanner(`cannot refresh: ${err.message}`);
    live.classList.add("stale");
  }
  if (gen === generation) timer = setTimeout(() => tick(gen), POLL_MS);
}

function route() {
  generation++;
  clearTimeout(timer);
  showBanner("");
  const m = /^#\/execution\/(.+)$/.exec(location.hash);
  if (m) {
    let arn;
    try {
      arn = decodeURIComponent(m[1]);
    } catch {
      arn = m[1];
    }
    page = executionSkeleton(arn);
  } else {
    page = undefined;
    fill(main, h("p", { class: "muted" }, "loading…"));
  }
  void tick(generation);
}

window.addEventListener("hashchange", route);
route();
