/*
 * django-personalize consent banner: progressive enhancement.
 *
 * The banner is a plain form that works without JavaScript (POST, then a
 * redirect back). With this script the form is sent with fetch instead: the
 * banner disappears in place, <html data-personalize-consent="granted|denied">
 * (and data-personalize-consent-<purpose>) are updated for the tracker, and a
 * "personalize:consent" event is dispatched on document with the visitor's
 * consent document as event.detail. On any failure the form is submitted the
 * plain way.
 */
(function () {
  "use strict";

  function attributeKey(purpose) {
    if (purpose === "personalization") return "personalizeConsent";
    var suffix = purpose.replace(/[-_]+([a-z0-9])/g, function (_, c) { return c.toUpperCase(); });
    return "personalizeConsent" + suffix.charAt(0).toUpperCase() + suffix.slice(1);
  }

  function applyState(doc) {
    var root = document.documentElement;
    var purposes = (doc && doc.purposes) || {};
    Object.keys(purposes).forEach(function (purpose) {
      root.dataset[attributeKey(purpose)] = purposes[purpose].granted ? "granted" : "denied";
    });
  }

  function plainSubmit(form, submitter) {
    if (submitter && submitter.name) {
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = submitter.name;
      hidden.value = submitter.value;
      form.appendChild(hidden);
    }
    HTMLFormElement.prototype.submit.call(form);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-personalize-consent-form")) return;
    if (!window.fetch || !window.FormData) return;
    event.preventDefault();
    var submitter = event.submitter || document.activeElement;
    var data = new FormData(form);
    if (submitter && submitter.name) data.append(submitter.name, submitter.value);
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") || "" }
    })
      .then(function (response) {
        if (!response.ok) throw new Error("consent: HTTP " + response.status);
        return response.json();
      })
      .then(function (doc) {
        applyState(doc);
        var banner = form.closest("[data-personalize-consent-banner]");
        if (banner && banner.parentNode) banner.parentNode.removeChild(banner);
        document.dispatchEvent(new CustomEvent("personalize:consent", { detail: doc }));
      })
      .catch(function () { plainSubmit(form, submitter); });
  });
})();
