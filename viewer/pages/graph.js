// The graph page: an attribution graph laid out as Neuronpedia does (prompt positions left to
// right, embeddings at the bottom, layers upwards, logits on top), edges on a canvas (tens of
// thousands stay fast), nodes as SVG elements (hover, click, pin), and steering of chosen features.
'use strict';

const { el, json, num, token, serverSettings } = GF;

const layout = { rowHeight: 28, nodeGap: 11, columnPad: 6, left: 48, right: 16, top: 56, bottom: 64 };
const colours = { positive: '#2166ac', negative: '#c0392b' };
const listedLinks = 12;
const strokeChunk = 64;

const state = {
  graph: null,
  byId: new Map(),        // node_id → node (with x, y)
  incoming: new Map(),    // node_id → links into it
  outgoing: new Map(),    // node_id → links out of it
  maxWeight: 1,
  threshold: 0,
  selected: null,
  pinned: new Set(),
  transform: d3.zoomIdentity,
  buckets: [],            // edges grouped by sign and width, each drawn as one canvas path
};

const kindOf = node => node.feature_type === 'embedding' ? 'embedding'
  : node.feature_type === 'logit' ? 'logit'
  : node.feature_type === 'mlp reconstruction error' ? 'error' : 'feature';

/** Row 0 holds the embeddings, row l + 1 layer l, the last row the logits (their layer is n_layers + 1). */
const rowOf = node => kindOf(node) === 'embedding' ? 0 : Number(node.layer) + 1;

/** A feature node's transcoder layer and index, from its id "layer_index_position". */
function featureAddress(node) {
  const [layer, index] = node.node_id.split('_').map(Number);
  return { layer, index };
}

