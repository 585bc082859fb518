// tinybnn explorer: draw a digit, send it to the server, show every layer's output and,
// for a clicked output of a binary layer, its XNOR-popcount computation.
// No libraries, no build step; the server is tinybnn/explorer/server.py.
"use strict";

const state = { input: null, layers: [], selected: null };
const $ = (id) => document.getElementById(id);

// --- decoding the server's arrays ---------------------------------------------------
// Bits come as base64 of numpy.packbits(bits, bitorder="little"): element k is bit k % 8
// of byte k / 8, 1 for +1 and 0 for -1.
function decodeBits(base64, count) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const bits = new Uint8Array(count);
  for (let k = 0; k < count; k++) bits[k] = (bytes[k >> 3] >> (k & 7)) & 1;
  return bits;
}

const product = (shape) => shape.reduce((a, b) => a * b, 1);

// An array of the server as {shape, get(k)} with values in [0, 1] for grey levels.
function levels(array) {
  const n = product(array.shape);
  if (array.kind === "bits") {
    const bits = decodeBits(array.bits, n);
    return { shape: array.shape, bits, level: (k) => bits[k] };
  }
  const span = array.max - array.min || 1;
  return { shape: array.shape, values: array.values, level: (k) => (array.values[k] - array.min) / span };
}

// The (tiles, height, width) view of a shape: (C, H, W) is C tiles; (H, W) one tile;
// a vector (D,) one near-square tile filled row by row.
function tiling(shape) {
  if (shape.length === 3) return [shape[0], shape[1], shape[2]];
  if (shape.length === 2) return [1, shape[0], shape[1]];
  const n = product(shape);
  const w = Math.ceil(Math.sqrt(n));
  return [1, Math.ceil(n / w), w];
}

// Paint tile t of a levels() array on a canvas; colour(k, level) may override a pixel.
function paintTile(canvas, data, t, colour) {
  const [, h, w] = tiling(data.shape);
  const n = product(data.shape);
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  const image = context.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    const k = t * h * w + p;
    let rgb = [235, 240, 245];  // beyond the end of a vector
    if (k < n) {
      const grey = Math.round(255 * data.level(k));
      rgb = (colour && colour(k, data.level(k))) || [grey, grey, grey];
    }
    image.data.set([...rgb, 255], 4 * p);
  }
  context.putImageData(image, 0, 0);
}

function tiles(data, className, colour, onClick) {
  const [count] = tiling(data.shape);
  const box = document.createElement("div");
  box.className = "tiles " + className;
  for (let t = 0; t < count; t++) {
    const canvas = document.createElement("canvas");
    paintTile(canvas, data, t, colour);
    canvas.title = data.shape.length === 3 ? `channel ${t}` : "";
    if (onClick) canvas.addEventListener("click", (event) => onClick(t, canvas, event));
    box.appendChild(canvas);
  }
  return box;
}

// --- the layers ---------------------------------------------------------------------------
function renderLayers() {
  const root = $("layers");
  root.textContent = "";
  for (const layer of state.layers) {
    const card = document.createElement("div");
    card.className = "panel layer";
    const title = document.createElement("h3");
    title.textContent = `${layer.index}. ${layer.type}`;
    const description = document.createElement("p");
    description.className = "hint";
    description.textContent = layer.description;
    card.append(title, description);
    layer.stages.forEach((stage, s) => {
      const data = levels(stage);
      const caption = document.createElement("p");
      caption.className = "stage";
      const kind = stage.kind === "bits" ? "bits, white +1, black \u22121" : "floats, black low, white high";
      caption.textContent = `${stage.title}: ${stage.shape.join("\u00d7")} (${kind})` +
        (stage.explainable ? " \u2014 click a pixel" : "");
      const selected = state.selected && state.selected.layer === layer.index && stage.explainable
        ? state.selected.flat : -1;
      const colour = (k) => (k === selected ? [230, 40, 40] : null);
      const onClick = stage.explainable ? (t, canvas, event) => pick(layer, stage, t, canvas, event) : null;
      const box = tiles(data, stage.explainable ? "clickable" : "", colour, onClick);
      if (stage.shape.length < 3) box.classList.add("single");
      card.append(caption, box);
    });
    root.appendChild(card);
  }
}

