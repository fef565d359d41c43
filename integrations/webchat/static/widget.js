/*
 * Comptoir web chat widget: one script, no build step, no dependency.
 *
 *   <script src="https://gateway.example/webchat/widget.js" defer></script>
 *   <div id="comptoir-chat"></div>            (optional: embed here instead of a bubble)
 *
 * It speaks Socket.IO (Engine.IO v4 over WebSocket) with Rasa's socketio events:
 * session_request/session_confirm, user_uttered/bot_uttered, plus history_request.
 * Everything the bot or the user writes is rendered as text (textContent), never HTML.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var server = (script && script.getAttribute("data-server")) ||
    (script ? new URL(script.src, location.href).origin : location.origin);
  var STORE_KEY = "comptoir.session";
  var socket = null, sessionId = null, retry = 0, pingTimer = null, waiting = 0;

  // ---- UI -----------------------------------------------------------------------
  var css = [
    ".cpt{font:15px/1.4 system-ui,sans-serif;color:#1d1d1f;display:flex;flex-direction:column;",
    "background:#fff;border:1px solid #d0d0d7;border-radius:12px;overflow:hidden;max-width:420px;",
    "width:100%;height:560px;max-height:90vh;box-shadow:0 6px 24px rgba(0,0,0,.12)}",
    ".cpt-float{position:fixed;right:16px;bottom:16px;z-index:2147483000;width:min(420px,calc(100vw - 32px))}",
    ".cpt-head{background:#0b3d91;color:#fff;padding:10px 14px;font-weight:600;display:flex;justify-content:space-between;align-items:center}",
    ".cpt-head button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}",
    ".cpt-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;margin:0;list-style:none}",
    ".cpt-msg{max-width:85%;padding:8px 12px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word}",
    ".cpt-bot{background:#f0f2f7;align-self:flex-start;border-bottom-left-radius:4px}",
    ".cpt-user{background:#0b3d91;color:#fff;align-self:flex-end;border-bottom-right-radius:4px}",
    ".cpt-user a{color:#fff}",
    ".cpt-msg img{max-width:100%;border-radius:8px;display:block}",
    ".cpt-card{padding:0;overflow:hidden;background:#fff;border:1px solid #d0d0d7;width:85%;flex-shrink:0}",
    ".cpt-card img{border-radius:0;width:100%;aspect-ratio:4/3;object-fit:cover;background:#f0f2f7}",
    ".cpt-card strong{display:block;padding:8px 12px 0}",
    ".cpt-card p{margin:4px 12px 8px}",
    ".cpt-card a{display:block;padding:8px 12px;border-top:1px solid #d0d0d7;color:#0b3d91;font-weight:600}",
    ".cpt-replies{display:flex;flex-wrap:wrap;gap:6px;align-self:flex-start}",
    ".cpt-replies button{border:1px solid #0b3d91;color:#0b3d91;background:#fff;border-radius:16px;",
    "padding:6px 12px;cursor:pointer;font:inherit}",
    ".cpt-replies button:hover,.cpt-replies button:focus{background:#0b3d91;color:#fff;outline:2px solid #ffbf47}",
    ".cpt-typing{align-self:flex-start;color:#555;font-style:italic;padding:0 12px}",
    ".cpt-form{display:flex;border-top:1px solid #d0d0d7}",
    ".cpt-form input{flex:1;border:0;padding:12px;font:inherit;min-width:0}",
    ".cpt-form button{border:0;background:#0b3d91;color:#fff;padding:0 16px;font:inherit;cursor:pointer}",
    ".cpt-status{font-size:12px;color:#a33;padding:2px 12px}",
    ".cpt-sr{position:absolute;left:-9999px}",
    ".cpt-open{position:fixed;right:16px;bottom:16px;z-index:2147483000;border:0;border-radius:24px;",
    "background:#0b3d91;color:#fff;padding:12px 18px;font:600 15px system-ui,sans-serif;cursor:pointer}"
  ].join("");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var root, log, input, typing, status;

  function build() {
    var style = el("style");
    style.textContent = css;
    document.head.appendChild(style);
    var host = document.getElementById("comptoir-chat");
    root = el("section", "cpt" + (host ? "" : " cpt-float"));
    root.setAttribute("aria-label", "Discussion avec Comptoir, l'assistant du magasin");
    var head = el("div", "cpt-head");
    head.appendChild(el("span", "", "Comptoir — votre assistant"));
    log = el("ol", "cpt-log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", "Messages");
    typing = el("div", "cpt-typing", "Comptoir écrit…");
    typing.hidden = true;
    typing.setAttribute("aria-live", "polite");
    status = el("div", "cpt-status");
    status.setAttribute("role", "status");
    var form = el("form", "cpt-form");
    var label = el("label", "cpt-sr", "Votre message");
    label.setAttribute("for", "cpt-input");
    input = el("input");
    input.id = "cpt-input";
    input.type = "text";
    input.maxLength = 2000;
    input.autocomplete = "off";
    input.placeholder = "Écrivez votre message…";
    var send = el("button", "", "Envoyer");
    send.type = "submit";
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(send);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      say(text, text);
    });
    root.appendChild(head);
    root.appendChild(log);
    root.appendChild(typing);
    root.appendChild(status);
    root.appendChild(form);
    if (host) {
      host.appendChild(root);
    } else {
      var close = el("button", "", "×");
      close.setAttribute("aria-label", "Fermer la discussion");
      head.appendChild(close);
      var open = el("button", "cpt-open", "Discuter avec nous");
      open.setAttribute("aria-expanded", "false");
      root.hidden = true;
      open.addEventListener("click", function () {
        root.hidden = false; open.hidden = true; input.focus();
      });
      close.addEventListener("click", function () {
        root.hidden = true; open.hidden = false; open.focus();
      });
      document.body.appendChild(open);
      document.body.appendChild(root);
    }
  }

  // Text with links: URLs become anchors, everything else stays text.
  function appendText(node, text) {
    var parts = String(text).split(/(https?:\/\/[^\s<>"]+)/g);
    for (var i = 0; i < parts.length; i++) {
      if (i % 2 === 1) {
        var a = el("a", "", parts[i]);
        a.href = parts[i];
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        node.appendChild(a);
      } else if (parts[i]) {
        node.appendChild(document.createTextNode(parts[i]));
      }
    }
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  function clearReplies() {
    var old = log.querySelectorAll(".cpt-replies");
    for (var i = 0; i < old.length; i++) old[i].parentNode.removeChild(old[i]);
  }

  function web(url) { return typeof url === "string" && /^https?:\/\//.test(url); }

  // A product card (Rasa widgets' "generic" template): picture, name, the answer's lines
  // and a link to the product page; the buttons follow as usual.
  function cardOf(message) {
    var a = message.attachment;
    var elements = a && a.type === "template" && a.payload &&
      a.payload.template_type === "generic" && a.payload.elements;
    if (!elements || !elements.length) return null;
    var card = elements[0], item = el("li", "cpt-msg cpt-bot cpt-card");
    item.setAttribute("data-from", "bot");
    item.appendChild(el("span", "cpt-sr", "Comptoir : "));
    if (web(card.image_url)) {
      var img = el("img");
      img.src = card.image_url;
      img.alt = card.title || "";
      item.appendChild(img);
    }
    item.appendChild(el("strong", "", card.title || ""));
    var lines = el("p");
    appendText(lines, card.subtitle || "");
    item.appendChild(lines);
    var url = card.default_action && card.default_action.url;
    if (web(url)) {
      var link = el("a", "", "Voir la fiche produit");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      item.appendChild(link);
    }
    return item;
  }

  function show(who, message) {
    var card = who === "bot" ? cardOf(message) : null;
    if (card) {
      log.appendChild(card);
      var postbacks = (message.attachment.payload.elements[0].buttons || []).filter(
        function (b) { return b.type === "postback"; });
      showButtons(who, { buttons: message.buttons || postbacks });
      return;
    }
    var item = el("li", "cpt-msg cpt-" + who);
    item.setAttribute("data-from", who);
    var label = el("span", "cpt-sr", who === "user" ? "Vous : " : "Comptoir : ");
    item.appendChild(label);
    if (message.text) appendText(item, message.text);
    var src = message.image ||
      (message.attachment && message.attachment.payload && message.attachment.payload.src);
    if (web(src)) {
      var img = el("img");
      img.src = src;
      img.alt = message.text || "Image envoyée par Comptoir";
      item.appendChild(img);
    }
    log.appendChild(item);
    showButtons(who, message);
  }

  function showButtons(who, message) {
    var buttons = message.quick_replies || message.buttons;
    if (who === "bot" && buttons && buttons.length) {
      var box = el("li", "cpt-replies");
      box.setAttribute("aria-label", "Réponses proposées");
      buttons.forEach(function (b) {
        var button = el("button", "", b.title);
        button.type = "button";
        button.addEventListener("click", function () { say(b.title, b.payload); });
        box.appendChild(button);
      });
      log.appendChild(box);
    }
    scroll();
  }

  function say(shown, payload) {
    clearReplies();
    show("user", { text: shown });
    if (!emit("user_uttered", { message: payload, session_id: sessionId })) {
      status.textContent = "Connexion perdue, nouvel essai en cours… votre message sera à renvoyer.";
      return;
    }
    waiting += 1;
    typing.hidden = false;
  }

  // ---- Socket.IO over WebSocket (Engine.IO v4) ------------------------------------
  function emit(event, data) {
    if (!socket || socket.readyState !== 1) return false;
    socket.send("42" + JSON.stringify([event, data]));
    return true;
  }

  function connect() {
    var url = server.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
    socket = new WebSocket(url);
    socket.onmessage = function (event) {
      var data = String(event.data);
      if (data === "2") { socket.send("3"); return; }            // ping -> pong
      if (data.charAt(0) === "0") { socket.send("40"); return; } // open -> connect
      if (data.indexOf("40") === 0) {                             // connected
        retry = 0;
        status.textContent = "";
        emit("session_request", { session_id: sessionId });
        return;
      }
      if (data.indexOf("42") === 0) {
        var packet = JSON.parse(data.slice(2));
        handle(packet[0], packet[1]);
      }
    };
    socket.onclose = function () {
      status.textContent = "Connexion interrompue, reconnexion…";
      var delay = Math.min(10000, 500 * Math.pow(2, retry++));
      setTimeout(connect, delay);
    };
  }

  function handle(event, data) {
    if (event === "session_confirm") {
      sessionId = data;
      try { localStorage.setItem(STORE_KEY, sessionId); } catch (e) { /* private mode */ }
      emit("history_request", {});
    } else if (event === "history") {
      log.textContent = "";
      (data || []).forEach(function (m, i) {
        var isLast = i === data.length - 1;
        show(m.sender, { text: m.text, image: m.image, attachment: m.attachment,
                         buttons: isLast ? m.buttons : [] });
      });
      if (!data || !data.length) {
        emit("user_uttered", { message: "/greet", session_id: sessionId });
        waiting += 1;
        typing.hidden = false;
      }
    } else if (event === "bot_uttered") {
      waiting = Math.max(0, waiting - 1);
      typing.hidden = waiting === 0;
      show("bot", data || {});
    }
  }

  function start() {
    try { sessionId = localStorage.getItem(STORE_KEY); } catch (e) { sessionId = null; }
    build();
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