function slugOfPage() {
  return decodeURIComponent(location.pathname.replace(/^\/graphs\//, ''));
}

// ---- Layout -------------------------------------------------------------------------------

/**
 * Columns as wide as their most crowded cell, stretched to fill the view when the graph is
 * narrower; rows share the view's height. Nodes spread across their cell, strongest first.
 */
function place(graph, area) {
  const positions = graph.metadata.prompt_tokens.length;
  const rows = 1 + Math.max(...graph.nodes.map(rowOf));
  const cells = new Map();
  for (const node of graph.nodes) {
    const key = `${node.ctx_idx}:${rowOf(node)}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(node);
  }
  const widest = new Array(positions).fill(1);
  for (const [key, members] of cells) {
    const position = Number(key.split(':')[0]);
    widest[position] = Math.max(widest[position], members.length);
  }
  const needed = widest.map(n => n * layout.nodeGap + 2 * layout.columnPad);
  const stretch = Math.max(1, (area.width - layout.left - layout.right) / needed.reduce((a, b) => a + b, 0));
  const rowHeight = Math.max(layout.rowHeight, (area.height - layout.top - layout.bottom) / rows);
  const columnX = [];
  let x = layout.left;
  for (let p = 0; p < positions; p++) {
    columnX.push(x);
    x += needed[p] * stretch;
  }
  columnX.push(x);
  const rowY = row => layout.top + (rows - 1 - row + 0.5) * rowHeight;
  const strength = node => kindOf(node) === 'error' ? -1 : Math.abs(node.influence ?? node.token_prob ?? 0);
  for (const [key, members] of cells) {
    const [position, row] = key.split(':').map(Number);
    members.sort((a, b) => strength(b) - strength(a));
    const left = columnX[position] + layout.columnPad, width = columnX[position + 1] - columnX[position] - 2 * layout.columnPad;
    members.forEach((node, i) => {
      node.x = left + (i + 0.5) * width / members.length;
      node.y = rowY(row);
    });
  }
  return { width: x + layout.right, height: layout.top + rows * rowHeight + layout.bottom, rows, columnX, rowY };
}

function index(graph) {
  state.byId = new Map(graph.nodes.map(n => [n.node_id, n]));
  state.incoming = new Map(graph.nodes.map(n => [n.node_id, []]));
  state.outgoing = new Map(graph.nodes.map(n => [n.node_id, []]));
  let max = 0;
  for (const link of graph.links) {
    if (!state.byId.has(link.source) || !state.byId.has(link.target)) continue;
    state.outgoing.get(link.source).push(link);
    state.incoming.get(link.target).push(link);
    max = Math.max(max, Math.abs(link.weight));
  }
  state.maxWeight = max || 1;
}

const widthOf = weight => 0.4 + 2.6 * Math.sqrt(Math.abs(weight) / state.maxWeight);

/** The edges above the threshold, bucketed so one canvas stroke draws each bucket. */
function bucketEdges() {
  const levels = 4;
  const buckets = [];
  // The weaker half of the range is drawn one device pixel wide (hairlines rasterise many times
  // faster than wider strokes) and fainter; only the strong edges, always few, get width.
  for (const sign of ['positive', 'negative']) {
    for (let l = 0; l < levels; l++) {
      const strong = l >= levels / 2;
      buckets.push({ colour: colours[sign], width: strong ? widthOf(state.maxWeight * ((l + 1) / levels) ** 2) : 1, alpha: 0.5 + 0.5 * (l + 1) / levels, links: [] });
    }
  }
  let shown = 0;
  for (const link of state.graph.links) {
    const magnitude = Math.abs(link.weight);
    if (magnitude < state.threshold || !state.byId.has(link.source) || !state.byId.has(link.target)) continue;
    const level = Math.min(levels - 1, Math.floor(levels * Math.sqrt(magnitude / state.maxWeight)));
    buckets[(link.weight >= 0 ? 0 : levels) + level].links.push(link);
    shown++;
  }
  state.buckets = buckets;
  document.getElementById('edge-count').textContent = `${shown.toLocaleString()} of ${state.graph.links.length.toLocaleString()} edges`;
}

// ---- Drawing ------------------------------------------------------------------------------

let frameRequested = false;
function drawEdgesSoon() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => { frameRequested = false; drawEdges(); });
}

function drawEdges() {
  const canvas = document.getElementById('edges');
  const area = document.getElementById('canvas-area');
  const ratio = window.devicePixelRatio || 1;
  const { clientWidth: width, clientHeight: height } = area;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext('2d');
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.clearRect(0, 0, canvas.width, canvas.height);
  const t = state.transform;
  context.setTransform(ratio * t.k, 0, 0, ratio * t.k, ratio * t.x, ratio * t.y);
  const focused = state.selected !== null || state.pinned.size > 0;
  for (const bucket of state.buckets) {
    if (!bucket.links.length) continue;
    context.strokeStyle = bucket.colour;
    context.lineWidth = bucket.width / t.k;
    context.globalAlpha = (focused ? 0.12 : 0.35) * bucket.alpha;
    // Short paths: one long path of crossing segments costs the rasteriser far more than many short ones.
    for (let start = 0; start < bucket.links.length; start += strokeChunk) {
      context.beginPath();
      for (const link of bucket.links.slice(start, start + strokeChunk)) {
        const s = state.byId.get(link.source), d = state.byId.get(link.target);
        context.moveTo(s.x, s.y);
        context.lineTo(d.x, d.y);
      }
      context.stroke();
    }
  }
}

function drawScene(graph, frame) {
  const svg = d3.select('#graph');
  svg.selectAll('*').remove();
  const scene = svg.append('g').attr('id', 'scene');

  // Layer labels and row guides.
  const rowLabel = row => row === 0 ? 'Emb' : row === frame.rows - 1 ? 'Logit' : `L${row - 1}`;
  const guides = scene.append('g').attr('class', 'guides');
  for (let row = 0; row < frame.rows; row++) {
    const y = frame.rowY(row);
    guides.append('line').attr('x1', layout.left).attr('x2', frame.width).attr('y1', y).attr('y2', y);
    guides.append('text').attr('class', 'row-label').attr('x', layout.left - 8).attr('y', y + 4).text(rowLabel(row));
  }
  // Prompt tokens under their columns.
  const tokens = scene.append('g').attr('class', 'prompt-tokens');
  graph.metadata.prompt_tokens.forEach((text, p) => {
    const x = (frame.columnX[p] + frame.columnX[p + 1]) / 2;
    tokens.append('text').attr('transform', `translate(${x},${frame.height - layout.bottom + 14}) rotate(30)`).text(token(text));
  });

  scene.append('g').attr('id', 'highlight');
  const nodes = scene.append('g').attr('id', 'nodes');
  for (const node of graph.nodes) {
    const kind = kindOf(node);
    const shape = kind === 'feature'
      ? nodes.append('circle').attr('cx', node.x).attr('cy', node.y).attr('r', 4)
      : nodes.append('rect').attr('x', node.x - 4).attr('y', node.y - 4).attr('width', 8).attr('height', 8)
        .attr('transform', kind === 'logit' ? `rotate(45 ${node.x} ${node.y})` : null);
    shape.attr('class', `node ${kind}`).attr('data-id', node.node_id)
      .on('mouseenter', event => showTooltip(event, node))
      .on('mousemove', moveTooltip)
      .on('mouseleave', hideTooltip)
      .on('click', event => { event.stopPropagation(); if (event.shiftKey) togglePin(node.node_id); else select(node.node_id); });
  }
  // Logit tokens and probabilities above them.
  const labels = scene.append('g').attr('class', 'logit-labels');
  for (const node of graph.nodes.filter(n => kindOf(n) === 'logit')) {
    labels.append('text').attr('transform', `translate(${node.x},${node.y - 9}) rotate(-30)`)
      .text(`${logitToken(node)} ${num(node.token_prob, 2)}`);
  }

  const zoom = d3.zoom().scaleExtent([0.05, 8]).on('zoom', event => {
    state.transform = event.transform;
    scene.attr('transform', event.transform);
    drawEdgesSoon();
  });
  svg.call(zoom).on('dblclick.zoom', null).on('click', () => select(null));
  const fit = () => {
    const area = document.getElementById('canvas-area');
    const k = Math.min(1, area.clientWidth / frame.width, area.clientHeight / frame.height);
    svg.call(zoom.transform, d3.zoomIdentity.translate((area.clientWidth - frame.width * k) / 2, 0).scale(k));
  };
  document.getElementById('fit').onclick = fit;
  fit();
}

/** A short name: the clerp where there is one, else what and where the node is. */
function label(node) {
  const tokenAt = token(state.graph.metadata.prompt_tokens[node.ctx_idx] ?? '');
  switch (kindOf(node)) {
    case 'embedding': return `Emb "${tokenAt}" @${node.ctx_idx}`;
    case 'error': return `Error L${node.layer} @${node.ctx_idx}`;
    case 'logit': return `Logit "${logitToken(node)}" ${num(node.token_prob, 2)}`;
    default: {
      const { layer, index } = featureAddress(node);
      return node.clerp || `L${layer} #${index} @${node.ctx_idx}`;
    }
  }
}

/** A logit node's token, from its clerp `Output "token" (p=…)`. */
function logitToken(node) {
  const match = /^Output "(.*)" \(p=/.exec(node.clerp ?? '');
  return match ? match[1] : String(node.feature);
}

// ---- Interaction --------------------------------------------------------------------------

function describe(node) {
  const kind = kindOf(node);
  const where = kind === 'embedding' ? 'embedding' : kind === 'logit' ? 'logit' : `layer ${node.layer}`;
  return [
    ['id', node.node_id],
    ['kind', node.feature_type],
    ['layer', where],
    ['position', `${node.ctx_idx} (${token(state.graph.metadata.prompt_tokens[node.ctx_idx] ?? '')})`],
    ['activation', num(node.activation)],
    ['influence', num(node.influence)],
    kind === 'logit' ? ['probability', num(node.token_prob)] : null,
    ['clerp', node.clerp || '—'],
  ].filter(Boolean);
}

function showTooltip(event, node) {
  const tip = document.getElementById('tooltip');
  tip.replaceChildren(...describe(node).map(([k, v]) => el('div', {}, el('b', {}, `${k} `), v)));
  tip.hidden = false;
  moveTooltip(event);
}

function moveTooltip(event) {
  const tip = document.getElementById('tooltip');
  const area = document.getElementById('canvas-area').getBoundingClientRect();
  tip.style.left = `${event.clientX - area.left + 14}px`;
  tip.style.top = `${event.clientY - area.top + 14}px`;
}

function hideTooltip() {
  document.getElementById('tooltip').hidden = true;
}

/** The selected node's edges above the threshold as SVG lines; pinned nodes keep their ring. */
function highlight() {
  const layer = d3.select('#highlight');
  layer.selectAll('*').remove();
  const id = state.selected;
  const links = id === null ? [] : [...state.incoming.get(id), ...state.outgoing.get(id)].filter(l => Math.abs(l.weight) >= state.threshold);
  const neighbours = new Set(links.flatMap(l => [l.source, l.target]));
  for (const link of links) {
    const s = state.byId.get(link.source), d = state.byId.get(link.target);
    layer.append('line').attr('class', 'edge highlighted').attr('data-source', link.source).attr('data-target', link.target)
      .attr('x1', s.x).attr('y1', s.y).attr('x2', d.x).attr('y2', d.y)
      .attr('stroke', link.weight >= 0 ? colours.positive : colours.negative).attr('stroke-width', widthOf(link.weight));
  }
  d3.selectAll('#nodes .node')
    .classed('selected', function () { return this.dataset.id === id; })
    .classed('pinned', function () { return state.pinned.has(this.dataset.id); })
    .classed('faded', function () { return id !== null && this.dataset.id !== id && !neighbours.has(this.dataset.id) && !state.pinned.has(this.dataset.id); });
  drawEdgesSoon();
}

function linkList(title, links, other) {
  const strongest = [...links].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)).slice(0, listedLinks);
  return el('div', { class: 'links' },
    el('h3', {}, `${title} (${links.length})`),
    el('ol', {}, strongest.map(link => {
      const node = state.byId.get(other(link));
      return el('li', {},
        el('button', { type: 'button', class: 'link', title: node.node_id, onclick: () => select(node.node_id) }, label(node)),
        el('span', { class: link.weight >= 0 ? 'weight positive' : 'weight negative' }, num(link.weight)));
    })));
}

