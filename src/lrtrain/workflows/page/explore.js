// lrtrain explore: SGD on the least-squares quadratic, recomputed in the browser on every change.
// Full batch: the exact iteration, mode by mode in H's eigenbasis (PyTorch's SGD: buffer
// b' = μb + g, heavy ball θ' = θ − ηb', Nesterov θ' = θ − η(g + μb'), weight decay g += wd·θ).
// Mini-batches: the mean and second moment of the error (lrtrain.minibatch, docs/mathematics.md).
"use strict";

const DATA = JSON.parse(document.getElementById("lrtrain-data").textContent);
const P = DATA.theta_star.length;
const LAMBDA = DATA.eigenvalues.map((l) => l + DATA.weight_decay); // the optimizer's curvatures
const V = DATA.eigenvectors; // V[row][mode]
const DIVERGED_FACTOR = 1e6; // training's guard: stop when the loss passes 10⁶ × its start
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ linear algebra (small, dense)
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const toModes = (theta, origin) =>
  V[0].map((_, k) => V.reduce((s, row, r) => s + row[k] * (theta[r] - origin[r]), 0));
const fromModes = (c, origin) =>
  origin.map((o, r) => o + V[r].reduce((s, v, k) => s + v * c[k], 0));

// ------------------------------------------------------------------ the theory's limits
// lrtrain.analysis.lr_limits: each mode's recurrence z² − (1+μ−a)z + μ (heavy ball) or
// z² − (1+μ)(1−a)z + μ(1−a) (Nesterov), a = ηλ.
function limits(mu, nesterov) {
  const lamMax = Math.max(...LAMBDA),
    lamMin = Math.max(Math.min(...LAMBDA), 0);
  const critical = nesterov ? (2 * (1 + mu)) / (1 + 2 * mu) : 2 * (1 + mu);
  const monotone = nesterov ? ((1 - mu) / (1 + mu)) ** 2 : (1 - Math.sqrt(mu)) ** 2;
  return {
    monotone: monotone / lamMax,
    critical: critical / lamMax,
    optimal: 2 / (lamMin + lamMax),
    lamMax,
  };
}

// The largest |root| of a mode's recurrence: its error's factor per step.
function modeRate(lam, s) {
  const a = s.lr * lam,
    mu = s.momentum;
  const [b, c] = s.nesterov ? [(1 + mu) * (1 - a), mu * (1 - a)] : [1 + mu - a, mu];
  const disc = b * b - 4 * c;
  if (disc < 0) return Math.sqrt(c);
  const r = Math.sqrt(disc);
  return Math.max(Math.abs((b + r) / 2), Math.abs((b - r) / 2));
}

// ------------------------------------------------------------------ full batch: exact iteration
function fullBatch(s) {
  const target = DATA.target_theta;
  const offset = toModes(target, DATA.theta_star); // the ridge target's error about θ*
  let e = toModes(DATA.theta0, target);
  const buf = new Float64Array(P);
  const lossOf = (c) =>
    DATA.loss_star +
    0.5 * c.reduce((sum, x, i) => sum + DATA.eigenvalues[i] * (x + offset[i]) ** 2, 0);
  const errors = [Float64Array.from(e)],
    losses = [lossOf(e)];
  let stopped = null;
  for (let t = 1; t <= s.steps; t++) {
    const next = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      let g = LAMBDA[i] * e[i];
      buf[i] = t === 1 ? g : s.momentum * buf[i] + g;
      if (s.nesterov) g += s.momentum * buf[i];
      else if (s.momentum) g = buf[i];
      next[i] = e[i] - s.lr * g;
    }
    e = next;
    const loss = lossOf(e);
    errors.push(Float64Array.from(e));
    losses.push(loss);
    if (!Number.isFinite(loss) || loss > DIVERGED_FACTOR * losses[0]) {
      stopped = t;
      break;
    }
  }
  return { errors, losses, offset, stopped };
}

