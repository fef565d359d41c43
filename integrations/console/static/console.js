/* Comptoir support console: plain DOM, text only (textContent), CSRF on every change. */
(function () {
  "use strict";
  var csrf = null, current = null, socket = null;
  var $ = function (id) { return document.getElementById(id); };
  var el = window.ComptoirConsole.el, api = window.ComptoirConsole.api;

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    fetch("/console/login", { method: "POST", credentials: "same-origin",
      body: new FormData($("login-form")) })
      .then(function (r) { return r.json().then(function (d) { d._status = r.status; return d; }); })
      .then(function (data) {
        if (data._status !== 200) { $("login-error").textContent = data.error; return; }
        start(data);
      });
  });

  function start(me) {
    csrf = me.csrf;
    window.ComptoirConsole.setCsrf(csrf);
    $("login").hidden = true;
    $("app").hidden = false;
    $("who").textContent = "";
    $("who").appendChild(document.createTextNode(me.name + " "));
    var out = el("button", "", "Se déconnecter");
    out.addEventListener("click", function () {
      api("POST", "/console/logout").then(function () { location.reload(); });
    });
    $("who").appendChild(out);
    if (me.role === "reviewer" || me.role === "admin") {
      [["/console/revue", "À revoir"], ["/console/tableau-de-bord", "Tableau de bord"]].forEach(function (link) {
        var a = el("a", "", link[1]);
        a.href = link[0];
        a.style.color = "#fff";
        a.style.marginRight = "12px";
        $("who").insertBefore(a, $("who").firstChild);
      });
    }
    connect();
    loadRequests();
  }

  function connect() {
    socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/console/ws");
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.type === "queue") renderQueue(data.tickets);
      else if (data.type === "message" && current === data.ticket_id) {
        addMessage(data.author, data.text);
      } else if (data.type === "result" && !data.ok) $("ticket-error").textContent = data.error;
    };
    socket.onclose = function () { setTimeout(connect, 2000); };
  }

  function renderQueue(tickets) {
    var list = $("queue");
    list.textContent = "";
    if (!tickets.length) list.appendChild(el("li", "", "Personne n'attend."));
    tickets.forEach(function (t) {
      var item = el("li", "ticket");
      item.setAttribute("data-ticket", t.id);
      item.appendChild(el("strong", "", "Ticket " + t.id + " — " + t.reason));
      item.appendChild(el("span", "badge", t.channel));
      item.appendChild(el("span", "badge", "attente " + t.waiting_minutes + " min"));
      if (t.off_hours) item.appendChild(el("span", "badge", "hors horaires" +
        (t.contact_preference ? " (" + t.contact_preference + ")" : "")));
      if (t.claimed_by) item.appendChild(el("span", "badge", "pris par " + t.claimed_by));
      var open = el("button", "", t.status === "open" ? "Prendre en charge" : "Ouvrir");
      open.type = "button";
      open.addEventListener("click", function () {
        if (t.status === "open") {
          api("POST", "/console/api/tickets/" + t.id + "/claim").then(function (r) {
            if (!r.ok) { $("ticket-error").textContent = r.error; }
            show(t.id);
          });
        } else show(t.id);
      });
      item.appendChild(open);
      list.appendChild(item);
    });
  }

  function addMessage(author, text) {
    $("log").appendChild(el("div", "msg from-" + author, text));
    $("log").scrollTop = $("log").scrollHeight;
  }

  function show(id) {
    current = id;
    api("GET", "/console/api/tickets/" + id).then(function (t) {
      if (t._status !== 200) {  // only the agent handling a ticket reads it
        ["summary", "profile", "log", "notes"].forEach(function (part) { $(part).textContent = ""; });
        $("ticket").hidden = false;
        $("ticket-error").textContent = t.error || "Ticket indisponible.";
        return;
      }
      $("ticket").hidden = false;
      $("ticket-error").textContent = "";
      $("ticket-title").textContent = "Ticket " + t.id + " — " + t.reason + " (" + t.channel + ")";
      var s = t.summary;
      $("summary").textContent = "Le client a écrit : " + (s.last_customer_messages.join(" / ") || "—") +
        (s.product ? " · article : " + s.product : "") +
        (s.intents.length ? " · intentions : " + s.intents.join(", ") : "");
      $("profile").textContent = t.profile ? "Client vérifié : " + t.profile.name +
        " · fidélité " + t.profile.loyalty : "Client non vérifié : aucune donnée personnelle affichée.";
      $("log").textContent = "";
      t.transcript.forEach(function (m) { addMessage(m.sender, m.text); });
      $("notes").textContent = "";
      t.notes.forEach(function (n) { $("notes").appendChild(el("div", "note", n.text)); });
    });
  }

  $("reply-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = $("reply").value.trim();
    if (!text || current === null) return;
    socket.send(JSON.stringify({ csrf: csrf, ticket_id: current, action: "reply", text: text }));
    $("reply").value = "";
  });

  $("note-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = $("note").value.trim();
    if (!text || current === null) return;
    api("POST", "/console/api/tickets/" + current + "/note", { text: text }).then(function (r) {
      if (r.ok) { $("notes").appendChild(el("div", "note", text)); $("note").value = ""; }
      else $("ticket-error").textContent = r.error;
    });
  });

  ["handback", "close"].forEach(function (action) {
    $(action).addEventListener("click", function () {
      api("POST", "/console/api/tickets/" + current + "/" + action).then(function (r) {
        if (!r.ok) $("ticket-error").textContent = r.error;
        else { $("ticket").hidden = true; $("ticket-title").textContent = "Ticket terminé"; current = null; }
      });
    });
  });

  function loadRequests() {
    api("GET", "/console/api/requests").then(function (data) {
      var list = $("requests");
      list.textContent = "";
      if (!data.requests.length) list.appendChild(el("li", "", "Aucune demande en cours."));
      data.requests.forEach(function (r) {
        var item = el("li", "ticket", "Demande " + r.id + " : " + r.kind + " — " + r.status +
          " — échéance " + r.due_at.slice(0, 10) + (r.overdue ? " (en retard)" : "") + " ");
        [["in_progress", "En cours"], ["done", "Traitée"], ["refused", "Refusée"]].forEach(function (s) {
          if (s[0] === r.status) return;
          var b = el("button", "", s[1]);
          b.type = "button";
          b.addEventListener("click", function () {
            api("POST", "/console/api/requests/" + r.id, { status: s[0] }).then(loadRequests);
          });
          item.appendChild(b);
        });
        list.appendChild(item);
      });
    });
  }

  api("GET", "/console/api/me").then(function (me) { if (me._status === 200) start(me); });
})();