function pick(layer, stage, t, canvas, event) {
  const [, h, w] = tiling(stage.shape);
  const rect = canvas.getBoundingClientRect();
  const col = Math.min(w - 1, Math.floor((event.clientX - rect.left) / rect.width * w));
  const row = Math.min(h - 1, Math.floor((event.clientY - rect.top) / rect.height * h));
  if (stage.shape.length === 3) explainAt(layer.index, [t, row, col]);
  else if (row * w + col < product(stage.shape)) explainAt(layer.index, [row * w + col]);
}

// --- one output, spelled out --------------------------------------------------------------
async function explainAt(layer, position) {
  const shape = state.layers[layer].stages.find((s) => s.explainable).shape;
  const flat = position.length === 3 ? (position[0] * shape[1] + position[1]) * shape[2] + position[2] : position[0];
  state.selected = { layer, position, flat };
  const answer = await api("/api/explain", { image: state.input, layer, position });
  if (!answer) return;
  renderLayers();
  renderExplanation(answer);
}

const fmt = (x, digits = 6) => Number(x).toFixed(digits).replace(/\.?0+$/, "") || "0";

function renderExplanation(e) {
  const root = $("explain");
  root.textContent = "";
  const head = document.createElement("p");
  const where = e.layer_type === "PackedConvolution"
    ? `filter ${e.filter}, output row ${e.position[1]}, column ${e.position[2]}`
    : `unit ${e.filter}`;
  const strong = document.createElement("strong");
  strong.textContent = `Layer ${e.layer} (${e.layer_type}), ${where}`;
  head.appendChild(strong);
  root.appendChild(head);
  if (e.pool) {
    const pool = document.createElement("p");
    const values = e.pool.values.map((row) => row.map((v) => fmt(v, 3)).join(", ")).join(" | ");
    pool.textContent = `max pooling ${e.pool.kernel.join("\u00d7")}: the largest of [${values}] ` +
      `is the convolution's output at row ${e.conv_position[0]}, column ${e.conv_position[1]}, computed here:`;
    root.appendChild(pool);
  }
  const groups = document.createElement("div");
  groups.className = "bit-groups";
  const red = (k, level) => (level ? [220, 40, 40] : [255, 255, 255]);
  const names = e.layer_type === "PackedConvolution"
    ? ["input patch bits", "filter bits", "patch XOR filter"] : ["input bits", "weight bits", "input XOR weights"];
  [["patch_bits", null], ["filter_bits", null], ["xor_bits", red]].forEach(([key, colour], i) => {
    const group = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = `${names[i]} (${e[key].shape.join("\u00d7")})`;
    const box = tiles(levels(e[key]), "small" + (e[key].shape.length < 3 ? " single" : ""), colour, null);
    group.append(box, caption);
    groups.appendChild(group);
  });
  root.appendChild(groups);
  const sum = document.createElement("pre");
  const kText = e.shape.length === 3 ? `C\u00b7KH\u00b7KW = ${e.shape.join("\u00b7")} = ${e.K}` : `D = ${e.K}`;
  sum.textContent = [
    `K = ${kText}`,
    `popcount(XOR) = ${e.popcount} bits differ`,
    `dot = K \u2212 2 popcount = ${e.K} \u2212 2\u00b7${e.popcount} = ${e.dot}`,
    `y = dot \u00b7 scale + shift = ${e.dot} \u00b7 ${fmt(e.scale)} + (${fmt(e.shift)}) = ${fmt(e.result)}`,
  ].join("\n");
  sum.id = "explain-sum";
  root.appendChild(sum);
}

// --- talking to the server ------------------------------------------------------------------
async function api(path, body) {
  const options = body === undefined ? {} : body instanceof Blob
    ? { method: "POST", body, headers: { "Content-Type": body.type || "application/octet-stream" } }
    : { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } };
  try {
    const response = await fetch(path, options);
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    $("status").textContent = "";
    return answer;
  } catch (error) {
    $("status").textContent = `error: ${error.message}`;
    return null;
  }
}