// lrtrain.analysis.observed_verdict, read off the exact path along H's top eigenvector.
function observedVerdict(losses, errors, stopped) {
  const last = losses[losses.length - 1];
  if (stopped !== null || !Number.isFinite(last) || (losses.length > 1 && last > losses[0]))
    return "diverged";
  const top = P - 1,
    du = [];
  for (let t = 1; t < errors.length; t++) du.push(errors[t][top] - errors[t - 1][top]);
  if (du.length < 2) return "monotone";
  const biggest = Math.max(...du.map(Math.abs));
  let pairs = 0,
    flips = 0;
  for (let t = 1; t < du.length; t++) {
    if (Math.abs(du[t]) > 1e-4 * biggest && Math.abs(du[t - 1]) > 1e-4 * biggest) {
      pairs++;
      if (Math.sign(du[t]) !== Math.sign(du[t - 1])) flips++;
    }
  }
  return pairs && flips > Math.floor(pairs / 2) ? "oscillating" : "monotone";
}

// ------------------------------------------------------------------ mini-batches: E[L_t]
// p × p row-major products into a buffer: out = a·b (out is neither a nor b).
function mm(a, b, out, p) {
  out.fill(0);
  for (let i = 0; i < p; i++)
    for (let l = 0; l < p; l++) {
      const x = a[i * p + l];
      if (x !== 0) for (let j = 0; j < p; j++) out[i * p + j] += x * b[l * p + j];
    }
  return out;
}

// The error's mean and second moment about the reference θ_r, one step at a time
// (lrtrain.minibatch: _Step.second and _Step.forcing), in blocks: the state u = (e, buffer)
// has second moment U = [[S, C], [Cᵀ, B]] and one step is e' = e − a·buffer − c·ḡ,
// buffer' = μ·buffer + ḡ (a = ημ and c = η for heavy ball; a = ημ², c = η(1 + μ) for Nesterov).
// With M1 = H'(S − aC), M2 = H'C and K = E[(ḡ)(ḡ)ᵀ]'s part (F(S)/B + (1 − 1/B)H'SH' + noise):
//   S' = S − a(C + Cᵀ) + a²B − c(M1 + M1ᵀ) + c²K,   C' = μ(C − aB) − cμM2 + M1ᵀ − cK,
//   B' = μ²B + μ(M2 + M2ᵀ) + K.
function miniBatch(s, steps) {
  const mb = DATA.minibatch,
    p = P,
    pp = p * p,
    wd = DATA.weight_decay,
    invB = 1 / s.batch;
  const F = Float64Array.from(mb.fourth),
    G = Float64Array.from(mb.third);
  const H = Float64Array.from(mb.hessian.flat()),
    ref = mb.reference,
    Hd = H.slice();
  const Qd = Float64Array.from(mb.noise);
  for (let i = 0; i < p; i++) {
    Hd[i * p + i] += wd;
    for (let j = 0; j < p; j++) Qd[i * p + j] -= wd * wd * ref[i] * ref[j];
  }
  const mu = s.momentum;
  const [a, c] = s.nesterov ? [s.lr * mu * mu, s.lr * (1 + mu)] : [s.lr * mu, s.lr];
  const delta = ref.map((r, i) => r - DATA.theta_star[i]);
  const hDelta = delta.map((_, i) => delta.reduce((sum, x, j) => sum + H[i * p + j] * x, 0));
  const biasTerm = dot(hDelta, delta);
  let e = Float64Array.from(DATA.theta0, (x, i) => x - ref[i]),
    buf = new Float64Array(p);
  let S = new Float64Array(pp),
    C = new Float64Array(pp),
    B = new Float64Array(pp);
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) S[i * p + j] = e[i] * e[j];
  const [HS, SH, T, HSH, K, M1, M2, SaC] = Array.from({ length: 8 }, () => new Float64Array(pp));
  const lossOf = () => {
    let tr = 0;
    for (let k = 0; k < pp; k++) tr += H[k] * S[k]; // tr(HS), both symmetric
    return DATA.loss_star + 0.5 * (tr + 2 * dot(hDelta, e) + biasTerm);
  };
  const losses = [lossOf()],
    rms = [modeRms(S)];
  for (let t = 1; t <= steps; t++) {
    // K: the batch's mean gradient's second moment about its mean
    const hm = new Float64Array(p);
    for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) hm[i] += H[i * p + j] * e[j];
    if (wd) {
      mm(H, S, HS, p);
      mm(S, H, SH, p);
    }
    mm(mm(Hd, S, T, p), Hd, HSH, p);
    for (let i = 0; i < p; i++)
      for (let j = 0; j < p; j++) {
        const k = i * p + j,
          kt = j * p + i;
        let fourth = 0,
          gk = 0,
          gt = 0;
        for (let l = 0; l < pp; l++) fourth += F[k * pp + l] * S[l];
        for (let l = 0; l < p; l++) {
          gk += G[k * p + l] * e[l];
          gt += G[kt * p + l] * e[l];
        }
        if (wd) fourth += wd * (HS[k] + SH[k]) + wd * wd * S[k];
        gk += wd * hm[i] * ref[j];
        gt += wd * hm[j] * ref[i];
        K[k] = invB * fourth + (1 - invB) * HSH[k] + invB * (gk + gt + Qd[k]);
      }
    for (let k = 0; k < pp; k++) SaC[k] = S[k] - a * C[k];
    mm(Hd, SaC, M1, p);
    mm(Hd, C, M2, p);
    const S2 = new Float64Array(pp),
      C2 = new Float64Array(pp),
      B2 = new Float64Array(pp);
    for (let i = 0; i < p; i++)
      for (let j = 0; j < p; j++) {
        const k = i * p + j,
          kt = j * p + i;
        S2[k] = S[k] - a * (C[k] + C[kt]) + a * a * B[k] - c * (M1[k] + M1[kt]) + c * c * K[k];
        C2[k] = mu * (C[k] - a * B[k]) - c * mu * M2[k] + M1[kt] - c * K[k];
        B2[k] = mu * mu * B[k] + mu * (M2[k] + M2[kt]) + K[k];
      }
    [S, C, B] = [S2, C2, B2];
    // the mean: e' = e − a·buffer − c·H'e, buffer' = μ·buffer + H'e
    const pull = new Float64Array(p);
    for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) pull[i] += Hd[i * p + j] * e[j];
    e = e.map((x, i) => x - a * buf[i] - c * pull[i]);
    buf = buf.map((x, i) => mu * x + pull[i]);
    const loss = lossOf();
    losses.push(loss);
    rms.push(modeRms(S));
    if (!Number.isFinite(loss) || loss > DIVERGED_FACTOR * losses[0]) break;
  }
  return { losses, rms };
}

