// seqgen serve: one panel per loaded model, drawn from what /api/models says of it (the page names
// no task). Vanilla JS over the JSON API; text is always set with textContent, never as HTML.
"use strict";

const UPLOAD_GROUP = 8;  // photos per request: results arrive as each group is captioned

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function labelled(text, ...controls) {
  const label = el("label", `${text} `);
  label.append(...controls);
  return label;
}

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

const post = (task, body) => api(`/api/${task}`, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// Server-sent events read from a fetch (a refused request is then a readable JSON error):
// ``data: {"text": piece}`` per piece, ``event: error`` with ``{"error"}``, ``event: end``.
async function streamText(url, onPiece, signal) {
  const response = await fetch(url, { signal });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${response.status} ${response.statusText}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = (/^event: (.*)$/m.exec(block) || [])[1] || "message";
      const data = JSON.parse((/^data: (.*)$/m.exec(block) || [])[1] || "{}");
      if (event === "error") throw new Error(data.error);
      if (event === "end") return;
      onPiece(data.text);
    }
  }
}

// -- the page ------------------------------------------------------------------------------------
const PANELS = { prompt: promptPanel, text: textPanel, image: imagePanel };
const main = document.getElementById("panels");

api("/api/models").then(({ models }) => {
  const shown = models.filter((m) => m.panel);
  document.getElementById("models").textContent = `${models.length} model` +
    `${models.length === 1 ? "" : "s"} loaded`;
  if (!shown.length) main.append(el("p", "No model with a page panel is loaded.", "hint"));
  for (const model of shown) main.append(panel(model));
}).catch((err) => main.append(el("p", `Cannot list the models: ${err.message}`, "error")));

function panel(model) {
  const section = el("section", undefined, "panel");
  section.dataset.task = model.task;
  const pair = model.src && model.tgt ? ` (${model.src} \u2192 ${model.tgt})` : "";
  section.append(el("h2", model.panel.title + pair), el("p", about(model), "meta"));
  const build = PANELS[model.inputs];
  if (build) build(section, model);
  else section.append(el("p", `This page cannot send "${model.inputs}" inputs; use the API.`));
  return section;
}

function about(model) {
  const g = model.generation || {};
  const search = g.temperature ? `temperature ${g.temperature}`
    : g.beam > 1 ? `beam ${g.beam}` : "greedy";
  const size = model.parameters >= 1e6 ? `${(model.parameters / 1e6).toFixed(1)}M`
    : `${Math.round(model.parameters / 1e3)}k`;
  return [model.file, `${size} parameters`, search]
    .filter(Boolean).join(" \u00b7 ");
}

const buttonText = (model, fallback) =>
  model.verb ? model.verb[0].toUpperCase() + model.verb.slice(1) : fallback;

// -- a prompt: continued, streamed piece by piece -------------------------------------------------
function promptPanel(section, model) {
  const g = model.generation || {};
  const prompt = Object.assign(el("input"), { type: "text", value: model.panel.example || "",
    placeholder: model.panel.placeholder || "", maxLength: 2000 });
  const slider = Object.assign(el("input"), { type: "range", min: 0, max: 1.5, step: 0.05 });
  slider.value = g.temperature ?? 0.8;
  const shown = el("output", slider.value);
  slider.oninput = () => { shown.value = slider.value; };
  const greedy = g.beam > 1 ? `beam search (beam ${g.beam})` : "greedy decoding";
  const button = el("button", buttonText(model, "Generate"));
  const out = el("pre", undefined, "result");
  out.setAttribute("aria-live", "polite");
  let running = null;
  const run = async () => {
    if (running) running.abort();
    const mine = running = new AbortController();
    out.textContent = "";
    out.className = "result";
    const params = new URLSearchParams({ prompt: prompt.value });
    if (parseFloat(slider.value) > 0) params.set("temperature", slider.value);
    try {
      await streamText(`/api/${model.task}/stream?${params}`,
        (piece) => { out.textContent += piece; }, mine.signal);
    } catch (err) {
      if (err.name !== "AbortError") { out.textContent = err.message; out.className += " error"; }
    }
  };
  button.onclick = run;
  prompt.onkeydown = (e) => { if (e.key === "Enter") run(); };
  section.append(labelled("Prompt", prompt), labelled("Temperature", slider, shown),
    el("p", `Temperature 0: ${greedy}.`, "hint"), button, out);
}

