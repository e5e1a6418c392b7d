// Runs personalize/static/personalize/track.js against a minimal fake DOM and
// prints what it sent as JSON (driven by tests/tracking/test_track_js.py).
"use strict";
const fs = require("fs");
const vm = require("vm");

const source = fs.readFileSync(process.argv[2], "utf8");

function element(attrs, extra) {
  const el = {
    attrs,
    getAttribute: (name) => (name in attrs ? attrs[name] : null),
    ...extra,
  };
  return el;
}

function setup({ consent = "denied", beaconOk = true, withObserver = true, replies = [] } = {}) {
  const state = { beacons: [], fetches: [], observed: [], unobserved: [] };
  const clock = { now: 1_700_000_000_000 };
  const listeners = { document: {}, window: {} };
  const root = { dataset: { personalizeConsent: consent } };
  const items = [1, 2, 3].map((n) => element({
    "data-personalize-item": `sku-${n}`, "data-personalize-position": String(n),
    ...(n === 2 ? { "data-personalize-item-strategy": "ease" } : {}),
  }));
  const block = element({ "data-personalize-placement": "home",
                          "data-personalize-strategy": "item_knn",
                          "data-personalize-impression": "5d2c7f4e-9b1a-4c8e-a0f3-6e2d1b9c8a70" }, {
    querySelectorAll: (sel) => (sel === "[data-personalize-item]" ? items : []),
  });
  items.forEach((item) => {
    item.closest = (sel) => (sel === "[data-personalize-item]" ? item
      : sel === "[data-personalize-placement]" ? block : null);
  });
  const outside = element({ "data-personalize-item": "sku-9" }, { closest: (sel) =>
    (sel === "[data-personalize-item]" ? outside : null) });
  const page = element({ "data-personalize-page-item": "sku-7" });
  const script = element({ "data-personalize-endpoint": "/api/personalize/events/",
                           "data-personalize-csrf": "tok123" });
  const document = {
    documentElement: root, currentScript: script, readyState: "complete",
    visibilityState: "visible", cookie: "csrftoken=fromcookie",
    querySelector: (sel) => (sel === "[data-personalize-page-item]" ? page : null),
    querySelectorAll: (sel) => (sel === "[data-personalize-placement]" ? [block] : []),
    addEventListener(type, fn) { (listeners.document[type] ||= []).push(fn); },
  };
  function Blob(parts, options) { this.text = parts.join(""); this.type = options.type; }
  function IntersectionObserver(callback, options) {
    state.observerOptions = options;
    state.intersect = (target, ratio) =>
      callback([{ target, isIntersecting: ratio > 0, intersectionRatio: ratio }]);
  }
  IntersectionObserver.prototype.observe = (el) => state.observed.push(el.attrs);
  IntersectionObserver.prototype.unobserve = (el) => state.unobserved.push(el.attrs);
  class FakeDate extends Date {
    constructor(...args) { super(...(args.length ? args : [clock.now])); }
    static now() { return clock.now; }
  }
  let uid = 0;
  const window = {
    navigator: { sendBeacon: (url, blob) => {
      state.beacons.push({ url, type: blob.type, body: JSON.parse(blob.text) });
      return beaconOk;
    } },
    Blob,
    // each call answers with the next of `replies`: {status, retryAfter} or "network"
    fetch: (url, options) => {
      state.fetches.push({ url, ...options, body: JSON.parse(options.body) });
      const reply = replies.length ? replies.shift() : { status: 200 };
      if (reply === "network") return Promise.reject(new TypeError("Failed to fetch"));
      return Promise.resolve({ ok: reply.status < 400, status: reply.status, headers: {
        get: (name) => (name === "Retry-After" && reply.retryAfter ? reply.retryAfter : null),
      } });
    },
    crypto: { randomUUID: () => `00000000-0000-4000-8000-${String(++uid).padStart(12, "0")}` },
    addEventListener(type, fn) { (listeners.window[type] ||= []).push(fn); },
  };
  if (withObserver) window.IntersectionObserver = IntersectionObserver;
  const timers = [];
  const context = {
    window, document, Date: FakeDate, Math, JSON, String, parseInt, isNaN, Uint8Array,
    decodeURIComponent,
    setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimeout: (id) => { if (timers[id - 1]) timers[id - 1].cleared = true; },
  };
  vm.runInNewContext(source, context);
  const fire = (target, type, event = {}) => (listeners[target][type] || []).forEach((fn) => fn(event));
  return { state, clock, root, block, items, outside, document, window, fire, timers };
}

function grant(env) {
  env.root.dataset.personalizeConsent = "granted";
  env.fire("document", "personalize:consent");
}

const out = {};