// √(v_iᵀ S v_i) for every eigen-direction: the RMS error along each mode.
function modeRms(S) {
  return V[0].map((_, k) => {
    let s = 0;
    for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) s += V[i][k] * S[i * P + j] * V[j][k];
    return Math.sqrt(Math.max(s, 0));
  });
}

function msCritical(s) {
  if (!DATA.minibatch || s.batch === null) return null;
  const v = DATA.minibatch.critical[`${s.batch}|${+s.momentum.toFixed(4)}|${s.nesterov ? 1 : 0}`];
  return v === undefined ? undefined : v;
}

// ------------------------------------------------------------------ state and the URL fragment
const state = { ...DATA.defaults, modes: [0, Math.max(P - 1, 0)] };
const lim0 = limits(0, false);
const LR_RANGE = [Math.log10(lim0.critical) - 3, Math.log10(lim0.critical * 2.5)];

// A link names a view: what it leaves out is the config's own setting.
function readFragment() {
  Object.assign(state, DATA.defaults, { modes: [0, Math.max(P - 1, 0)] });
  const f = new URLSearchParams(location.hash.slice(1));
  const num = (k, lo, hi) => {
    const v = Number(f.get(k));
    return f.has(k) && Number.isFinite(v) && v >= lo && v <= hi ? v : undefined;
  };
  state.lr = num("lr", Number.MIN_VALUE, Infinity) ?? state.lr; // a rate of 0 would not move
  state.momentum = num("momentum", 0, 0.999) ?? state.momentum;
  if (f.has("nesterov")) state.nesterov = ["1", "true"].includes(f.get("nesterov"));
  const steps = num("steps", 1, DATA.max_steps);
  if (steps !== undefined) state.steps = Math.round(steps);
  if (f.has("batch")) {
    const b = f.get("batch") === "full" ? null : Number(f.get("batch"));
    if (DATA.batches.includes(b)) state.batch = b;
  }
  if (f.has("modes")) {
    const m = f.get("modes").split(",").map(Number);
    if (m.length === 2 && m.every((k) => Number.isInteger(k) && k >= 0 && k < P) && m[0] !== m[1])
      state.modes = m;
  }
}

// Written by hand, not URLSearchParams: numbers and words only, and "modes=0,3" stays readable.
function writeFragment() {
  const f = [
    `lr=${state.lr}`,
    `momentum=${state.momentum}`,
    `nesterov=${state.nesterov ? 1 : 0}`,
    `steps=${state.steps}`,
    `batch=${state.batch === null ? "full" : state.batch}`,
  ];
  if (P > 2) f.push(`modes=${state.modes.join(",")}`);
  history.replaceState(null, "", "#" + f.join("&"));
}