// -- texts: one input per line, an ordered list of results, an attention heatmap ----------------
function textPanel(section, model) {
  const box = Object.assign(el("textarea"), { rows: 5, value: model.panel.example || "",
    placeholder: model.panel.placeholder || "One input per line" });
  const button = el("button", buttonText(model, "Run"));
  const list = el("ol", undefined, "results");
  const wantsHeatmap = model.panel.attention === "heatmap";
  const pick = el("select"), chooser = labelled("Attention for line", pick);
  const canvas = el("canvas", undefined, "heatmap");
  chooser.hidden = canvas.hidden = true;
  let results = [];
  const draw = () => {
    const chosen = results[parseInt(pick.value, 10)];
    canvas.hidden = !(chosen && chosen.attention);
    if (!canvas.hidden) drawHeatmap(canvas, chosen.source, chosen.symbols, chosen.attention);
  };
  pick.onchange = draw;
  button.onclick = async () => {
    const inputs = box.value.split("\n").filter((line) => line.trim());
    list.replaceChildren();
    pick.replaceChildren();
    results = [];
    if (!inputs.length) { list.append(el("li", "Type one input per line first.", "hint")); }
    else {
      button.disabled = true;
      try {
        ({ results } = await post(model.task, { inputs, attention: wantsHeatmap }));
      } catch (err) { list.append(el("li", err.message, "error")); }
      button.disabled = false;
    }
    results.forEach((r, i) => {
      list.append(resultItem(r));
      if (r.attention) pick.append(Object.assign(el("option", `${i + 1}`), { value: i }));
    });
    chooser.hidden = !pick.options.length;
    draw();
  };
  section.append(box, button, list);
  if (wantsHeatmap) section.append(chooser, canvas);
}

function resultItem(r) {
  const item = el("li");
  if (r.error) item.append(el("span", r.error, "error"));
  else if (r.text) item.textContent = r.text;
  else item.append(el("span", "(nothing generated)", "hint"));
  for (const w of r.warnings || []) item.append(el("div", w, "warning"));
  return item;
}

// -- images: dropped or chosen, downsized, captioned; each word's attention over the photo -------
function imagePanel(section, model) {
  const input = Object.assign(el("input"), { type: "file", accept: "image/*", multiple: true });
  const drop = el("label", "Drop photos here, or ", "drop");
  drop.append(input);
  const cards = el("div", undefined, "cards");
  const start = (files) => { if (files.length) caption(model, files, cards); };
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    start([...e.dataTransfer.files]);
  };
  input.onchange = () => start([...input.files]);
  section.append(drop, cards);
}

async function caption(model, files, box) {
  for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
  box.replaceChildren();
  const strip = model.panel.attention === "strip";
  const cards = files.map((file) => photoCard(file.name));
  box.append(...cards.map((c) => c.node));
  for (let i = 0; i < files.length; i += UPLOAD_GROUP) {
    const group = files.slice(i, i + UPLOAD_GROUP), mine = cards.slice(i, i + UPLOAD_GROUP);
    const photos = await Promise.all(group.map(shrinkPhoto));
    const form = new FormData();
    photos.forEach((photo, k) => {
      mine[k].show(photo);
      form.append("files", photo, group[k].name);
    });
    if (strip) form.append("attention", "true");
    try {
      const { results } = await api(`/api/${model.task}`, { method: "POST", body: form });
      results.forEach((r, k) => mine[k].fill(r));
    } catch (err) { mine.forEach((c) => c.fill({ error: err.message })); }
  }
}

function photoCard(name) {
  const node = el("figure", undefined, "card"), photo = el("div", undefined, "photo");
  const img = el("img"), overlay = el("canvas"), status = el("p", "working\u2026", "hint status");
  img.onerror = () => photo.remove();  // a file the browser cannot show: its name and error only
  photo.append(img, overlay);
  node.append(photo, el("figcaption", name, "filename"), status);
  let pinned = null;
  const show = (photoFile) => { img.src = URL.createObjectURL(photoFile); };
  const fill = (r) => {
    if (r.error) { status.replaceWith(el("p", r.error, "error")); return; }
    img.alt = r.text || "";
    const line = el("p", undefined, "words");
    const symbols = words(r.symbols || []);
    symbols.forEach((w, i) => {
      const span = el("span", w);
      if (r.attention && r.attention[i]) {
        const mark = () => drawOverlay(overlay, r.attention[i], r.grid);
        span.onmouseenter = mark;
        span.onmouseleave = () => drawOverlay(overlay, pinned && pinned.weights, r.grid);
        span.onclick = () => {
          if (pinned) pinned.span.classList.remove("pinned");
          pinned = pinned && pinned.span === span ? null : { span, weights: r.attention[i] };
          if (pinned) span.classList.add("pinned");
          drawOverlay(overlay, pinned && pinned.weights, r.grid);
        };
      }
      if (i && !/^[.,;:!?)]$/.test(w)) line.append(" ");  // no space before punctuation
      line.append(span);
    });
    status.replaceWith(symbols.length ? line : el("p", r.text || "(nothing generated)", "hint"));
    for (const w of r.warnings || []) node.append(el("p", w, "warning"));
  };
  return { node, show, fill };
}