// 1. Without consent nothing is observed, queued or sent.
{
  const env = setup();
  env.fire("document", "click", { target: env.items[0] });
  env.window.personalizeTracker.track("view", "sku-1");
  env.window.personalizeTracker.flush();
  env.document.visibilityState = "hidden";
  env.fire("document", "visibilitychange");
  out.denied = { beacons: env.state.beacons.length, fetches: env.state.fetches.length,
                 observed: env.state.observed.length };
}

// 2. Consent granted: impressions once per block, a click flushes the batch.
{
  const env = setup();
  grant(env);
  env.state.intersect(env.block, 0.2); // not visible enough
  env.state.intersect(env.block, 0.6);
  env.state.intersect(env.block, 1.0); // counted once
  env.fire("document", "click", { target: env.items[1] });
  env.fire("document", "click", { target: env.outside }); // not inside a block
  out.granted = { beacons: env.state.beacons, observed: env.state.observed,
                  unobserved: env.state.unobserved, threshold: env.state.observerOptions };
}

// 3. Dwell time on an item page, sent when the page is hidden.
{
  const env = setup({ consent: "granted" });
  env.clock.now += 42_500;
  env.document.visibilityState = "hidden";
  env.fire("document", "visibilitychange");
  env.clock.now += 100_000; // hidden time does not count
  env.document.visibilityState = "visible";
  env.fire("document", "visibilitychange");
  env.clock.now += 10_000;
  env.fire("window", "pagehide");
  out.dwell = { beacons: env.state.beacons };
}

// 4. Withdrawal between queueing and sending: the queue is dropped.
{
  const env = setup({ consent: "granted" });
  env.window.personalizeTracker.track("view", "sku-1");
  env.root.dataset.personalizeConsent = "denied";
  env.window.personalizeTracker.flush();
  out.withdrawn = { beacons: env.state.beacons.length, queuedAfter:
    env.window.personalizeTracker.track("view", "sku-2") };
}

// 5. A refused beacon falls back to fetch with keepalive and the CSRF header.
{
  const env = setup({ consent: "granted", beaconOk: false });
  env.window.personalizeTracker.track("search", null, null, { q: "lamp" });
  env.window.personalizeTracker.flush();
  out.fallback = { fetches: env.state.fetches };
}

// 6. Batches of at most 50 events: a full queue goes by fetch at once (the page
//    stays), the rest by beacon when flushed.
{
  const env = setup({ consent: "granted" });
  for (let i = 0; i < 120; i++) env.window.personalizeTracker.track("view", `sku-${i}`);
  env.window.personalizeTracker.flush();
  out.batches = { fetched: env.state.fetches.map((f) => f.body.events.length),
                  beaconed: env.state.beacons.map((b) => b.body.events.length) };
}

// 7. Without IntersectionObserver every block counts as seen.
{
  const env = setup({ withObserver: false });
  grant(env);
  env.window.personalizeTracker.flush();
  out.noObserver = env.state.beacons.map((b) => b.body.events.map((e) => e.type));
}

// Runs the pending timer that was set last and not cleared; its delay.
function runTimer(env) {
  const live = env.timers.filter((t) => !t.cleared && !t.ran);
  const timer = live[live.length - 1];
  timer.ran = true;
  timer.fn();
  return timer.ms;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

(async () => {
  // 8. While the page stays, batches go by fetch and a 503 or 429 is retried with the
  //    same event ids after Retry-After, a network error after a growing delay.
  {
    const env = setup({ consent: "granted", withObserver: false, replies: [
      { status: 503, retryAfter: "7" }, "network", { status: 429 }, { status: 200 },
    ] });
    env.window.personalizeTracker.track("view", "sku-1");
    const firstDelay = runTimer(env); // the periodic send
    await settle();
    const delays = [firstDelay];
    for (let i = 0; i < 3; i++) { delays.push(runTimer(env)); await settle(); }
    out.retried = {
      beacons: env.state.beacons.length, delays,
      sent: env.state.fetches.map((f) => f.body.events.map((e) => `${e.type}:${e.item}:${e.event_id}`)),
      pending: env.timers.filter((t) => !t.cleared && !t.ran).length,
    };
  }
  // 9. A 400 (every event rejected) is not sent again; neither is a batch whose
  //    consent was withdrawn before the retry.
  {
    const env = setup({ consent: "granted", withObserver: false, replies: [{ status: 400 }] });
    env.window.personalizeTracker.track("view", "sku-1");
    runTimer(env);
    await settle();
    const after400 = env.timers.filter((t) => !t.cleared && !t.ran).length;
    const withdrawn = setup({ consent: "granted", withObserver: false,
                              replies: [{ status: 503 }] });
    withdrawn.window.personalizeTracker.track("view", "sku-1");
    withdrawn.root.dataset.personalizeConsent = "denied";
    runTimer(withdrawn); // dropped: not sent at all
    out.notRetried = { after400, fetches400: env.state.fetches.length,
                       withdrawnFetches: withdrawn.state.fetches.length };
  }
  process.stdout.write(JSON.stringify(out));
})();
