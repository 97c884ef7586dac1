// The page's only logic: send the story to POST /explain and show the answer.
const form = document.getElementById("story-form");
const $ = (id) => document.getElementById(id);

function percent(x) {
  if (x > 0 && x < 1) return "<1%";
  if (x < 100 && x > 99) return ">99%";
  return `${Math.round(x)}%`;
}

// One list item per contribution: a label, a bar scaled to the largest, the signed value.
function showBars(listId, items) {
  const list = $(listId);
  list.replaceChildren();
  const scale = Math.max(1e-9, ...items.map((t) => Math.abs(t.contribution)));
  for (const { label, detail, contribution } of items) {
    const item = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = contribution >= 0 ? "bar up" : "bar down";
    bar.style.width = `${(60 * Math.abs(contribution)) / scale}%`;
    const name = document.createElement("span");
    name.className = "token";
    name.textContent = label; // textContent, never innerHTML: titles are user input
    if (detail) name.title = detail;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = (contribution >= 0 ? "+" : "") + contribution.toFixed(3);
    item.append(name, bar, value);
    if (detail) {
      const more = document.createElement("span");
      more.className = "detail muted";
      more.textContent = detail;
      item.append(more);
    }
    list.append(item);
  }
}

function readStory() {
  const story = { title: $("title").value };
  if ($("no-url").checked) story.url = null; // a text post: the model knows there is no url
  else if ($("url").value.trim()) story.url = $("url").value.trim();
  if ($("author").value.trim()) story.by = $("author").value.trim();
  if ($("time").value) story.time = `${$("time").value}:00Z`;
  return story;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").hidden = true;
  $("submit").disabled = true;
  try {
    const response = await fetch("/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(readStory()),
    });
    const body = await response.json();
    if (!response.ok) {
      const detail = Array.isArray(body.detail)
        ? body.detail.map((d) => `${d.loc.slice(-1)[0]}: ${d.msg}`).join("; ")
        : body.detail;
      throw new Error(detail || response.statusText);
    }
    const p = body.prediction;
    $("score").textContent = Math.round(p.predicted_score);
    $("p10").textContent = Math.round(p.p10);
    $("p90").textContent = Math.round(p.p90);
    $("percentile").textContent = percent(body.percentile);
    $("p100").textContent = percent(100 * p.p_reach_100);
    $("version").textContent = body.version;
    $("max-words").textContent = body.max_words_read;
    showBars("factors", body.factors.map((f) => ({ label: f.factor, detail: f.detail, contribution: f.contribution })));
    showBars("words", body.words.map((w) => ({ label: w.word, contribution: w.contribution })));
    $("result").hidden = false;
  } catch (error) {
    $("result").hidden = true; // never leave an older answer beside the error
    $("error").textContent = `Could not predict: ${error.message}`;
    $("error").hidden = false;
  } finally {
    $("submit").disabled = false;
  }
});
