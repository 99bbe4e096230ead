// seqgen serve: what the page draws on canvases: an attention heatmap (output symbols x source
// symbols), one word's attention laid over a photo, and photos downsized before upload.
"use strict";

const PHOTO_SIDE = 1024;  // longest side of an uploaded photo, in pixels

// Symbols as words: the sentencepiece word mark dropped, a bare space shown as a visible one.
const words = (symbols) => symbols.map((s) => s.replace(/\u2581/g, "")).map((s) => s || "\u2423");

// A canvas of CSS size w x h, sharp on high-density screens; returns its 2D context.
function sized(canvas, w, h) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  canvas.style.width = `${w}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  return ctx;
}

// Rows: output symbols and the end; columns: source symbols and the end (weights in 0..1).
function drawHeatmap(canvas, source, symbols, grid) {
  const cols = [...words(source), "</s>"];
  const rows = [...words(symbols), "</s>"].slice(0, grid.length);
  const cell = Math.max(8, Math.min(24, Math.floor(480 / Math.max(cols.length, rows.length))));
  const font = Math.min(12, cell - 2);
  const longest = (labels) => Math.max(...labels.map((w) => w.length));
  const left = 12 + font * 0.6 * Math.min(14, longest(rows));
  const top = 12 + font * 0.55 * Math.min(14, longest(cols));
  const ctx = sized(canvas, left + cell * cols.length + 8, top + cell * rows.length + 8);
  rows.forEach((_, i) => cols.forEach((_, j) => {
    const w = (grid[i] || [])[j] || 0;
    ctx.fillStyle = `rgba(37, 99, 235, ${0.06 + 0.94 * w})`;
    ctx.fillRect(left + j * cell, top + i * cell, cell - 1, cell - 1);
  }));
  ctx.font = `${font}px system-ui, sans-serif`;
  ctx.fillStyle = "#222";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  rows.forEach((w, i) => ctx.fillText(w.slice(0, 14), left - 4, top + (i + 0.5) * cell));
  ctx.textAlign = "left";
  cols.forEach((w, j) => {
    ctx.save();
    ctx.translate(left + (j + 0.5) * cell, top - 4);
    ctx.rotate(-Math.PI / 3);
    ctx.fillText(w.slice(0, 14), 0, 0);
    ctx.restore();
  });
}

// One word's attention over a side x side grid of image cells, laid over the photo (``canvas``
// covers it). Attention over many cells is diffuse: each word's weights are stretched to their own
// range and squared, so the cells it leans on stand out and the rest of the photo stays clear.
function drawOverlay(canvas, weights, side) {
  const ctx = canvas.getContext("2d");
  canvas.width = canvas.height = 256;
  ctx.clearRect(0, 0, 256, 256);
  if (!weights || !side) return;
  const small = document.createElement("canvas");
  small.width = small.height = side;
  const cells = weights.slice(0, side * side), sctx = small.getContext("2d");
  const low = Math.min(...cells), span = (Math.max(...cells) - low) || 1;
  cells.forEach((w, k) => {
    sctx.fillStyle = `rgba(255, 190, 0, ${0.65 * ((w - low) / span) ** 2})`;
    sctx.fillRect(k % side, Math.floor(k / side), 1, 1);
  });
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, 256, 256);
}

// A photo as the server should get it: drawn upright (EXIF orientation applied), its longest
// side at most PHOTO_SIDE, as a JPEG; a file the browser cannot decode (or an SVG, which the
// server does not read) is returned as it is, so the server names its error.
async function shrinkPhoto(file) {
  if (file.type === "image/svg+xml") return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return file;
  }
  const scale = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";  // transparent parts on white, as the server would composite them
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.9));
  return blob ? new File([blob], file.name, { type: "image/jpeg" }) : file;
}