// ------------------------------------------------------------------ drawing
const fmt = (x) =>
  (Math.abs(x) >= 1e5 || (Math.abs(x) < 1e-3 && x !== 0)
    ? x.toExponential(3)
    : +x.toPrecision(5)
  ).toString();
const STATIC = { displayModeBar: false, responsive: true };
const FRAME = { t: 40, r: 90, l: 60, b: 50 }; // fixed: the two contour layers must line up
const frameLayout = () => ({ margin: FRAME, showlegend: true, xaxis: {}, yaxis: {} });
const title = (text, y) => ({
  text,
  xref: "paper",
  yref: "paper",
  x: 0.5,
  y,
  xanchor: "center",
  yanchor: "bottom",
  showarrow: false,
  font: { size: 13 },
});
let drawnView = null;

function drawContour(v, contour) {
  if (drawnView === v.key) return;
  drawnView = v.key;
  const axis = (range, text) => ({ range, title: { text }, fixedrange: true, automargin: false });
  Plotly.react(
    "contour-bg",
    [contour],
    {
      ...frameLayout(),
      showlegend: false,
      title: { text: "loss contours and the descent path" },
      xaxis: axis(contour.range[0], v.names[0]),
      yaxis: axis(contour.range[1], v.names[1]),
    },
    { staticPlot: true, responsive: true },
  );
}
const contourCache = {};

function view() {
  // p = 2: the (w, b) plane itself; otherwise the plane through θ* of two eigen-directions
  if (P === 2) {
    const to = (c, offset) =>
      fromModes(
        c.map((x, k) => x + offset[k]),
        DATA.theta_star,
      );
    return { names: DATA.parameters, point: to, key: "wb" };
  }
  const [i, j] = state.modes;
  const name = (k) => `v${k} (λ=${fmt(DATA.eigenvalues[k])})`;
  return {
    names: [name(i), name(j)],
    point: (c, offset) => [c[i] + offset[i], c[j] + offset[j]],
    key: `${i},${j}`,
  };
}

// The frame of a view: θ₀, θ*, the target and the config's own path near them (lrtrain's
// contour figures frame the same way), fixed while the sliders move so paths compare.
function contourTrace(v, offset) {
  if (contourCache[v.key]) return contourCache[v.key];
  const base = fullBatch({ ...DATA.defaults, steps: Math.min(DATA.defaults.steps, 2000) });
  const star = v.point(new Float64Array(P), new Float64Array(P));
  const path = base.errors.map((c) => v.point(c, offset));
  const reach = 3 * Math.max(Math.hypot(path[0][0] - star[0], path[0][1] - star[1]), 1e-12);
  const near = path.filter((q) => Math.hypot(q[0] - star[0], q[1] - star[1]) <= reach);
  const points = [...near, star, v.point(new Float64Array(P), offset)];
  const lo = [0, 1].map((a) => Math.min(...points.map((q) => q[a])));
  const hi = [0, 1].map((a) => Math.max(...points.map((q) => q[a])));
  const raw = [0, 1].map((a) => Math.max(hi[a] - lo[a], 1e-9 * Math.max(Math.abs(hi[a]), 1)));
  // an axis the points barely spread along (under a tenth of the other's span: a centred
  // target's bias never moves) is widened to show the level sets, as plots.contours._frame
  // does: to half the other's span, times how much further they reach along it (the plane's
  // curvatures, exact second differences of the quadratic), never beyond the other's span
  const curve = [
    planeGap(v, star[0] + 1, star[1]) + planeGap(v, star[0] - 1, star[1]),
    planeGap(v, star[0], star[1] + 1) + planeGap(v, star[0], star[1] - 1),
  ];
  const span = [0, 1].map((a) => {
    const other = raw[1 - a];
    let floor = 0.05 * other;
    if (Math.min(...curve) > 0 && raw[a] < 0.1 * other) {
      const reach = Math.sqrt(curve[1 - a] / curve[a]);
      floor = Math.max(floor, Math.min(1, 0.5 * reach) * other);
    }
    return Math.max(raw[a], floor);
  });
  const mid = [0, 1].map((a) => (lo[a] + hi[a]) / 2);
  const range = [0, 1].map((a) => [mid[a] - 0.62 * span[a], mid[a] + 0.62 * span[a]]);
  const n = 90,
    xs = [],
    ys = [],
    z = [];
  for (let k = 0; k < n; k++) {
    xs.push(range[0][0] + ((range[0][1] - range[0][0]) * k) / (n - 1));
    ys.push(range[1][0] + ((range[1][1] - range[1][0]) * k) / (n - 1));
  }
  for (const y of ys) z.push(xs.map((x) => Math.log10(Math.max(planeGap(v, x, y), 1e-300))));
  contourCache[v.key] = {
    type: "contour",
    x: xs,
    y: ys,
    z,
    colorscale: "Viridis",
    reversescale: true,
    showscale: true,
    ncontours: 24,
    contours: { coloring: "heatmap" },
    colorbar: { title: { text: "log₁₀(L − L*)", side: "right" }, thickness: 12, x: 1.01, xpad: 4 },
    hoverinfo: "skip",
    name: "loss",
    range,
  };
  return contourCache[v.key];
}

