/*
 * django-personalize tracker: impressions of recommendation blocks, clicks on
 * recommended items, and dwell time on item pages. No dependencies.
 *
 * It does nothing unless the page says the visitor agreed:
 *   <html data-personalize-consent="granted">
 * (set by the consent banner; re-read before every send, and when the
 * "personalize:consent" event fires or the attribute changes).
 *
 * Attribute contract (see docs/tracking.md):
 *   <script src=".../track.js" data-personalize-endpoint="/api/personalize/events/"
 *           data-personalize-csrf="{{ csrf_token }}" defer></script>
 *   a block:  <section data-personalize-placement="home" data-personalize-strategy="item_knn"
 *                      data-personalize-impression="<the block's impression id>">
 *   an item:  <a data-personalize-item="sku-1" data-personalize-position="1"
 *                data-personalize-item-strategy="item_knn">   (inside a block)
 * Impressions and clicks of a block's items carry its placement, strategy, impression id
 * and the item's position in their context; the server attributes conversions with them.
 *   an item page: <main data-personalize-page-item="sku-1">   (dwell time)
 *
 * Events are queued and sent in batches as {"csrfmiddlewaretoken": ..., "events": [...]}:
 * every few seconds and when the queue is full with fetch (keepalive), whose answer
 * is read: a batch answered 429 or 5xx, or lost on the network, is queued again and
 * resent after Retry-After (or a growing delay); its event ids make the resend safe,
 * the server stores each event once. After a click and when the page is hidden or
 * left, with navigator.sendBeacon, which survives the page but cannot be retried.
 * window.personalizeTracker.track(type, item, value, context) adds a custom event;
 * window.personalizeTracker.flush() sends the queue at once (by beacon).
 */
