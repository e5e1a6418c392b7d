// Runs personalize/static/personalize/consent.js against a minimal fake DOM and
// prints what it did as JSON (driven by tests/static/test_consent_js.py).
"use strict";
const fs = require("fs");
const vm = require("vm");

const source = fs.readFileSync(process.argv[2], "utf8");

function setup(fetchImpl) {
  const state = { listeners: {}, events: [], fetchCalls: [], removed: false, submitted: 0,
                  appended: [], prevented: false };
  const root = { dataset: { personalizeConsent: "denied" } };
  const banner = { parentNode: { removeChild() { state.removed = true; } } };
  const form = {
    action: "/personalize/consent/",
    hasAttribute: (name) => name === "data-personalize-consent-form",
    closest: (selector) => (selector === "[data-personalize-consent-banner]" ? banner : null),
    appendChild(child) { state.appended.push({ name: child.name, value: child.value }); },
  };
  function FormData() { this.entries = [["csrfmiddlewaretoken", "tok"], ["next", "/p/"]]; }
  FormData.prototype.append = function (k, v) { this.entries.push([k, v]); };
  FormData.prototype.get = function (k) {
    const e = this.entries.find((x) => x[0] === k); return e ? e[1] : null;
  };
  const fetch = (url, options) => {
    state.fetchCalls.push({ url, method: options.method, headers: options.headers,
                            credentials: options.credentials, body: options.body.entries });
    return fetchImpl();
  };
  const context = {
    window: { fetch, FormData },
    document: {
      documentElement: root,
      activeElement: null,
      addEventListener(type, fn) { state.listeners[type] = fn; },
      dispatchEvent(event) { state.events.push({ type: event.type, detail: event.detail }); },
      createElement() { return {}; },
    },
    FormData, fetch,
    CustomEvent: function (type, init) { this.type = type; this.detail = init.detail; },
    HTMLFormElement: { prototype: { submit() { state.submitted += 1; } } },
    Object, Error,
  };
  vm.runInNewContext(source, context);
  return { state, root, form };
}

function submit(env, target, submitter) {
  env.state.listeners.submit({ target, submitter,
                               preventDefault() { env.state.prevented = true; } });
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

(async () => {
  const doc = { purposes: { personalization: { granted: true },
                            ad_measurement: { granted: false } } };
  const ok = setup(() => Promise.resolve({ ok: true, json: () => Promise.resolve(doc) }));
  submit(ok, ok.form, { name: "granted", value: "1" });
  await tick();

  const failing = setup(() => Promise.reject(new Error("offline")));
  submit(failing, failing.form, { name: "granted", value: "0" });
  await tick();

  const serverError = setup(() => Promise.resolve({ ok: false, status: 500 }));
  submit(serverError, serverError.form, { name: "granted", value: "1" });
  await tick();

  const other = setup(() => Promise.reject(new Error("unused")));
  submit(other, { hasAttribute: () => false }, null);
  await tick();

  const summary = (env) => ({ ...env.state, dataset: env.root.dataset, listeners: undefined });
  process.stdout.write(JSON.stringify({
    ok: summary(ok), failing: summary(failing), serverError: summary(serverError),
    other: summary(other),
  }));
})();