function planeGap(v, x, y) {
  if (P === 2) {
    const c = toModes([x, y], DATA.theta_star);
    return 0.5 * (DATA.eigenvalues[0] * c[0] ** 2 + DATA.eigenvalues[1] * c[1] ** 2);
  }
  const [i, j] = state.modes;
  return 0.5 * (DATA.eigenvalues[i] * x * x + DATA.eigenvalues[j] * y * y);
}

function thin(n, most = 1500) {
  const stride = Math.max(1, Math.ceil(n / most)),
    idx = [];
  for (let t = 0; t < n; t += stride) idx.push(t);
  if (idx[idx.length - 1] !== n - 1) idx.push(n - 1);
  return idx;
}

async function draw() {
  const started = performance.now();
  const s = state,
    lim = limits(s.momentum, s.nesterov);
  const run = fullBatch(s);
  const mini = s.batch !== null && DATA.minibatch ? miniBatch(s, s.steps) : null;
  const v = view(),
    contour = contourTrace(v, run.offset);
  const idx = thin(run.errors.length, 600); // SVG cost grows with points: 600 show any path
  const pts = idx.map((t) => v.point(run.errors[t], run.offset));
  // gradient flow θ(s) at s = η t / (1 − μ): each mode decays as e^(−λ s)
  const flowIdx = thin(run.errors.length, 300);
  const flow = flowIdx.map((t) => {
    const time = (s.lr * t) / (1 - s.momentum);
    return v.point(
      run.errors[0].map((x, k) => x * Math.exp(-LAMBDA[k] * time)),
      run.offset,
    );
  });
  const optimum = v.point(new Float64Array(P), new Float64Array(P));
  const target = v.point(new Float64Array(P), run.offset);
  drawContour(v, contour);
  const traces = [
    {
      x: flow.map((p) => p[0]),
      y: flow.map((p) => p[1]),
      mode: "lines",
      line: { dash: "dash", color: "#444", width: 1.5 },
      name: "gradient flow",
    },
    {
      x: pts.map((p) => p[0]),
      y: pts.map((p) => p[1]),
      mode: pts.length <= 200 ? "lines+markers" : "lines",
      marker: { size: 4, color: "#d62728" },
      line: { color: "#d62728", width: 1.5 },
      name: mini ? "E[θₜ] (mean path)" : "SGD path",
    },
    {
      x: [optimum[0]],
      y: [optimum[1]],
      mode: "markers",
      marker: { symbol: "star", size: 14, color: "white", line: { color: "black", width: 1 } },
      name: "θ*",
    },
  ];
  if (DATA.weight_decay)
    traces.push({
      x: [target[0]],
      y: [target[1]],
      mode: "markers",
      marker: { symbol: "x", size: 10, color: "black" },
      name: "ridge target",
    });
  // the paths' layer lies over the contours' (drawn once per view): same frame, clear background
  const hidden = (range) => ({
    range,
    fixedrange: true,
    showgrid: false,
    zeroline: false,
    showticklabels: false,
    automargin: false,
  });
  const paths = plot(
    "contour",
    traces,
    {
      ...frameLayout(),
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      xaxis: hidden(contour.range[0]),
      yaxis: hidden(contour.range[1]),
      legend: { x: 0.01, y: 0.99, bgcolor: "rgba(255,255,255,0.75)" },
    },
    {},
  );

  // curves of more than ~1000 steps are drawn through every k-th step (the numbers are exact)
  const every = thin(run.losses.length, 1000),
    everyMini = mini ? thin(mini.losses.length, 1000) : [];
  const at = (values, rows) => rows.map((t) => values[t]);
  const lossTraces = [
    {
      x: every,
      y: at(run.losses, every),
      mode: "lines",
      name: mini ? "full batch L(θₜ)" : "L(θₜ)",
      line: { color: "#1f77b4", dash: mini ? "dot" : "solid" },
    },
  ];
  if (mini)
    lossTraces.push({
      x: everyMini,
      y: at(mini.losses, everyMini),
      mode: "lines",
      name: `E[L(θₜ)], batch ${s.batch}`,
      line: { color: "#6a1b9a" },
    });
  const shapes =
    DATA.loss_star > 0
      ? [
          {
            type: "line",
            xref: "x domain",
            yref: "y",
            x0: 0,
            x1: 1,
            y0: DATA.loss_star,
            y1: DATA.loss_star,
            line: { dash: "dash", color: "#2ca02c" },
          },
        ]
      : [];
  const shown = P <= 12 ? [...Array(P).keys()] : [...new Set([0, ...state.modes, P - 1])];
  const modeTraces = shown.map((k) => ({
    x: mini ? everyMini : every,
    y: mini
      ? at(mini.rms, everyMini).map((r) => r[k])
      : at(run.errors, every).map((c) => Math.abs(c[k])),
    mode: "lines",
    xaxis: "x2",
    yaxis: "y2",
    legend: "legend2",
    name: `λ=${fmt(DATA.eigenvalues[k])}`,
  }));
  // the loss and the modes: one figure, two panels (one redraw)
  const axis = { type: "log", exponentformat: "power" };
  const ranges = {
    xaxis: {
      range: [0, Math.max(every[every.length - 1], everyMini[everyMini.length - 1] || 0, 1)],
    },
    yaxis: { range: logRange([...lossTraces, { y: [DATA.loss_star] }], 0) },
    yaxis2: { range: logRange(modeTraces, 16) },
  };
  const curves = plot(
    "curves",
    [...lossTraces, ...modeTraces],
    {
      margin: { t: 30, r: 10, l: 60, b: 40 },
      shapes,
      showlegend: true,
      annotations: [
        title(`loss (optimum L* = ${fmt(DATA.loss_star)})`, 1.0),
        title(
          mini
            ? "RMS error along each eigen-direction"
            : "error along each eigen-direction |vᵢᵀ(θₜ − θ_target)|",
          0.44,
        ),
      ],
      yaxis: { ...axis, domain: [0.56, 1], ...ranges.yaxis },
      xaxis: { anchor: "y", showticklabels: false, ...ranges.xaxis },
      yaxis2: { ...axis, domain: [0, 0.44], ...ranges.yaxis2 },
      xaxis2: { anchor: "y2", matches: "x", title: { text: "step" } },
      legend: { x: 1, xanchor: "right", y: 1, yanchor: "top", bgcolor: "rgba(255,255,255,0.75)" },
      legend2: {
        x: 1,
        xanchor: "right",
        y: 0.44,
        yanchor: "top",
        bgcolor: "rgba(255,255,255,0.75)",
        font: { size: 10 },
      },
    },
    ranges,
  );

  showVerdict(s, lim, run, mini);
  showFinal(run, mini);
  drawMarks(lim, s);
  await Promise.all([paths, curves]);
  document.body.dataset.redrawMs = (performance.now() - started).toFixed(1);
  document.body.dataset.draws = String(+(document.body.dataset.draws || 0) + 1);
}

