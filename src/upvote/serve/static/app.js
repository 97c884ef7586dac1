// The page's only logic: send the story to POST /explain and show the answer.
const form = document.getElementById("story-form");
const $ = (id) => document.getElementById(id);

function percent(x) {
  return `${Math.round(x)}%`;
}

function showTokens(tokens) {
  const list = $("tokens");
  list.replaceChildren();
  const scale = Math.max(1e-9, ...tokens.map((t) => Math.abs(t.contribution)));
  for (const { token, contribution } of tokens) {
    const item = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = contribution >= 0 ? "bar up" : "bar down";
    bar.style.width = `${(60 * Math.abs(contribution)) / scale}%`;
    const label = document.createElement("span");
    label.className = "token";
    label.textContent = token;  // textContent, never innerHTML: titles are user input
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = (contribution >= 0 ? "+" : "") + contribution.toFixed(3);
    item.append(label, bar, value);
    list.append(item);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").hidden = true;
  $("submit").disabled = true;
  const story = { title: $("title").value };
  if ($("url").value.trim()) story.url = $("url").value.trim();
  if ($("author").value.trim()) story.by = $("author").value.trim();
  try {
    const response = await fetch("/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(story),
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
    showTokens(body.tokens);
    $("result").hidden = false;
  } catch (error) {
    $("error").textContent = `Could not predict: ${error.message}`;
    $("error").hidden = false;
  } finally {
    $("submit").disabled = false;
  }
});
