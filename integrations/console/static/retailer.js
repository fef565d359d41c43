/* Comptoir, the retailer's side: review inbox and dashboard. Plain DOM, text only
   (textContent), CSRF on every change; charts by Chart.js (vendored). */
(function () {
  "use strict";
  var role = "agent", charts = {}, polling = null;
  var $ = function (id) { return document.getElementById(id); };
  var el = window.ComptoirConsole.el, api = window.ComptoirConsole.api;
  var reviewing = location.pathname === "/console/revue";

  function percent(rate) { return rate === null || rate === undefined ? "—" : Math.round(rate * 1000) / 10 + " %"; }

  api("GET", "/console/api/me").then(function (me) {
    if (me._status !== 200) { $("login").hidden = false; return; }
    window.ComptoirConsole.setCsrf(me.csrf);
    role = me.role;
    $("who").textContent = me.name + " ";
    var out = el("button", "", "Se déconnecter");
    out.addEventListener("click", function () {
      api("POST", "/console/logout").then(function () { location.href = "/console"; });
    });
    $("who").appendChild(out);
    if (role === "agent") {
      $("login").hidden = false;
      $("login-text").textContent = "Cette page est réservée aux comptes « relecteur » ou « administrateur ».";
      return;
    }
    (reviewing ? $("nav-review") : $("nav-dashboard")).setAttribute("aria-current", "page");
    document.title = reviewing ? "Comptoir — à revoir" : "Comptoir — tableau de bord";
    $("title").textContent = document.title;
    if (reviewing) { $("review").hidden = false; loadInbox(); }
    else { $("dashboard").hidden = false; startDashboard(); }
  });

  // Review inbox -----------------------------------------------------------------------
  function loadInbox() {
    api("GET", "/console/api/review").then(function (data) {
      if (data._status !== 200) { $("inbox-empty").hidden = false; $("inbox-empty").textContent = data.error; return; }
      showRetrain(data.retrain);
      var box = $("groups");
      box.textContent = "";
      $("inbox-empty").hidden = data.groups.length > 0;
      data.groups.forEach(function (group) { box.appendChild(groupCard(group, data.labels, data.entities)); });
    });
  }

  function groupCard(group, labels, entities) {
    var card = el("article", "group");
    var head = el("div", "row");
    head.appendChild(el("span", "badge count", "× " + group.count));
    head.appendChild(el("span", "said", "« " + group.text + " »"));
    card.appendChild(head);
    card.appendChild(el("p", "muted", "Le bot a compris : " + (group.guess_title || "rien de sûr") +
      " · canaux : " + Object.keys(group.channels).join(", ") +
      " · dernier le " + new Date(group.last_seen + "Z").toLocaleString("fr-FR")));
    if (group.examples.length) {
      var others = el("ul", "muted");
      group.examples.forEach(function (text) { others.appendChild(el("li", "", "« " + text + " »")); });
      card.appendChild(others);
    }
    var form = el("form", "row");
    var choice = el("select");
    choice.setAttribute("aria-label", "Ce que le client voulait");
    choice.appendChild(new Option("Ce que le client voulait…", ""));
    labels.forEach(function (label) { choice.appendChild(new Option(label.title, label.intent)); });
    choice.appendChild(new Option("Ignorer ce message", "ignorer"));
    var entity = el("select");
    entity.setAttribute("aria-label", "Entité (facultatif)");
    entity.appendChild(new Option("Sans entité", ""));
    entities.forEach(function (e) { entity.appendChild(new Option(e.title, e.entity)); });
    var words = el("input");
    words.placeholder = "mots de l'entité, tels qu'écrits";
    words.setAttribute("aria-label", "Mots de l'entité");
    var send = el("button", "", "Valider");
    send.type = "submit";
    var said = el("span", "", "");
    said.setAttribute("role", "status");
    [choice, entity, words, send, said].forEach(function (n) { form.appendChild(n); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!choice.value) { said.className = "error"; said.textContent = "Choisissez une intention."; return; }
      var body = { ids: group.ids, label: choice.value };
      if (entity.value && words.value) {
        var start = group.text.indexOf(words.value);
        if (start < 0) { said.className = "error"; said.textContent = "Ces mots ne sont pas dans le message."; return; }
        body.entity = { id: group.ids[0], entity: entity.value, start: start, end: start + words.value.length };
      }
      api("POST", "/console/api/review/label", body).then(function (data) {
        if (data._status !== 200) { said.className = "error"; said.textContent = data.error; return; }
        card.textContent = "";
        card.appendChild(el("p", "ok", choice.value === "ignorer" ? "Ignoré." :
          data.labelled + " message(s) étiqueté(s) « " + titleOf(labels, choice.value) +
          " » : ils seront dans le prochain entraînement."));
      });
    });
    card.appendChild(form);
    return card;
  }

  function titleOf(labels, intent) {
    for (var i = 0; i < labels.length; i++) if (labels[i].intent === intent) return labels[i].title;
    return intent;
  }

  var STAGES = { idle: "Aucun entraînement lancé depuis le démarrage.",
    training: "Entraînement en cours (2 à 3 minutes)…", loading: "Chargement du nouveau modèle dans l'assistant…",
    done: "Terminé : le nouveau modèle répond aux clients.", failed: "L'entraînement a échoué." };

  function showRetrain(state) {
    // The training's own log lines are the server's (in English): the page says where it is.
    var text = STAGES[state.stage] || state.stage;
    if (state.stage !== "idle") text += " (" + state.seconds + " s" + (state.model ? ", modèle " + state.model : "") + ")";
    if (state.stage === "failed") text += " Le détail est dans le journal du serveur ; l'ancien modèle répond toujours.";
    $("retrain-status").textContent = text;
    var button = $("retrain");
    button.hidden = role !== "admin";
    button.disabled = state.stage === "training" || state.stage === "loading";
    if (button.disabled && !polling) polling = setInterval(pollRetrain, 2000);
    if (!button.disabled && polling) { clearInterval(polling); polling = null; }
  }

  function pollRetrain() { api("GET", "/console/api/retrain").then(showRetrain); }

  $("retrain").addEventListener("click", function () {
    api("POST", "/console/api/retrain").then(function (data) {
      if (data._status !== 202) { $("retrain-status").textContent = data.error; return; }
      showRetrain(data);
    });
  });

  // Dashboard ----------------------------------------------------------------------------
  function startDashboard() {
    var today = new Date(), from = new Date(today.getTime() - 29 * 86400000);
    var iso = function (d) { return d.toISOString().slice(0, 10); };
    var query = new URLSearchParams(location.search);
    $("du").value = query.get("du") || iso(from);
    $("au").value = query.get("au") || iso(today);
    $("period").addEventListener("submit", function (event) { event.preventDefault(); loadDashboard(); });
    loadDashboard();
  }

  function period() { return "du=" + encodeURIComponent($("du").value) + "&au=" + encodeURIComponent($("au").value); }

  function loadDashboard() {
    $("period-error").textContent = "";
    api("GET", "/console/api/dashboard?" + period()).then(function (data) {
      if (data._status !== 200) { $("period-error").textContent = data.error; return; }
      history.replaceState(null, "", "?" + period());
      totals(data.totals);
      drawCharts(data);
      tables(data);
    });
  }

  function totals(t) {
    var box = $("totals");
    box.textContent = "";
    [["Conversations", t.conversations], ["Messages", t.messages],
     ["Sans conseiller", percent(t.containment)], ["Incompris", percent(t.fallback_rate)],
     ["Clarifications", percent(t.clarification_rate)], ["Hors sujet", percent(t.out_of_scope_rate)],
     ["Transferts", t.handovers],
     ["Satisfaits (" + t.satisfaction_answers + " réponses)", percent(t.satisfaction)]].forEach(function (pair) {
      var card = el("div", "card");
      card.appendChild(el("b", "", String(pair[1])));
      card.appendChild(el("span", "muted", pair[0]));
      box.appendChild(card);
    });
  }

  function chart(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new Chart($(id), config);
  }

  function drawCharts(data) {
    var days = data.days.map(function (d) { return d.day.slice(5); });
    var pct = function (key) { return data.days.map(function (d) { return d[key] === null ? null : Math.round(d[key] * 1000) / 10; }); };
    chart("chart-volume", { type: "line", data: { labels: days, datasets: [
      { label: "Conversations", data: data.days.map(function (d) { return d.conversations; }), borderColor: "#0b3d91" },
      { label: "Messages", data: data.days.map(function (d) { return d.messages; }), borderColor: "#e07b00" }] } });
    chart("chart-rates", { type: "line", data: { labels: days, datasets: [
      { label: "Sans conseiller", data: pct("containment"), borderColor: "#1d6b35" },
      { label: "Incompris", data: pct("fallback_rate"), borderColor: "#a32020" },
      { label: "Clarifications", data: pct("clarification_rate"), borderColor: "#7a4fc9" }] },
      options: { scales: { y: { min: 0, max: 100 } } } });
    chart("chart-intents", { type: "bar", data: { labels: data.intents.map(function (i) { return data.titles[i[0]] || i[0]; }),
      datasets: [{ label: "Messages", data: data.intents.map(function (i) { return i[1]; }), backgroundColor: "#0b3d91" }] },
      options: { indexAxis: "y", plugins: { legend: { display: false } } } });
    var triggers = {};
    data.handovers.forEach(function (h) { triggers[h[1]] = true; });
    var colours = ["#a32020", "#0b3d91", "#e07b00", "#1d6b35"];
    chart("chart-handovers", { type: "bar", data: { labels: data.days.map(function (d) { return d.day.slice(5); }),
      datasets: Object.keys(triggers).map(function (trigger, i) {
        return { label: trigger, backgroundColor: colours[i % colours.length], data: data.days.map(function (d) {
          var found = data.handovers.filter(function (h) { return h[0] === d.day && h[1] === trigger; });
          return found.length ? found[0][2] : 0; }) };
      }) }, options: { scales: { x: { stacked: true }, y: { stacked: true } } } });
    var satisfied = function (kind) {
      return data.days.map(function (d) {
        var found = data.satisfaction.filter(function (s) { return s[0] === d.day && s[1] === kind; });
        return found.length && found[0][3] ? Math.round(found[0][4] / found[0][3] * 100) : null;
      });
    };
    chart("chart-satisfaction", { type: "bar", data: { labels: days, datasets: [
      { label: "Après le bot seul", data: satisfied("bot"), backgroundColor: "#0b3d91" },
      { label: "Après un conseiller", data: satisfied("handover"), backgroundColor: "#e07b00" }] },
      options: { scales: { y: { min: 0, max: 100 } } } });
  }

  var TABLES = [
    ["indisponibles", "Demandés mais indisponibles dans le magasin demandé", ["Produit", "Article", "Magasin", "Demandes"], "not_available"],
    ["non-references", "Demandés mais absents du catalogue", ["Demandé", "Demandes"], "not_carried"],
    ["alertes", "Alertes de retour en stock demandées", ["Produit", "Alertes"], "alerts"],
    ["reservations", "Réservations faites et retirées", ["Produit", "Faites", "Retirées"], "holds"],
    ["jours", "Chiffres par jour", ["Jour", "Conversations", "Messages", "Sans conseiller", "Incompris", "Clarifications", "Hors sujet"], "days"],
    ["intentions", "Intentions", ["Intention", "Messages"], "intents"],
    ["transferts", "Transferts par jour et déclencheur", ["Jour", "Déclencheur", "Transferts"], "handovers"],
    ["satisfaction", "Satisfaction par jour", ["Jour", "Après", "Questions", "Réponses", "Satisfaits"], "satisfaction"]];

  function tables(data) {
    var box = $("tables");
    box.textContent = "";
    TABLES.forEach(function (spec) {
      var rows = data[spec[3]];
      if (spec[3] === "satisfaction") rows = rows.map(function (s) {
        return [s[0], s[1] === "bot" ? "le bot seul" : "un conseiller", s[2], s[3], s[3] ? percent(s[4] / s[3]) : "—"]; });
      if (spec[3] === "intents") rows = rows.map(function (i) { return [data.titles[i[0]] || i[0], i[1]]; });
      if (spec[3] === "days") rows = rows.map(function (d) { return [d.day, d.conversations, d.messages,
        percent(d.containment), percent(d.fallback_rate), percent(d.clarification_rate), percent(d.out_of_scope_rate)]; });
      var head = el("div", "row");
      head.appendChild(el("h3", "", spec[1]));
      var link = el("a", "button secondary", "Exporter en CSV");
      link.href = "/console/api/dashboard/" + spec[0] + ".csv?" + period();
      head.appendChild(link);
      box.appendChild(head);
      if (!rows.length) { box.appendChild(el("p", "muted", "Rien sur la période.")); return; }
      var table = el("table");
      table.id = "table-" + spec[0];
      var tr = el("tr");
      spec[2].forEach(function (h, i) { tr.appendChild(el("th", i && typeof rows[0][i] === "number" ? "n" : "", h)); });
      table.appendChild(tr);
      rows.slice(0, 30).forEach(function (row) {
        var line = el("tr");
        row.forEach(function (cell) { line.appendChild(el("td", typeof cell === "number" ? "n" : "", String(cell))); });
        table.appendChild(line);
      });
      box.appendChild(table);
    });
  }
}());
