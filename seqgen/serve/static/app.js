// seqgen serve: the three panels, over the JSON API (no libraries). Text is always set with
// textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const words = (symbols) => symbols.map((s) => s.replace(/\u2581/g, "")).map((s) => s || "\u2423");

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// -- models ------------------------------------------------------------------------------------
api("/api/models").then(({ models }) => {
  $("models").textContent = models.map((m) => `${m.task} (${(m.parameters / 1e6).toFixed(1)}M)`)
    .join(", ");
  for (const task of ["headlines", "translation", "captioning"]) {
    if (!models.some((m) => m.task === task)) $(task).hidden = true;
  }
}).catch(() => {});

// -- headlines: streamed with EventSource ----------------------------------------------------------
let source = null;
$("temperature").oninput = () => { $("temperature-value").value = $("temperature").value; };
$("generate").onclick = () => {
  if (source) source.close();
  const out = $("headline");
  out.textContent = "";
  out.className = "result";
  const params = new URLSearchParams({ prompt: $("prompt").value });
  const t = parseFloat($("temperature").value);
  if (t > 0) params.set("temperature", t);
  source = new EventSource(`/api/generate/stream?${params}`);
  source.onmessage = (e) => { out.textContent += JSON.parse(e.data).text; };
  source.addEventListener("end", () => source.close());
  source.addEventListener("error", (e) => {
    source.close();
    if (e.data) { out.textContent = JSON.parse(e.data).error; out.className = "result error"; }
    else if (!out.textContent) {  // refused before streaming (a 422): ask for the message
      api("/api/generate", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt: $("prompt").value, temperature: t > 0 ? t : null }) })
        .catch((err) => { out.textContent = err.message; out.className = "result error"; });
    }
  });
};

// -- translation: results and an attention heatmap --------------------------------------------
let translations = [];
$("translate").onclick = async () => {
  const list = $("translations");
  list.replaceChildren();
  const texts = $("sources").value.split("\n");
  try {
    ({ translations } = await api("/api/translate", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ texts, attention: true }) }));
  } catch (err) { list.append(el("li", err.message, "error")); return; }
  const select = $("line");
  select.replaceChildren();
  translations.forEach((t, i) => {
    const item = el("li", t.error ? "" : t.text);
    if (t.error) item.append(el("span", t.error, "error"));
    for (const w of t.warnings) item.append(el("div", w, "warning"));
    list.append(item);
    if (t.attention) select.append(el("option", `${i + 1}`));
  });
  drawHeatmap();
};
$("line").onchange = drawHeatmap;

function drawHeatmap() {
  const canvas = $("heatmap"), ctx = canvas.getContext("2d");
  const chosen = translations.filter((t) => t.attention)[$("line").selectedIndex];
  if (!chosen) { canvas.width = canvas.height = 1; return; }
  const src = [...words(chosen.source), "</s>"];
  const tgt = [...words(chosen.target), "</s>"].slice(0, chosen.attention.length);
  const cell = 22, left = 90, top = 80;
  canvas.width = left + cell * src.length + 10;
  canvas.height = top + cell * tgt.length + 10;
  ctx.font = "12px system-ui";
  chosen.attention.slice(0, tgt.length).forEach((row, i) => row.slice(0, src.length)
    .forEach((w, j) => {
      ctx.fillStyle = `rgba(30, 90, 200, ${w})`;
      ctx.fillRect(left + j * cell, top + i * cell, cell - 1, cell - 1);
    }));
  ctx.fillStyle = "#222";
  ctx.textAlign = "right";
  tgt.forEach((w, i) => ctx.fillText(w, left - 4, top + i * cell + 15));
  src.forEach((w, j) => {
    ctx.save();
    ctx.translate(left + j * cell + 15, top - 4);
    ctx.rotate(-Math.PI / 3);
    ctx.textAlign = "left";
    ctx.fillText(w, 0, 0);
    ctx.restore();
  });
}

// -- captioning: upload, caption, attention on hover --------------------------------------------
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over");
  caption([...e.dataTransfer.files]); };
$("files").onchange = () => caption([...$("files").files]);

async function caption(files) {
  const box = $("captions");
  box.replaceChildren();
  if (!files.length) return;
  const form = new FormData();
  files.forEach((f) => form.append("files", f));
  form.append("attention", "true");
  let captions;
  try {
    ({ captions } = await api("/api/caption", { method: "POST", body: form }));
  } catch (err) { box.append(el("p", err.message, "error")); return; }
  captions.forEach((c, i) => box.append(captionCard(files[i], c)));
}

function captionCard(file, c) {
  const card = el("div");
  if (c.error) { card.append(el("p", c.error, "error")); return card; }
  const photo = el("div", undefined, "photo"), img = el("img"), overlay = el("canvas");
  img.src = URL.createObjectURL(file);
  img.alt = c.text;
  photo.append(img, overlay);
  const line = el("p", undefined, "words");
  c.words.forEach((w, i) => {
    const span = el("span", w.replace(/\u2581/g, ""));
    if (c.attention) {
      span.onmouseenter = () => drawOverlay(overlay, c.attention[i], c.grid);
      span.onmouseleave = () => overlay.getContext("2d").clearRect(0, 0, 9999, 9999);
    }
    line.append(span, " ");
  });
  card.append(photo, line);
  return card;
}

function drawOverlay(canvas, weights, side) {
  const small = document.createElement("canvas");
  small.width = small.height = side;
  // Attention over 49 cells is diffuse: stretch each word's weights to their own range and
  // square them, so the cells it leans on stand out and the rest of the photo stays clear.
  const cells = weights.slice(0, side * side);
  const low = Math.min(...cells), span = (Math.max(...cells) - low) || 1;
  const sctx = small.getContext("2d");
  cells.forEach((w, k) => {
    const strength = ((w - low) / span) ** 2;
    sctx.fillStyle = `rgba(255, 190, 0, ${0.65 * strength})`;
    sctx.fillRect(k % side, Math.floor(k / side), 1, 1);
  });
  canvas.width = 256; canvas.height = 256;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, 256, 256);
  ctx.drawImage(small, 0, 0, 256, 256);
}