async function predict(body) {
  const answer = await api("/api/predict", body);
  if (!answer) return;
  const input = answer.input;
  state.input = [];
  for (let r = 0; r < input.shape[0]; r++) state.input.push(input.values.slice(r * input.shape[1], (r + 1) * input.shape[1]));
  state.layers = answer.layers;
  paintTile($("input-view"), levels({ ...input, min: 0, max: 1 }), 0, null);
  $("predicted-class").textContent = answer.predicted;
  const list = $("top3");
  list.textContent = "";
  for (const entry of answer.top) {
    const item = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, Math.round(100 * entry.probability))}%`;
    item.append(`${entry.class}: ${(100 * entry.probability).toFixed(1)}%`, bar);
    list.appendChild(item);
  }
  if (!state.selected) state.selected = defaultSelection();
  if (state.selected) await explainAt(state.selected.layer, state.selected.position);
  else renderLayers();
  document.body.dataset.state = "ready";
}

// The first binary layer's strongest output: something worth looking at before any click.
function defaultSelection() {
  for (const layer of state.layers) {
    const stage = layer.stages.find((s) => s.explainable);
    if (!stage) continue;
    let best = 0;
    stage.values.forEach((v, k) => { if (v > stage.values[best]) best = k; });
    const [, h, w] = stage.shape.length === 3 ? stage.shape : [1, 1, 1];
    const position = stage.shape.length === 3 ? [Math.floor(best / (h * w)), Math.floor(best / w) % h, best % w] : [best];
    return { layer: layer.index, position };
  }
  return null;
}

// --- drawing ---------------------------------------------------------------------------------
const pad = $("pad");
const pen = pad.getContext("2d");

function clearPad() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(event) {
  const rect = pad.getBoundingClientRect();
  return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
}

let last = null;
pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  last = padPoint(event);
  stroke(last, last);
});
pad.addEventListener("pointermove", (event) => {
  if (!last) return;
  const point = padPoint(event);
  stroke(last, point);
  last = point;
});
const endStroke = () => {
  if (!last) return;
  last = null;
  pad.toBlob((blob) => predict(blob), "image/png");
};
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function stroke(from, to) {
  pen.strokeStyle = "#fff";
  pen.lineWidth = 20;
  pen.lineCap = pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(...from);
  pen.lineTo(...to);
  pen.stroke();
}

// A 28x28 image (rows of values in [0, 1]) drawn on the pad, enlarged.
function showOnPad(image) {
  const small = document.createElement("canvas");
  paintTile(small, { shape: [28, 28], level: (k) => image[Math.floor(k / 28)][k % 28] }, 0, null);
  pen.imageSmoothingEnabled = false;
  pen.drawImage(small, 0, 0, pad.width, pad.height);
}

async function loadDigit(index) {
  const digit = await api(`/api/digit?index=${index}`);
  if (!digit) return;
  $("digit-index").value = index;
  $("digit-line").textContent = `test digit ${digit.index}, labelled ${digit.label} (${digit.source})`;
  history.replaceState(null, "", `?digit=${digit.index}`);
  showOnPad(digit.image);
  await predict({ image: digit.image });
}

$("clear").addEventListener("click", () => { clearPad(); $("digit-line").textContent = ""; });
$("load-digit").addEventListener("click", () => loadDigit(Number($("digit-index").value) || 0));
$("file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  $("digit-line").textContent = file.name;
  clearPad();
  await predict(file);
});

async function start() {
  clearPad();
  const model = await api("/api/model");
  if (model) {
    $("model-line").textContent = `${model.file} (${model.kind}, ${model.layers.length} layers). ` +
      "Draw a digit with the mouse or a finger, or load a real test digit.";
    $("digit-index").max = model.digits.count - 1;
  }
  const digit = new URLSearchParams(location.search).get("digit");
  if (digit !== null && /^\d+$/.test(digit)) await loadDigit(Number(digit));
  else document.body.dataset.state = "ready";
}

start();
