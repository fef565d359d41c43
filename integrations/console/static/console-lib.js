/* What every console page shares: elements holding text only (textContent), and API
   calls that carry the login session's CSRF token on every change. */
window.ComptoirConsole = (function () {
  "use strict";
  var csrf = null;

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }

  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = csrf;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    return fetch(path, options).then(function (r) {
      return r.json().then(function (data) { data._status = r.status; return data; });
    });
  }

  return { el: el, api: api, setCsrf: function (token) { csrf = token; } };
}());