function showNode() {
  const details = document.getElementById('node-details');
  const id = state.selected;
  document.getElementById('node-hint').hidden = id !== null;
  if (id === null) { details.replaceChildren(); return; }
  const node = state.byId.get(id);
  details.replaceChildren(
    el('dl', {}, describe(node).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
    el('button', { id: 'pin', type: 'button', onclick: () => togglePin(id) }, state.pinned.has(id) ? 'Unpin' : 'Pin'),
    linkList('Inputs', state.incoming.get(id), l => l.source),
    linkList('Outputs', state.outgoing.get(id), l => l.target));
}

function select(id) {
  state.selected = id;
  writeUrl();
  highlight();
  showNode();
  showSteerFeatures();
}

function togglePin(id) {
  if (state.pinned.has(id)) state.pinned.delete(id); else state.pinned.add(id);
  writeUrl();
  highlight();
  showNode();
  showSteerFeatures();
}

/** pinnedIds and clickedId live in the URL, as on Neuronpedia, so a view can be shared or reloaded. */
function writeUrl() {
  const query = new URLSearchParams(location.search);
  if (state.pinned.size) query.set('pinnedIds', [...state.pinned].join(',')); else query.delete('pinnedIds');
  if (state.selected) query.set('clickedId', state.selected); else query.delete('clickedId');
  const search = query.toString();
  history.replaceState(null, '', `${location.pathname}${search ? `?${search}` : ''}`);
}

function readUrl() {
  const query = new URLSearchParams(location.search);
  for (const id of (query.get('pinnedIds') ?? '').split(',')) if (state.byId.has(id)) state.pinned.add(id);
  const clicked = query.get('clickedId');
  state.selected = clicked && state.byId.has(clicked) ? clicked : null;
}

function setThreshold(slider) {
  // The slider is quadratic in |weight| so the weak end, where most edges are, gets most of its travel.
  state.threshold = state.maxWeight * (Number(slider.value) / Number(slider.max)) ** 2;
  document.getElementById('edge-threshold').textContent = num(state.threshold);
  bucketEdges();
  highlight();
}

// ---- Metadata -----------------------------------------------------------------------------

function showMetadata(graph) {
  const m = graph.metadata;
  const g = m.generation_settings ?? {};
  const scores = m.scores ?? {};
  const rows = [
    ['slug', m.slug], ['model', m.scan], ['prompt', m.prompt],
    ['nodes', graph.nodes.length.toLocaleString()], ['edges', graph.links.length.toLocaleString()],
    ['replacement score', num(scores.replacement_score)], ['completeness score', num(scores.completeness_score)],
    ['node threshold', num(m.node_threshold ?? m.pruning_settings?.node_threshold, 2)],
    ['edge threshold', num(m.edge_threshold ?? m.pruning_settings?.edge_threshold, 2)],
    ['max feature nodes', g.max_feature_nodes], ['max logits', g.max_n_logits],
    ['logit probability', g.desired_logit_prob], ['batch size', g.batch_size],
    ['transcoders', m.info?.transcoder_set ?? m.transcoder_list_str ?? ''],
  ].filter(([, v]) => v !== undefined && v !== null && v !== '');
  document.getElementById('metadata-list').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))]));
  // Tokens the model never saw in training (the demo model's metadata.warnings): said first, not hidden in the list.
  document.getElementById('metadata-warnings').replaceChildren(...(m.warnings ?? []).map(warning => el('li', {}, token(warning))));
  document.getElementById('graph-title').textContent = `${m.slug} · ${m.scan}`;
  document.title = `GraphFunctions · ${m.slug}`;
}