// A log axis's range over the traces' positive values (the loss's: with L*), at most ``decades`` below the top (the
// exact errors fall without a floor, to 1e-70 and beyond; float64 training resolves ~16).
function logRange(traces, decades) {
  const values = traces.flatMap((t) => t.y).filter((v) => v > 0 && Number.isFinite(v));
  if (!values.length) return [-1, 1];
  const hi = Math.log10(Math.max(...values)),
    lo = Math.log10(Math.min(...values));
  const bottom = decades ? Math.max(lo, hi - decades) : lo,
    pad = 0.05 * Math.max(hi - bottom, 0.2);
  return [bottom - pad, hi + pad];
}

// Plotly.react redraws a whole figure (~40 ms on a slow machine). When only the numbers change —
// the same traces with the same names and styles — Plotly.animate without a redraw moves them
// and the axis ranges (~15–20 ms). An interrupted move is superseded by the next: not an error.
function plot(id, traces, layout, ranges) {
  const gd = $(id);
  const shape = JSON.stringify(traces.map((t) => [t.name, t.mode, t.xaxis, t.line, t.marker]));
  if (gd.dataset.shape === shape) {
    const moved = {
      data: traces.map((t) => ({ x: t.x, y: t.y })),
      traces: traces.map((_, i) => i),
      layout: ranges,
    };
    return Plotly.animate(gd, moved, {
      transition: { duration: 0 },
      frame: { duration: 0, redraw: false },
      mode: "immediate",
    }).catch(() => {});
  }
  gd.dataset.shape = shape;
  return Plotly.react(gd, traces, layout, STATIC);
}

