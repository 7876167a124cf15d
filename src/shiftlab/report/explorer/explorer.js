/* shiftlab's shift explorer (docs/explorer.md): plain JavaScript, no library, nothing fetched.
   The data block #xp-data holds, packed as base64 of zlib-compressed uint8 arrays, the canvases
   [n, C, H, W] and, for every run shown, the top-1 class and round(255 p) at every position of
   [-r, r]^2 (row-major, dy outer). */
(function () {
  "use strict";
  var root = document.getElementById("xp");
  var data = JSON.parse(document.getElementById("xp-data").textContent);
  var R = data.radius, SIDE = 2 * R + 1, P = SIDE * SIDE;
  var C = data.canvas[0], H = data.canvas[1], W = data.canvas[2], N = data.labels.length;
  var SCALE = Math.max(1, Math.floor(288 / Math.max(H, W)));
  var CELL = Math.max(4, Math.floor(210 / SIDE));
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
  var state = {condition: data.default_condition, image: 0, dy: 0, dx: 0};
  var pixels = null, runs = {};
  var el = function (id) { return document.getElementById(id); };
  var stage = el("xp-canvas");

  function colour(k) {
    return k < PALETTE.length ? PALETTE[k] : "hsl(" + Math.round((k * 137.508) % 360) + ", 55%, 55%)";
  }

  function unpack(text) {
    var bin = atob(text), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  }

  function index(dy, dx) { return (dy + R) * SIDE + (dx + R); }
  function multiple(v, s) { return ((v % s) + s) % s === 0; }
  function chosenModels() {
    return Array.prototype.filter.call(document.querySelectorAll('input[name="xp-model"]'),
      function (box) { return box.checked; }).map(function (box) { return box.value; });
  }
  function run(model) { return runs[model + "|" + state.condition] || null; }
  function at(r, dy, dx) {
    var j = state.image * P + index(dy, dx);
    return {cls: r.classes[j], prob: r.confidence[j] / 255};
  }
  function className(k) { return k < data.classes.length ? data.classes[k] : String(k); }
  function strideOf() {
    var strides = chosenModels().map(run).filter(Boolean).map(function (r) { return r.stride; });
    return strides.length ? strides[0] : data.runs[0].stride;
  }

  function drawStage() {
    var ctx = stage.getContext("2d"), off = document.createElement("canvas");
    off.width = W; off.height = H;
    var octx = off.getContext("2d"), img = octx.createImageData(W, H), base = state.image * C * H * W;
    for (var y = 0; y < H; y++) {
      for (var x = 0; x < W; x++) {
        var o = (y * W + x) * 4;
        for (var c = 0; c < 3; c++) img.data[o + c] = pixels[base + (C === 3 ? c : 0) * H * W + y * W + x];
        img.data[o + 3] = 255;
      }
    }
    octx.putImageData(img, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, stage.width, stage.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, state.dx * SCALE, state.dy * SCALE, W * SCALE, H * SCALE);
    var box = inkBox(base);
    if (box) {
      ctx.strokeStyle = "rgba(120, 170, 255, 0.9)";
      ctx.setLineDash([5, 4]);
      ctx.strokeRect(box.x * SCALE + 0.5, box.y * SCALE + 0.5, box.w * SCALE - 1, box.h * SCALE - 1);
      ctx.setLineDash([]);
    }
  }

  function inkBox(base) {  // the bounding box of the image's non-zero pixels at (0, 0)
    var top = H, left = W, bottom = -1, right = -1;
    for (var c = 0; c < C; c++) {
      for (var y = 0; y < H; y++) {
        for (var x = 0; x < W; x++) {
          if (pixels[base + c * H * W + y * W + x] > 0) {
            top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
          }
        }
      }
    }
    return bottom < 0 ? null : {x: left, y: top, w: right - left + 1, h: bottom - top + 1};
  }

  function drawMap(canvas, r) {
    var ctx = canvas.getContext("2d"), s = r.stride;
    for (var dy = -R; dy <= R; dy++) {
      for (var dx = -R; dx <= R; dx++) {
        var x = (dx + R) * CELL, y = (dy + R) * CELL;
        ctx.fillStyle = colour(at(r, dy, dx).cls);
        ctx.fillRect(x, y, CELL, CELL);
        if (multiple(dy, s) && multiple(dx, s)) {
          ctx.beginPath();
          ctx.arc(x + CELL / 2, y + CELL / 2, CELL / 4, 0, 2 * Math.PI);
          ctx.fillStyle = "#fff"; ctx.fill();
          ctx.lineWidth = 1; ctx.strokeStyle = "#000"; ctx.stroke();
        }
      }
    }
    var cx = (state.dx + R) * CELL, cy = (state.dy + R) * CELL;
    ctx.lineWidth = 3; ctx.strokeStyle = "#000"; ctx.strokeRect(cx + 1.5, cy + 1.5, CELL - 3, CELL - 3);
    ctx.lineWidth = 1; ctx.strokeStyle = "#fff"; ctx.strokeRect(cx + 3.5, cy + 3.5, CELL - 7, CELL - 7);
  }

  function panel(model) {
    var r = run(model), box = document.createElement("div"), label = data.labels[state.image];
    var info = data.models.filter(function (m) { return m.id === model; })[0];
    box.className = "xp-panel";
    box.setAttribute("data-model", model);
    var h = document.createElement("h3");
    h.textContent = info ? info.name : model;
    box.appendChild(h);
    if (!r) {
      var none = document.createElement("p");
      none.textContent = "no explorer data under " + state.condition + " (not run, or run before the explorer)";
      box.appendChild(none);
      return {box: box, text: (info ? info.name : model) + ": no explorer data under " + state.condition};
    }
    var now = at(r, state.dy, state.dx), centre = at(r, 0, 0);
    var pred = document.createElement("p");
    pred.className = "xp-pred";
    pred.innerHTML = "class <b class=\"xp-class\"></b> · p = <b class=\"xp-prob\"></b>";
    pred.querySelector(".xp-class").textContent = className(now.cls);
    pred.querySelector(".xp-prob").textContent = now.prob.toFixed(3);
    box.appendChild(pred);
    var same = document.createElement("p");
    same.className = "xp-same";
    same.textContent = (now.cls === centre.cls ? "same class as at (0, 0)" : "changed: class " +
      className(centre.cls) + " at (0, 0)") + " · " + (now.cls === label ? "correct" : "wrong (label " +
      className(label) + ")");
    box.appendChild(same);
    var map = document.createElement("canvas");
    map.width = map.height = SIDE * CELL;
    map.setAttribute("role", "img");
    map.setAttribute("aria-label", "Class map of " + model + ": the predicted class at every position; " +
      "rows dy from " + (-R) + " to " + R + ", columns dx from " + (-R) + " to " + R);
    map.addEventListener("click", function (e) {
      var rect = map.getBoundingClientRect();
      var dx = Math.floor((e.clientX - rect.left) / rect.width * SIDE) - R;
      var dy = Math.floor((e.clientY - rect.top) / rect.height * SIDE) - R;
      move(dy, dx);
    });
    drawMap(map, r);
    box.appendChild(map);
    var text = (info ? info.name : model) + ": class " + className(now.cls) + ", p " + now.prob.toFixed(3) +
      (now.cls === centre.cls ? ", same as at the centre" : ", changed from " + className(centre.cls));
    return {box: box, text: text};
  }

  function render() {
    drawStage();
    var select = el("xp-condition");
    el("xp-condition-note").textContent = "Condition " + state.condition + ": " +
      select.options[select.selectedIndex].title + ".";
    var s = strideOf(), isMultiple = multiple(state.dy, s) && multiple(state.dx, s);
    var where = "(" + state.dy + ", " + state.dx + ")", line = el("xp-position");
    line.innerHTML = "position (dy, dx) = <b class=\"xp-at\"></b> <b class=\"xp-is\"></b> a multiple of S = " +
      "<span class=\"xp-s\"></span>";
    line.querySelector(".xp-at").textContent = where;
    line.querySelector(".xp-is").textContent = isMultiple ? "is" : "is not";
    line.querySelector(".xp-is").className = "xp-is " + (isMultiple ? "yes" : "no");
    line.querySelector(".xp-s").textContent = s;
    el("xp-dy").value = state.dy;
    el("xp-dx").value = state.dx;
    var panels = el("xp-panels"), texts = [];
    panels.textContent = "";
    chosenModels().forEach(function (m) {
      var p = panel(m);
      panels.appendChild(p.box);
      texts.push(p.text);
    });
    if (!texts.length) panels.textContent = "Choose at least one model.";
    el("xp-status").textContent = "Position " + where + ", " + (isMultiple ? "" : "not ") + "a multiple of S = " +
      s + ". " + texts.join(". ");
  }

  function move(dy, dx) {
    dy = Math.max(-R, Math.min(R, Math.round(dy)));
    dx = Math.max(-R, Math.min(R, Math.round(dx)));
    if (isNaN(dy) || isNaN(dx) || (dy === state.dy && dx === state.dx)) return;
    state.dy = dy; state.dx = dx;
    render();
  }

  function legend() {
    var box = el("xp-legend"), classes = document.createElement("p"), how = document.createElement("p");
    classes.appendChild(document.createTextNode("Classes:"));
    data.classes.forEach(function (name, k) {
      var sw = document.createElement("span");
      sw.className = "sw"; sw.style.background = colour(k);
      classes.appendChild(sw);
      classes.appendChild(document.createTextNode(name));
    });
    how.textContent = "Each class map: rows dy = " + (-R) + " (top) to " + R + ", columns dx = " + (-R) + " (left) to " +
      R + "; ringed: the positions that are multiples of the total stride S; outlined: the current position (click " +
      "a cell to go there). On the image, the dashed box is where the object is at (0, 0).";
    box.textContent = "";
    box.appendChild(classes);
    box.appendChild(how);
    var cond = document.createElement("p");
    cond.id = "xp-condition-note";
    box.appendChild(cond);
  }

  function wire() {
    state.condition = el("xp-condition").value;  // a reloaded page may keep the reader's choices
    state.image = parseInt(el("xp-image").value, 10);
    stage.width = W * SCALE; stage.height = H * SCALE;
    stage.style.width = stage.width + "px"; stage.style.height = stage.height + "px";
    var drag = null;
    stage.addEventListener("pointerdown", function (e) {
      drag = {x: e.clientX, y: e.clientY, dy: state.dy, dx: state.dx};
      stage.setPointerCapture(e.pointerId);
      stage.focus();
    });
    stage.addEventListener("pointermove", function (e) {
      if (!drag) return;
      var k = stage.getBoundingClientRect().width / stage.width * SCALE;
      move(drag.dy + (e.clientY - drag.y) / k, drag.dx + (e.clientX - drag.x) / k);
    });
    var stop = function () { drag = null; };
    stage.addEventListener("pointerup", stop);
    stage.addEventListener("pointercancel", stop);
    stage.addEventListener("keydown", function (e) {
      var step = e.shiftKey ? strideOf() : 1;
      var moves = {ArrowUp: [-step, 0], ArrowDown: [step, 0], ArrowLeft: [0, -step], ArrowRight: [0, step]};
      if (moves[e.key]) move(state.dy + moves[e.key][0], state.dx + moves[e.key][1]);
      else if (e.key === "Home") move(0, 0);
      else return;
      e.preventDefault();
    });
    ["xp-dy", "xp-dx"].forEach(function (id) {
      el(id).addEventListener("change", function () {
        move(parseInt(el("xp-dy").value, 10), parseInt(el("xp-dx").value, 10));
        el("xp-dy").value = state.dy; el("xp-dx").value = state.dx;
      });
    });
    el("xp-centre").addEventListener("click", function () { move(0, 0); });
    el("xp-condition").addEventListener("change", function () { state.condition = this.value; render(); });
    el("xp-image").addEventListener("change", function () { state.image = parseInt(this.value, 10); render(); });
    Array.prototype.forEach.call(document.querySelectorAll('input[name="xp-model"]'), function (box) {
      box.addEventListener("change", render);
    });
  }

  if (typeof DecompressionStream === "undefined") {
    root.textContent = "This browser cannot unpack the explorer's data (it lacks DecompressionStream, which " +
      "browsers have had since 2023).";
    return;
  }
  var jobs = [unpack(data.pixels).then(function (a) { pixels = a; })];
  data.runs.forEach(function (r) {
    jobs.push(Promise.all([unpack(r.classes), unpack(r.confidence)]).then(function (a) {
      runs[r.model + "|" + r.condition] = {stride: r.stride, classes: a[0], confidence: a[1]};
    }));
  });
  Promise.all(jobs).then(function () {
    if (pixels.length !== N * C * H * W) throw new Error("explorer: the canvases do not match their shape");
    legend();
    wire();
    render();
    root.setAttribute("data-ready", "true");
  });
})();