(function (window, document) {
  "use strict";
  if (!document || window.personalizeTracker) return;

  var DEFAULT_ENDPOINT = "/api/personalize/events/";
  var FLUSH_MS = 5000;
  var MAX_BATCH = 50; // keeps a beacon well under the 64 KB browsers allow
  var MAX_QUEUE = 500;
  var MAX_DWELL = 3600;
  var VISIBLE_RATIO = 0.5;
  var MAX_RETRY_MS = 60000;

  var script = document.currentScript;
  var queue = [];
  var timer = null;
  var retryMs = FLUSH_MS;
  var seenBlocks = [];
  var observer = null;
  var dwell = { item: null, visibleSince: null, total: 0, sent: false };

  function attr(el, name) {
    return el && el.getAttribute ? el.getAttribute(name) : null;
  }

  function consented() {
    var root = document.documentElement;
    return !!(root && root.dataset && root.dataset.personalizeConsent === "granted");
  }

  function endpoint() {
    return attr(script, "data-personalize-endpoint") || DEFAULT_ENDPOINT;
  }

  function readCookie(name) {
    var parts = ("; " + (document.cookie || "")).split("; " + name + "=");
    return parts.length > 1 ? decodeURIComponent(parts.pop().split(";")[0]) : null;
  }

  function csrfToken() {
    var meta = document.querySelector && document.querySelector('meta[name="csrf-token"]');
    var input = document.querySelector && document.querySelector('input[name="csrfmiddlewaretoken"]');
    return attr(script, "data-personalize-csrf") || attr(meta, "content") ||
      readCookie(attr(script, "data-personalize-csrf-cookie") || "csrftoken") ||
      (input && input.value) || "";
  }

  function uuid4() {
    var c = window.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = [];
    for (var j = 0; j < 16; j++) h.push((b[j] + 0x100).toString(16).slice(1));
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  function track(type, item, value, context) {
    if (!consented() || queue.length >= MAX_QUEUE) return false;
    var event = { event_id: uuid4(), type: type, timestamp: new Date().toISOString() };
    if (item) event.item = String(item);
    if (value !== undefined && value !== null) event.value = value;
    if (context) event.context = context;
    queue.push(event);
    if (queue.length >= MAX_BATCH) sendQueue(false);
    else if (!timer) timer = setTimeout(function () { sendQueue(false); }, FLUSH_MS);
    return true;
  }

  function beacon(body) {
    var nav = window.navigator;
    // text/plain keeps the beacon a "simple" request; the server accepts it.
    return !!(nav && nav.sendBeacon && window.Blob &&
      nav.sendBeacon(endpoint(), new window.Blob([body], { type: "text/plain;charset=UTF-8" })));
  }

  function retryLater(events, retryAfter) {
    if (!consented()) return; // withdrawn meanwhile: never resend
    queue = events.concat(queue).slice(0, MAX_QUEUE);
    var seconds = parseInt(retryAfter, 10);
    var delay = seconds > 0 ? seconds * 1000 : retryMs;
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () { sendQueue(false); }, Math.min(delay, MAX_RETRY_MS));
  }

  function send(events, leaving) {
    var body = JSON.stringify({ csrfmiddlewaretoken: csrfToken(), events: events });
    if ((leaving || !window.fetch) && beacon(body)) return;
    if (!window.fetch) return;
    window.fetch(endpoint(), {
      method: "POST", body: body, keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() }
    }).then(function (response) {
      // over the rate limit or the server failing: the same events again later;
      // a 400 (every event rejected) or 403 would be answered the same way again
      if (response.status === 429 || response.status >= 500) {
        retryLater(events, response.headers && response.headers.get("Retry-After"));
      } else {
        retryMs = FLUSH_MS;
      }
    }, function () { retryLater(events, null); });
  }

  function sendQueue(leaving) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!consented()) { queue = []; return; } // withdrawn meanwhile: drop, never send
    while (queue.length) send(queue.splice(0, MAX_BATCH), leaving);
  }

  function flush() {
    sendQueue(true);
  }

  function blockOf(el) {
    return el && el.closest ? el.closest("[data-personalize-placement]") : null;
  }

  function itemContext(itemEl, block) {
    var context = { placement: attr(block, "data-personalize-placement") };
    var strategy = attr(itemEl, "data-personalize-item-strategy") ||
      attr(block, "data-personalize-strategy");
    var impressionId = attr(block, "data-personalize-impression");
    var position = parseInt(attr(itemEl, "data-personalize-position"), 10);
    if (strategy) context.strategy = strategy;
    if (impressionId) context.impression = impressionId;
    if (!isNaN(position) && position > 0) context.position = position;
    return context;
  }

  function impression(block) {
    if (seenBlocks.indexOf(block) !== -1 || !consented()) return;
    seenBlocks.push(block);
    var items = block.querySelectorAll("[data-personalize-item]");
    for (var i = 0; i < items.length; i++) {
      track("impression", attr(items[i], "data-personalize-item"), null,
            itemContext(items[i], block));
    }
  }

  function observeBlocks() {
    if (!consented() || !document.querySelectorAll) return;
    var blocks = document.querySelectorAll("[data-personalize-placement]");
    if (!window.IntersectionObserver) {
      for (var i = 0; i < blocks.length; i++) impression(blocks[i]);
      return;
    }
    if (!observer) {
      observer = new window.IntersectionObserver(function (entries) {
        for (var k = 0; k < entries.length; k++) {
          if (entries[k].isIntersecting && entries[k].intersectionRatio >= VISIBLE_RATIO) {
            impression(entries[k].target);
            observer.unobserve(entries[k].target);
          }
        }
      }, { threshold: [VISIBLE_RATIO] });
    }
    for (var j = 0; j < blocks.length; j++) {
      if (seenBlocks.indexOf(blocks[j]) === -1) observer.observe(blocks[j]);
    }
  }

  function onClick(event) {
    var target = event.target;
    var itemEl = target && target.closest ? target.closest("[data-personalize-item]") : null;
    var block = blockOf(itemEl);
    if (!itemEl || !block) return;
    if (track("click", attr(itemEl, "data-personalize-item"), null, itemContext(itemEl, block))) {
      flush(); // the page may be about to unload
    }
  }

  function now() { return Date.now(); }

  function dwellStart() {
    if (dwell.item && dwell.visibleSince === null && document.visibilityState !== "hidden") {
      dwell.visibleSince = now();
    }
  }

  function dwellStop() {
    if (dwell.visibleSince !== null) {
      dwell.total += (now() - dwell.visibleSince) / 1000;
      dwell.visibleSince = null;
    }
  }

  function dwellSend() {
    dwellStop();
    if (!dwell.item || dwell.sent || dwell.total < 1) return;
    dwell.sent = true;
    var seconds = Math.min(MAX_DWELL, Math.round(dwell.total * 10) / 10);
    track("dwell", dwell.item, seconds, null);
  }

  function onHidden() {
    if (document.visibilityState === "hidden") {
      dwellSend();
      flush();
    } else {
      dwellStart();
    }
  }

  function start() {
    var page = document.querySelector && document.querySelector("[data-personalize-page-item]");
    if (page && !dwell.item) {
      dwell.item = attr(page, "data-personalize-page-item");
      dwellStart();
    }
    observeBlocks();
  }

  document.addEventListener("click", onClick, true);
  document.addEventListener("visibilitychange", onHidden);
  window.addEventListener("pagehide", function () { dwellSend(); flush(); });
  document.addEventListener("personalize:consent", function () {
    if (consented()) start(); else queue = [];
  });
  if (window.MutationObserver && document.documentElement) {
    new window.MutationObserver(function () {
      if (consented()) start(); else queue = [];
    }).observe(document.documentElement, { attributes: true,
                                           attributeFilter: ["data-personalize-consent"] });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  window.personalizeTracker = { track: track, flush: flush, rescan: observeBlocks };
})(window, document);