function showVerdict(s, lim, run, mini) {
  let word = observedVerdict(run.losses, run.errors, run.stopped);
  const top = modeRate(LAMBDA[P - 1], s),
    flat = modeRate(LAMBDA[0], s);
  const mom = s.momentum
    ? ` for momentum ${fmt(s.momentum)}${s.nesterov ? " (Nesterov)" : ""}`
    : "";
  let why = `lr ${fmt(s.lr)} is ${fmt(s.lr / lim.critical)}× the critical lr ${fmt(lim.critical)}${s.momentum ? mom : ` (2/λ_max, λ_max = ${fmt(lim.lamMax)})`}: `;
  if (word === "diverged")
    why += `the steepest direction grows ×${fmt(top)} per step, so the loss blows up${run.stopped ? ` (stopped at step ${run.stopped}, past 10⁶ × its start)` : ""}; use lr < ${fmt(lim.critical)}, e.g. η* = ${fmt(lim.optimal)}.`;
  else if (word === "oscillating")
    why += `the steepest direction overshoots and flips sign each step but shrinks ×${fmt(top)} per step, so the loss oscillates towards the optimum.`;
  else
    why += `every direction shrinks without overshooting; the flattest keeps ×${fmt(flat)} of its error per step${flat > 0 && flat < 1 ? `, about ${Math.round(Math.log(10) / -Math.log(flat))} steps per decimal digit` : ""}.`;
  if (mini) {
    const crit = msCritical(s),
      last = mini.losses[mini.losses.length - 1];
    const blew = !Number.isFinite(last) || last > mini.losses[0] || (crit && s.lr >= crit);
    if (blew) word = "diverged";
    const against = crit
      ? `${fmt(s.lr / crit)}× the mean-square critical lr ${fmt(crit)} for batches of ${s.batch}`
      : `batches of ${s.batch}`;
    why = `lr ${fmt(s.lr)} is ${against}: ${blew ? "the expected loss grows without bound (in mean square)" : `the mean path is ${word} and the expected loss reaches ${fmt(last)} after ${mini.losses.length - 1} steps (full batch: ${fmt(run.losses[run.losses.length - 1])})`}.`;
  }
  const el = $("verdict");
  el.className = word;
  el.innerHTML = "";
  const b = document.createElement("b");
  b.textContent = word;
  el.append(b, " — " + why);
}

// The path's last point as numbers (data-*) for links, tests and notebooks to read.
function showFinal(run, mini) {
  const t = run.errors.length - 1;
  const theta = fromModes(run.errors[t], DATA.target_theta);
  const el = $("final");
  el.dataset.step = String(t);
  el.dataset.theta = JSON.stringify(theta);
  el.dataset.loss = String(run.losses[t]);
  let text = `step ${t}: ${DATA.parameters.map((n, i) => `${n} = ${fmt(theta[i])}`).join(", ")} · loss ${fmt(run.losses[t])}`;
  if (mini) {
    const last = mini.losses.length - 1;
    el.dataset.expectedStep = String(last);
    el.dataset.expectedLoss = String(mini.losses[last]);
    text += ` · E[L] at step ${last}: ${fmt(mini.losses[last])} (batch ${state.batch})`;
  } else {
    delete el.dataset.expectedStep;
    delete el.dataset.expectedLoss;
  }
  el.textContent = text;
}

