"""The page at ``/``: drop or draw an image, or type a text, and see the model's answer.

One static HTML document (no external assets, so it works offline); it posts to /predict the
way any client does (multipart for images, JSON for texts and arrays). ``/#demo`` draws a digit
on the canvas and sends it, which is how the headless-Chromium test drives it.
"""

from __future__ import annotations

import html
import json
from typing import Any

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fathom: __TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}header small{color:#aab}
main{max-width:760px;margin:24px auto;padding:0 16px}
#drop{border:2px dashed #8894a8;border-radius:8px;padding:24px;text-align:center;background:#fff}
#drop.over{background:#e8eefc}canvas{background:#000;border-radius:4px;touch-action:none}
textarea{width:100%;min-height:90px;font:inherit}button{font:inherit;padding:6px 14px;margin:6px 4px 0 0}
table{border-collapse:collapse;margin-top:16px;width:100%;background:#fff}
td,th{border-bottom:1px solid #dde;padding:6px 10px;text-align:left}
.bar{background:#4a6cd4;height:10px;border-radius:3px}#message{color:#b00020;margin-top:10px}
</style></head><body>
<header><b>Fathom</b> · __TITLE__ <small>__FACTS__</small></header>
<main>
<section id="image-input" hidden>
 <div id="drop">Drop an image here, or <input type="file" id="file" accept="image/*">
 <p>or draw: <canvas id="canvas" width="168" height="168"></canvas></p>
 <button id="send-drawing">Predict the drawing</button><button id="clear">Clear</button></div>
</section>
<section id="text-input" hidden>
 <textarea id="text" placeholder="Type a text to classify"></textarea>
 <button id="send-text">Predict</button>
</section>
<section id="array-input" hidden>
 <textarea id="array" placeholder="Comma-separated values, one example per line"></textarea>
 <button id="send-array">Predict</button>
</section>
<div id="message"></div>
<table id="result" hidden><thead><tr><th>class</th><th>probability</th><th></th></tr></thead>
<tbody></tbody></table>
</main>
<script>
const INFO = __INFO__;
const $ = (id) => document.getElementById(id);
const show = (id) => { $(id).hidden = false; };
function render(answer) {
  const rows = $("result").querySelector("tbody");
  rows.innerHTML = "";
  const first = answer.predictions[0];
  const items = first.top || first.values.map((v, i) => ({class: "output " + i, probability: v}));
  for (const item of items) {
    const row = rows.insertRow();
    row.className = "prediction";
    row.insertCell().textContent = item.class;
    row.insertCell().textContent = Number(item.probability).toFixed(4);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = Math.max(0, Math.min(1, item.probability)) * 100 + "%";
    row.insertCell().appendChild(bar);
  }
  $("result").hidden = false;
  $("message").textContent = "";
  document.body.dataset.state = "answered";
}
async function send(body, headers) {
  $("message").textContent = "…";
  try {
    const response = await fetch("predict", {method: "POST", body: body, headers: headers || {}});
    const answer = await response.json();
    if (!response.ok) { $("message").textContent = answer.error; document.body.dataset.state = "refused"; return; }
    render(answer);
  } catch (fault) { $("message").textContent = String(fault); }
}
function sendFile(blob) { const form = new FormData(); form.append("file", blob, "image.png"); send(form); }
function sendJson(value) { send(JSON.stringify(value), {"Content-Type": "application/json"}); }
const canvas = $("canvas"), pen = canvas.getContext("2d");
function clearCanvas() { pen.fillStyle = "#000"; pen.fillRect(0, 0, canvas.width, canvas.height); }
function drawDemo() {
  clearCanvas(); pen.fillStyle = "#fff"; pen.font = "bold 130px sans-serif";
  pen.textAlign = "center"; pen.textBaseline = "middle"; pen.fillText("7", 84, 90);
}
let drawing = false;
canvas.onpointerdown = (e) => { drawing = true; pen.beginPath(); pen.moveTo(e.offsetX, e.offsetY); };
canvas.onpointermove = (e) => { if (!drawing) return; pen.strokeStyle = "#fff"; pen.lineWidth = 14;
  pen.lineCap = "round"; pen.lineTo(e.offsetX, e.offsetY); pen.stroke(); };
canvas.onpointerup = () => { drawing = false; };
$("clear").onclick = clearCanvas;
$("send-drawing").onclick = () => canvas.toBlob(sendFile, "image/png");
$("file").onchange = (e) => e.target.files[0] && sendFile(e.target.files[0]);
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files[0]) sendFile(e.dataTransfer.files[0]); };
$("send-text").onclick = () => sendJson({texts: [$("text").value]});
$("send-array").onclick = () => sendJson({inputs: $("array").value.trim().split("\\n")
  .map((line) => line.split(",").map(Number))});
clearCanvas();
if (INFO.input_kind === "image") show("image-input");
else if (INFO.input_kind === "text") show("text-input");
else show("array-input");
if (location.hash === "#demo" && INFO.input_kind === "image") { drawDemo(); canvas.toBlob(sendFile, "image/png"); }
if (location.hash.startsWith("#text=")) { $("text").value = decodeURIComponent(location.hash.slice(6)); $("send-text").click(); }
</script></body></html>
"""


def page_html(description: dict[str, Any]) -> str:
    """The page for a model described by ``ServedModel.describe()``."""
    facts = (
        f"{description['task']} · input {description['input_kind']} "
        f"{description['input_shape']} · {description['backend']} · sha256 "
        f"{description['sha256'][:12]}"
    )
    info = json.dumps(description).replace("<", "\\u003c")  # safe inside <script>
    return (
        PAGE.replace("__TITLE__", html.escape(description["run"]))
        .replace("__FACTS__", html.escape(facts))
        .replace("__INFO__", info)
    )
