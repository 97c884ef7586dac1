// The jobs page: every call carries the token (kept in this browser's localStorage only);
// the list polls while a job is not finished. No framework, no build step.
"use strict";

const API = "v1/embeddings";
const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("upvote-jobs-token") || "";
let timer = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function call(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${token}` }, options.headers || {});
  const response = await fetch(`${API}${path}`, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail
        : body.detail.map((e) => `${e.loc.filter((p) => p !== "body").join(".")}: ${e.msg}`).join("\n");
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(detail);
  }
  return response;
}

function options() {
  const chosen = { model: $("model").value };
  for (const name of ["dim", "window", "epochs", "min_count"]) {
    if ($(name).value !== "") chosen[name] = Number($(name).value);
  }
  if ($("column").value.trim()) chosen.column = $("column").value.trim();
  const sets = [...document.querySelectorAll("input[name=evaluation]:checked")].map((e) => e.value);
  if (sets.length) chosen.evaluation = sets;
  return chosen;
}

async function submitJob(event) {
  event.preventDefault();
  showError("");
  try {
    const file = $("file").files[0];
    if (file) {
      const form = new FormData();
      form.append("file", file, file.name);
      form.append("options", JSON.stringify(options()));
      await call("/jobs", { method: "POST", body: form });
    } else if ($("url").value) {
      await call("/jobs", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ url: $("url").value, options: options() }),
      });
    } else {
      throw new Error("give a corpus URL or choose a file");
    }
    $("job-form").reset();
    await refresh();
  } catch (error) {
    showError(error.message);
  }
}

function seconds(s) {
  if (s == null) return "";
  return s >= 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`;
}

function row(job) {
  const tr = document.createElement("tr");
  tr.dataset.id = job.id;
  tr.className = `job state-${job.state}`;
  const p = job.progress || {};
  const cells = [
    `#${job.id}`,
    job.corpus,
    job.state,
  ];
  for (const [i, text] of cells.entries()) {
    const td = document.createElement("td");
    td.textContent = text;
    td.className = ["id", "corpus", "state"][i];
    tr.appendChild(td);
  }
  const progress = document.createElement("td");
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = p.fraction || 0;
  progress.appendChild(bar);
  const detail = document.createElement("div");
  detail.className = "detail";
  const parts = [];
  if (p.fraction != null) parts.push(`${Math.round(p.fraction * 100)}%`);
  if (p.words_per_s) parts.push(`${Math.round(p.words_per_s).toLocaleString("en")} words/s`);
  if (p.loss != null) parts.push(`loss ${p.loss.toFixed(3)}`);
  if (!FINAL.has(job.state) && p.eta_s != null) parts.push(`${seconds(p.eta_s)} left`);
  if (job.duration_s != null) parts.push(`took ${seconds(job.duration_s)}`);
  if (job.error) parts.push(job.error);
  detail.textContent = parts.join(" · ");
  progress.appendChild(detail);
  tr.appendChild(progress);
  const actions = document.createElement("td");
  const button = (label, cls, handler) => {
    const b = document.createElement("button");
    b.textContent = label;
    b.className = `small ${cls}`;
    b.type = "button";
    b.addEventListener("click", () => handler(job).catch((e) => showError(e.message)));
    actions.appendChild(b);
  };
  if (job.state === "succeeded") {
    button("vectors.txt", "download-txt", (j) => download(j, "txt"));
    button("vectors.bin", "download-bin", (j) => download(j, "bin"));
  } else if (!FINAL.has(job.state)) {
    button("cancel", "cancel", (j) => call(`/jobs/${j.id}/cancel`, { method: "POST" }).then(refresh));
  }
  button("delete", "delete", (j) => call(`/jobs/${j.id}`, { method: "DELETE" }).then(refresh));
  tr.appendChild(actions);
  return tr;
}

async function download(job, format) {
  const response = await call(`/jobs/${job.id}/vectors?format=${format}`);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `job-${job.id}-vectors.${format}`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

async function refresh() {
  clearTimeout(timer);
  if (!token) return;
  try {
    const list = await (await call("/jobs?limit=50")).json();
    const body = $("jobs").querySelector("tbody");
    body.replaceChildren(...list.jobs.map(row));
    if (list.jobs.some((job) => !FINAL.has(job.state))) timer = setTimeout(refresh, 1000);
  } catch (error) {
    showError(error.message);
  }
}

async function similar(event) {
  event.preventDefault();
  showError("");
  const word = encodeURIComponent($("similar-word").value.trim());
  try {
    const found = await (await call(`/jobs/${$("similar-job").value}/similar?word=${word}&topn=10`)).json();
    $("similar").replaceChildren(...found.similar.map((n) => {
      const li = document.createElement("li");
      li.textContent = `${n.word} (${n.similarity.toFixed(3)})`;
      return li;
    }));
  } catch (error) {
    showError(error.message);
  }
}

$("token").value = token;
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  localStorage.setItem("upvote-jobs-token", token);
  showError("");
  refresh();
});
$("job-form").addEventListener("submit", submitJob);
$("similar-form").addEventListener("submit", similar);
refresh();