function drawMarks(lim, s) {
  const marks = [
    [lim.monotone, s.momentum ? "monotone" : "1/λmax", ""],
    [lim.optimal, "η*", ""],
    [lim.critical, s.momentum ? "critical" : "2/λmax", "critical"],
  ];
  const crit = msCritical(s);
  if (crit) marks.push([crit, `mean-square B=${s.batch}`, "ms"]);
  const box = $("lr-marks");
  box.innerHTML = "";
  const rowEnds = []; // labels close together (η* and 2/λmax often are) go on lower rows
  for (const [lr, label, cls] of marks.sort((a, b) => a[0] - b[0])) {
    const at = (Math.log10(lr) - LR_RANGE[0]) / (LR_RANGE[1] - LR_RANGE[0]);
    if (!(at >= 0 && at <= 1)) continue;
    let row = rowEnds.findIndex((end) => at - end > 0.09);
    if (row < 0) row = rowEnds.length;
    rowEnds[row] = at;
    const m = document.createElement("span");
    m.className = `mark ${cls}`;
    m.style.left = `${(100 * at).toFixed(2)}%`;
    m.style.top = `${1.2 * row}em`;
    m.textContent = label;
    m.title = `${label}: lr ${fmt(lr)}`;
    m.dataset.lr = String(lr);
    box.append(m);
  }
}

// ------------------------------------------------------------------ controls
function syncControls() {
  $("lr").value = String(state.lr);
  $("lr-slider").value = String(Math.log10(state.lr));
  $("momentum").value = String(state.momentum);
  $("momentum-slider").value = String(state.momentum);
  $("nesterov").checked = state.nesterov;
  $("steps").value = String(state.steps);
  $("steps-slider").value = String(Math.log10(state.steps));
  $("batch").value = state.batch === null ? "full" : String(state.batch);
  $("mode-x").value = String(state.modes[0]);
  $("mode-y").value = String(state.modes[1]);
}

function update(change) {
  Object.assign(state, change);
  if (state.momentum === 0) state.nesterov = false; // torch refuses Nesterov without momentum
  writeFragment();
  syncControls();
  draw();
}

function setup() {
  $("name").textContent = DATA.name;
  const lr = $("lr-slider");
  lr.min = String(LR_RANGE[0]);
  lr.max = String(LR_RANGE[1]);
  lr.step = String((LR_RANGE[1] - LR_RANGE[0]) / 1000);
  lr.addEventListener("input", () => update({ lr: +(10 ** +lr.value).toPrecision(4) }));
  $("lr").addEventListener("change", (e) => {
    const v = +e.target.value;
    if (v > 0) update({ lr: v });
  });
  $("momentum-slider").addEventListener("input", (e) => update({ momentum: +e.target.value }));
  $("momentum").addEventListener("change", (e) => {
    const v = +e.target.value;
    if (v >= 0 && v < 1) update({ momentum: v });
  });
  $("nesterov").addEventListener("change", (e) =>
    update({ nesterov: e.target.checked && state.momentum > 0 }),
  );
  const steps = $("steps-slider");
  steps.max = String(Math.log10(DATA.max_steps));
  steps.step = String(Math.log10(DATA.max_steps) / 400);
  steps.addEventListener("input", () =>
    update({ steps: Math.max(1, Math.round(10 ** +steps.value)) }),
  );
  $("steps").addEventListener("change", (e) => {
    const v = Math.round(+e.target.value);
    if (v >= 1 && v <= DATA.max_steps) update({ steps: v });
  });
  for (const b of DATA.batches)
    $("batch").add(new Option(b === null ? "full" : String(b), b === null ? "full" : String(b)));
  $("batch").addEventListener("change", (e) =>
    update({ batch: e.target.value === "full" ? null : +e.target.value }),
  );
  if (P > 2) {
    for (const id of ["mode-x", "mode-y"]) {
      DATA.eigenvalues.forEach((l, k) => $(id).add(new Option(`v${k}: λ = ${fmt(l)}`, String(k))));
      $(id).addEventListener("change", () => {
        const m = [+$("mode-x").value, +$("mode-y").value];
        if (m[0] !== m[1]) update({ modes: m });
        else syncControls();
      });
    }
  } else $("mode-control").hidden = true;
  for (const note of DATA.notes) {
    const li = document.createElement("li");
    li.textContent = note;
    $("notes").append(li);
  }
  window.addEventListener("hashchange", () => {
    readFragment();
    update({});
  });
  readFragment();
  update({});
}

setup();
