// The call page: audio synced to the transcript, per-item verdicts with a live manual score,
// keyboard shortcuts, review submit, appeal and appeal decision. Plain JavaScript, no library.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("call-data").textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var player = document.getElementById("player");
  var turns = Array.prototype.slice.call(document.querySelectorAll(".turn"));
  var items = Array.prototype.slice.call(document.querySelectorAll(".item"));
  var verdicts = {};
  var selected = null;
  var manualEdited = false;
  var marks = data.marks.filter(function (m) { return m.bad; }).sort(function (a, b) { return a.start - b.start; });
  if (!marks.length) { marks = data.marks.slice().sort(function (a, b) { return a.start - b.start; }); }
  var markAt = -1;

  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); });
  }

  // --- audio ------------------------------------------------------------------------------
  function duration() {
    return (player && isFinite(player.duration) && player.duration > 0) ? player.duration : (data.duration || 1);
  }
  function seek(t, play) {
    if (!player || t === "" || t === null || isNaN(t)) { return; }
    player.currentTime = Number(t);
    if (play) { player.play().catch(function () {}); }
  }
  function currentTurn() {
    if (!player) { return; }
    var t = player.currentTime, cur = null;
    turns.forEach(function (el) {
      var s = parseFloat(el.dataset.start), e = parseFloat(el.dataset.end);
      if (!isNaN(s) && t >= s && (isNaN(e) || t < e + 0.05)) { cur = el; }
    });
    turns.forEach(function (el) { el.classList.toggle("current", el === cur); });
    var p = document.getElementById("progress");
    if (p) { p.setAttribute("width", String(Math.min(1000, 1000 * t / duration()))); }
  }
  function drawMarks() {
    var svg = document.getElementById("timeline");
    if (!svg) { return; }
    Array.prototype.slice.call(svg.querySelectorAll(".mark")).forEach(function (n) { n.remove(); });
    data.marks.forEach(function (m) {
      var r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      var x = 1000 * m.start / duration(), w = Math.max(4, 1000 * ((m.end || m.start) - m.start) / duration());
      r.setAttribute("x", String(x)); r.setAttribute("y", "2"); r.setAttribute("width", String(w));
      r.setAttribute("height", "20"); r.setAttribute("class", "mark " + (m.bad ? "bad" : "ok"));
      var title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = m.rule_id; r.appendChild(title);
      svg.appendChild(r);
    });
  }
  if (player) {
    player.addEventListener("timeupdate", currentTurn);
    player.addEventListener("seeked", currentTurn);
    player.addEventListener("loadedmetadata", drawMarks);
    var speed = document.getElementById("speed");
    speed.addEventListener("change", function () { player.playbackRate = Number(speed.value); });
    document.getElementById("timeline").addEventListener("click", function (ev) {
      var box = ev.currentTarget.getBoundingClientRect();
      seek(duration() * (ev.clientX - box.left) / box.width, false);
    });
  }
  drawMarks();
  turns.forEach(function (el) {
    el.addEventListener("click", function () { seek(el.dataset.start, true); });
  });
  Array.prototype.slice.call(document.querySelectorAll(".ev")).forEach(function (a) {
    a.addEventListener("click", function (ev) { ev.preventDefault(); seek(a.dataset.start, true); });
  });

  // --- verdicts and the live score ----------------------------------------------------------
  function recompute() {
    // the same arithmetic as workflow.workspace.recompute
    if (data.machine === null || data.machine === undefined) { return null; }
    var fatalHit = data.items.some(function (i) { return i.fatal && i.hit; });
    var base = fatalHit ? 100 : data.machine - data.items.filter(function (i) { return !i.fatal; })
      .reduce(function (s, i) { return s + i.points; }, 0);
    var total = base, fatal = false;
    data.items.forEach(function (i) {
      var v = verdicts[i.rule_id];
      if (i.fatal) { fatal = fatal || (i.hit && v !== "false_positive") || (!i.hit && v === "missed"); return; }
      if (i.hit && v === "false_positive") { return; }
      total += (!i.hit && v === "missed") ? -Math.abs(i.possible) : i.points;
    });
    return fatal ? 0 : Math.round(Math.min(100, Math.max(0, total)) * 10) / 10;
  }
  function showScore(marked) {
    // the input always proposes the recomputed score; the panel shows it once an item is marked
    var s = recompute();
    var out = document.getElementById("score-manual");
    var input = document.getElementById("manual-score");
    if (out && s !== null && marked) { out.textContent = String(s); }
    if (input && !manualEdited && s !== null) { input.value = String(s); }
  }
  function setVerdict(li, v) {
    var rid = li.dataset.rule;
    if (verdicts[rid] === v) { delete verdicts[rid]; } else { verdicts[rid] = v; }
    li.dataset.verdict = verdicts[rid] || "";
    showScore(true);
  }
  function select(li) {
    items.forEach(function (x) { x.classList.toggle("selected", x === li); });
    selected = li;
    if (li) { li.scrollIntoView({block: "nearest"}); }
  }
  items.forEach(function (li) {
    if (li.dataset.verdict) { verdicts[li.dataset.rule] = li.dataset.verdict; }
    li.addEventListener("click", function () { select(li); });
    Array.prototype.slice.call(li.querySelectorAll(".verdict button")).forEach(function (b) {
      b.addEventListener("click", function (ev) { ev.stopPropagation(); select(li); setVerdict(li, b.dataset.v); });
    });
  });
  var only = document.getElementById("only-hits");
  only.addEventListener("change", function () {
    document.getElementById("items-pane").classList.toggle("only-hits", only.checked);
  });
  var manualInput = document.getElementById("manual-score");
  if (manualInput) { manualInput.addEventListener("input", function () { manualEdited = manualInput.value !== ""; }); }
  showScore(false);

  // --- submit --------------------------------------------------------------------------------
  function nextCall() {
    window.location.href = data.next_call ? "/calls/" + encodeURIComponent(data.next_call) : "/";
  }
  var form = document.getElementById("review-form");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var notes = {};
      items.forEach(function (li) {
        var n = li.querySelector(".v-note");
        if (n && n.value.trim() && verdicts[li.dataset.rule]) { notes[li.dataset.rule] = n.value.trim(); }
      });
      var body = {items: verdicts, notes: notes, comment: document.getElementById("comment").value,
                  version: data.version};
      if (manualEdited) { body.manual_score = Number(manualInput.value); }
      var msg = document.getElementById("review-msg");
      post("/api/calls/" + encodeURIComponent(data.call_id) + "/review", body).then(function (r) {
        if (r.status === 200) {
          msg.textContent = msg.dataset.ok || "✓";
          data.next_call = r.body.next_call;
          nextCall();
        } else {
          msg.textContent = r.body.error || ("HTTP " + r.status);
          msg.classList.add("error");
        }
      });
    });
  }

  // --- appeals ------------------------------------------------------------------------------
  var appeal = document.getElementById("appeal-form");
  if (appeal) {
    appeal.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var chosen = Array.prototype.slice.call(appeal.querySelectorAll('input[name="appeal-item"]:checked'))
        .map(function (c) { return c.value; });
      post("/api/calls/" + encodeURIComponent(data.call_id) + "/appeals",
           {items: chosen, reason: document.getElementById("appeal-reason").value}).then(function (r) {
        if (r.status === 200) { window.location.reload(); return; }
        var m = document.getElementById("appeal-msg");
        m.textContent = r.body.error || ("HTTP " + r.status); m.classList.add("error");
      });
    });
  }
  Array.prototype.slice.call(document.querySelectorAll(".decide-form")).forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var upheld = ev.submitter ? ev.submitter.value === "1" : false;
      var score = f.querySelector('input[name="score"]').value;
      var body = {upheld: upheld, comment: f.querySelector('textarea[name="comment"]').value};
      if (upheld && score !== "") { body.score = Number(score); }
      post("/api/appeals/" + f.dataset.id + "/decision", body).then(function (r) {
        if (r.status === 200) { window.location.reload(); return; }
        var m = f.querySelector(".msg"); m.textContent = r.body.error || ("HTTP " + r.status); m.classList.add("error");
      });
    });
  });

  // --- keyboard -----------------------------------------------------------------------------
  function jump(step) {
    if (!marks.length) { return; }
    markAt = (markAt + step + marks.length) % marks.length;
    var m = marks[markAt];
    seek(m.start, false);
    var li = document.querySelector('.item[data-rule="' + CSS.escape(m.rule_id) + '"]');
    if (li) { select(li); }
    var turn = document.getElementById("turn-" + m.turn);
    if (turn) { turn.scrollIntoView({block: "nearest"}); }
  }
  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (ev.key === " ") {
      ev.preventDefault();
      if (player) { if (player.paused) { player.play().catch(function () {}); } else { player.pause(); } }
    } else if (ev.key === "j") { jump(1); } else if (ev.key === "k") { jump(-1); }
    else if ((ev.key === "c" || ev.key === "x") && selected && form) {
      var v = ev.key === "c" ? "confirmed" : (selected.classList.contains("is-hit") ? "false_positive" : "missed");
      setVerdict(selected, v);
    } else if (ev.key === "n") { nextCall(); }
  });
})();
