// claimwatch review page: keyboard triage, actions in place, bulk selection and undo, and
// the article page's "Why?" panel, fetched when opened.
// Progressive enhancement only: every action is a plain HTML form that works without this
// file. Served from /static/review.js (the page's CSP allows no other script). No data from
// the server is ever inserted as HTML: messages go in with textContent.
(function () {
  "use strict";

  var removed = [];   // cards taken out of the list by the last action: [{node, parent, next}]
  var toast = null;

  function csrf() {
    var field = document.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("article.item"));
  }

  function current() {
    return document.querySelector("article.item.current") || null;
  }

  function focusCard(card) {
    cards().forEach(function (c) { c.classList.remove("current"); });
    if (!card) { return; }
    card.classList.add("current");
    card.focus({preventScroll: true});
    card.scrollIntoView({block: "nearest"});
  }

  function move(step) {
    var all = cards();
    if (!all.length) { return; }
    var index = all.indexOf(current());
    index = index < 0 ? (step > 0 ? 0 : all.length - 1)
                      : Math.min(Math.max(index + step, 0), all.length - 1);
    focusCard(all[index]);
  }

  function showToast(message, canUndo, isError) {
    if (!toast) {
      toast = document.createElement("div");
      toast.className = "toast";
      toast.setAttribute("role", "status");
      toast.setAttribute("aria-live", "polite");
      document.body.appendChild(toast);
    }
    toast.textContent = "";
    toast.classList.toggle("toast-error", !!isError);
    var text = document.createElement("span");
    text.textContent = message;
    toast.appendChild(text);
    if (canUndo) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = "Undo (u)";
      button.setAttribute("aria-label", "Undo: " + message);
      button.addEventListener("click", undo);
      toast.appendChild(button);
    }
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRF-Token": csrf()}
    }).then(function (response) {
      return response.json().catch(function () { return {ok: false, message: response.statusText}; })
        .then(function (data) { data.status = response.status; return data; });
    });
  }

  function statusFilter() {
    var select = document.querySelector("select[name=status]");
    return select ? select.value : "open";
  }

  function takeOut(ids) {
    removed = [];
    var keep = statusFilter() === "all";
    ids.forEach(function (id) {
      var card = document.getElementById("article-" + id);
      if (!card || keep) { return; }
      removed.push({node: card, parent: card.parentNode, next: card.nextSibling});
      var after = card.nextElementSibling || card.previousElementSibling;
      var wasCurrent = card.classList.contains("current");
      card.parentNode.removeChild(card);
      if (wasCurrent && after && after.matches("article.item")) { focusCard(after); }
    });
  }

  function putBack() {
    removed.slice().reverse().forEach(function (item) {
      item.parent.insertBefore(item.node, item.next && item.next.parentNode === item.parent
                               ? item.next : null);
    });
    if (removed.length) { focusCard(removed[0].node); }
    removed = [];
  }

  function undo() {
    var body = new URLSearchParams();
    body.set("csrf", csrf());
    post(document.body.dataset.undoUrl || "undo", body).then(function (data) {
      if (data.ok) { putBack(); showToast(data.message, false); }
      else { showToast(data.message || "nothing to undo", false, true); }
    });
  }

  function submitInPlace(form, submitter) {
    var data = new FormData(form, submitter || undefined);
    var body = new URLSearchParams();
    data.forEach(function (value, key) { body.append(key, value); });
    // Selected articles live outside the bulk form (form="bulk" on each checkbox).
    if (form.id === "bulk") {
      body.delete("ids");
      document.querySelectorAll("input.select:checked").forEach(function (box) {
        body.append("ids", box.value);
      });
    }
    return post(form.action, body).then(function (result) {
      if (!result.ok) { showToast(result.message || "failed", false, true); return; }
      var ids = result.article_ids || (result.article_id ? [result.article_id] : []);
      takeOut(ids);
      document.querySelectorAll("input.select:checked").forEach(function (box) {
        box.checked = false;
      });
      showToast(result.message, !!result.undo);
    });
  }

  function inList(form) {
    return !!document.getElementById("items") &&
      (form.id === "bulk" || /\/article\/\d+\/review$/.test(form.getAttribute("action") || ""));
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !inList(form) || !window.fetch) { return; }
    event.preventDefault();
    submitInPlace(form, event.submitter);
  });

  function press(selector, global) {
    var scope = global ? document : (current() || document);
    var button = scope.querySelector(selector);
    if (button) { button.click(); return true; }
    return false;
  }

  function help() {
    var box = document.getElementById("keys-help");
    if (box) { box.hidden = !box.hidden; return; }
    box = document.createElement("div");
    box.id = "keys-help";
    box.className = "box keys";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "Keyboard shortcuts");
    [["j / k", "next / previous article"], ["o or Enter", "open it"],
     ["r", "mark reviewed"], ["d", "dismiss"], ["x", "select (then R or D for all selected)"],
     ["c / v", "confirm / reject the first open match (article page)"], ["u", "undo"],
     ["?", "this help"]].forEach(function (row) {
      var line = document.createElement("div");
      var key = document.createElement("kbd");
      key.textContent = row[0];
      line.appendChild(key);
      line.appendChild(document.createTextNode(" " + row[1]));
      box.appendChild(line);
    });
    document.querySelector("main").prepend(box);
  }

  // The article page's "Why?" panel is computed only when opened: its lines come from
  // why.json (plain text, shown with textContent); without this file its link opens /why.
  function loadWhy(details) {
    var pre = details.querySelector("pre.why");
    if (!pre || details.dataset.whyState || !window.fetch) { return; }
    details.dataset.whyState = "loading";
    pre.hidden = false;
    pre.textContent = "Working it out…";
    fetch(details.dataset.whyUrl, {credentials: "same-origin",
                                   headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { throw new Error(data.error || response.statusText); }
          return data;
        });
      })
      .then(function (data) {
        pre.textContent = data.lines ? data.lines.join("\n") : data.message;
        details.dataset.whyState = "loaded";
        var link = details.querySelector(".why-link");
        if (link) { link.hidden = true; }
      })
      .catch(function (error) {
        pre.textContent = "Could not load the explanation: " + error.message;
        delete details.dataset.whyState;  // opening it again tries again
      });
  }

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details instanceof HTMLDetailsElement && details.open && details.dataset.whyUrl) {
      loadWhy(details);
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable)) {
      return;
    }
    var handled = true;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "o": case "Enter":
        var link = current() && current().querySelector("h2 a");
        if (link) { link.click(); } else { handled = false; }
        break;
      case "r": handled = press("button[data-action=reviewed]"); break;
      case "d": handled = press("button[data-action=dismissed]"); break;
      case "x":
        var box = current() && current().querySelector("input.select");
        if (box) { box.checked = !box.checked; } else { handled = false; }
        break;
      case "R": handled = !!document.querySelector("input.select:checked") &&
                          press("#bulk button[data-bulk=reviewed]", true); break;
      case "D": handled = !!document.querySelector("input.select:checked") &&
                          press("#bulk button[data-bulk=dismissed]", true); break;
      case "c": handled = press("tr.match-open button[data-action=confirm]", true); break;
      case "v": handled = press("tr.match-open button[data-action=reject]", true); break;
      case "u":
        if (document.getElementById("items")) { undo(); }
        else { handled = press(".undo button", true); }
        break;
      case "?": help(); break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });
})();