// ---- Steering -----------------------------------------------------------------------------

/** The feature nodes to steer: the pinned ones and the selected one. */
function steerNodes() {
  const ids = new Set(state.pinned);
  if (state.selected) ids.add(state.selected);
  return [...ids].map(id => state.byId.get(id)).filter(n => kindOf(n) === 'feature');
}

function showSteerFeatures() {
  const nodes = steerNodes();
  document.getElementById('steer-features').replaceChildren(...(nodes.length
    ? nodes.map(n => el('li', { 'data-id': n.node_id }, label(n)))
    : [el('li', { class: 'muted' }, 'No feature chosen.')]));
  document.getElementById('steer-run').disabled = nodes.length === 0;
}

function steerRequest(modelId, form) {
  const data = new FormData(form);
  const ablate = data.get('mode') === 'ablate';
  return {
    model_id: modelId,
    prompt: state.graph.metadata.prompt,
    n_tokens: Number(data.get('n_tokens')),
    top_k: 5,
    temperature: 0,
    features: steerNodes().map(node => ({
      ...featureAddress(node),
      token_active_position: node.ctx_idx,
      steer_position: node.ctx_idx,
      ...(ablate ? { ablate: true } : { delta: Number(data.get('delta')) }),
    })),
  };
}

/** One generation: its continuation, and each generated token with the top tokens it was chosen from. */
function generationView(title, positions, promptLength, className) {
  const continuation = positions.slice(promptLength).map(p => p.token).join('');
  return el('div', { class: `generation ${className}` },
    el('h3', {}, title),
    el('p', { class: 'continuation' }, token(continuation)),
    el('ol', { class: 'top-tokens', start: 1 }, positions.slice(promptLength - 1, -1).map((p, i) =>
      el('li', {}, el('b', {}, token(positions[promptLength + i].token)), ' ',
        p.top_logits.map(t => `${token(t.token)} ${num(t.prob, 2)}`).join(' · ')))));
}

async function steer(event) {
  event.preventDefault();
  const message = document.getElementById('steer-message');
  const { model_id: modelId } = await serverSettings();
  message.className = 'message';
  message.textContent = 'Steering…';
  try {
    const { data } = await json('POST', '/steer', steerRequest(modelId, event.target));
    const promptLength = data.DEFAULT_LOGITS_BY_TOKEN.findIndex(p => p.top_logits.length > 0) + 1;
    document.getElementById('steer-result').replaceChildren(
      generationView('Default', data.DEFAULT_LOGITS_BY_TOKEN, promptLength, 'default'),
      generationView('Steered', data.STEERED_LOGITS_BY_TOKEN, promptLength, 'steered'));
    message.textContent = '';
  } catch (error) {
    message.className = 'message error';
    message.textContent = error.message;
  }
}

// ---- Loading ------------------------------------------------------------------------------

async function loadGraph(slug) {
  const message = document.getElementById('graph-message');
  for (;;) {
    const { status, data } = await json('GET', `/jobs/${encodeURIComponent(slug)}/result`);
    if (status === 200 && data.nodes) return data;
    if (status === 200) throw new Error(`graph ${slug} was delivered elsewhere: ${data.success ?? ''}`);
    message.textContent = 'The graph is still being computed…';
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
}

async function main() {
  const message = document.getElementById('graph-message');
  try {
    const graph = await loadGraph(slugOfPage());
    const started = performance.now();
    state.graph = graph;
    index(graph);
    const area = document.getElementById('canvas-area');
    const frame = place(graph, { width: area.clientWidth, height: area.clientHeight });
    readUrl();
    showMetadata(graph);
    bucketEdges();
    drawScene(graph, frame);
    highlight();
    showNode();
    showSteerFeatures();
    const slider = document.getElementById('edge-filter');
    slider.addEventListener('input', () => setThreshold(slider));
    document.getElementById('steer-form').addEventListener('submit', steer);
    window.addEventListener('resize', drawEdgesSoon);
    message.hidden = true;
    document.body.dataset.renderMs = String(Math.round(performance.now() - started));
    document.body.dataset.ready = 'true';
  } catch (error) {
    message.className = 'message overlay error';
    message.textContent = error.message;
  }
}

main();
