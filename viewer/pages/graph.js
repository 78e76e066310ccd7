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
  pruning: 1,             // nodes with influence above this are hidden (Neuronpedia's pruningThreshold)
  density: 1,             // features firing on more than this share of tokens are hidden (Neuronpedia's densityThreshold)
  densities: new Map(),   // "layer_index" → the feature's density, from its dashboard (absent: unknown, never hidden)
  linkType: 'both',       // the selected node's edges drawn: 'incoming', 'outgoing' or 'both' (Neuronpedia's linkType)
  selected: null,
  pinned: new Set(),
  logitRow: 1,            // the top row: one above the last layer that holds a node
  influential: [],        // ids of the most influential features, labelled without hovering
  steer: new Map(),       // "layer_index_position" → { layer, index, position, ablate, delta, extra }
  supernodes: [],         // [name, node_id, node_id, …] as Neuronpedia's supernodes parameter
  labels: new Map(),      // node_id → a label the reader gave it (saved with the graph, replacing the automatic clerp)
  transform: d3.zoomIdentity,
  buckets: [],            // edges grouped by sign and width, each drawn as one canvas path
};

const kindOf = node => node.feature_type === 'embedding' ? 'embedding'
  : node.feature_type === 'logit' ? 'logit'
  : node.feature_type === 'mlp reconstruction error' ? 'error' : 'feature';

/**
 * Row 0 holds the embeddings, row l + 1 layer l, and the row above the last layer the logits
 * (whatever layer number the graph gives them: circuit-tracer's is n_layers, others n_layers + 1).
 */
const rowOf = node => kindOf(node) === 'embedding' ? 0 : kindOf(node) === 'logit' ? state.logitRow : Number(node.layer) + 1;

/** A feature node's transcoder layer and index, from its id "layer_index_position". */
function featureAddress(node) {
  const [layer, index] = node.node_id.split('_').map(Number);
  return { layer, index };
}

/** Where a node is, as researchers write it: "L3 #240 @5" for a feature. */
function address(node) {
  const kind = kindOf(node);
  if (kind === 'feature') { const { layer, index } = featureAddress(node); return `L${layer} #${index} @${node.ctx_idx}`; }
  if (kind === 'error') return `Err L${node.layer} @${node.ctx_idx}`;
  if (kind === 'embedding') return `Emb @${node.ctx_idx}`;
  return `Logit @${node.ctx_idx}`;
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
  state.logitRow = 1 + Math.max(0, ...graph.nodes.filter(n => kindOf(n) !== 'logit').map(rowOf));
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
  // A node's influence is its cumulative-influence rank fraction (smaller: more influential); logits have a probability.
  const strength = node => kindOf(node) === 'error' ? -1 : kindOf(node) === 'logit' ? node.token_prob ?? 0 : 1 - (node.influence ?? 1);
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
  state.influential = graph.nodes.filter(n => kindOf(n) === 'feature')
    .sort((a, b) => (a.influence ?? 1) - (b.influence ?? 1)).slice(0, labelledByInfluence).map(n => n.node_id);
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

/**
 * Whether a node shows under the pruning and density sliders: embeddings, logits, pinned and
 * selected nodes always; others when their cumulative influence is within the threshold, and a
 * feature when its density is known and within its threshold or unknown (as Neuronpedia's).
 */
function visible(node) {
  const kind = kindOf(node);
  if (kind === 'embedding' || kind === 'logit' || state.pinned.has(node.node_id) || state.selected === node.node_id) return true;
  if (kind === 'feature' && state.density < 1) {
    const { layer, index } = featureAddress(node);
    if (state.densities.get(`${layer}_${index}`) > state.density) return false;
  }
  return node.influence === undefined || node.influence === null || node.influence <= state.pruning;
}

/** The edges above the threshold between shown nodes, bucketed so one canvas stroke draws each bucket. */
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
    if (!visible(state.byId.get(link.source)) || !visible(state.byId.get(link.target))) continue;
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
  // Narrow columns (long prompts) get steeper, shorter labels so neighbours do not overlap; the whole token is the title.
  const tokens = scene.append('g').attr('class', 'prompt-tokens');
  const narrowest = Math.min(...frame.columnX.slice(1).map((x, p) => x - frame.columnX[p]));
  const angle = narrowest >= 48 ? 30 : narrowest >= 20 ? 60 : 80;
  const room = Math.max(4, Math.floor(layout.bottom / 6.5 / Math.sin(angle * Math.PI / 180)));
  graph.metadata.prompt_tokens.forEach((text, p) => {
    const x = (frame.columnX[p] + frame.columnX[p + 1]) / 2;
    const shown = token(text);
    tokens.append('text').attr('transform', `translate(${x},${frame.height - layout.bottom + 14}) rotate(${angle})`)
      .text(shown.length > room ? `${shown.slice(0, room - 1)}…` : shown).append('title').text(`@${p} ${shown}`);
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
  scene.append('g').attr('id', 'node-labels');
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
    default: return node.clerp ? `${address(node)} ${node.clerp}` : address(node);
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
  // Near the right or bottom edge the tip opens to the other side instead of squeezing.
  const x = event.clientX - area.left, y = event.clientY - area.top;
  tip.style.left = `${x + 14 + tip.offsetWidth > area.width ? Math.max(0, x - 14 - tip.offsetWidth) : x + 14}px`;
  tip.style.top = `${y + 14 + tip.offsetHeight > area.height ? Math.max(0, y - 14 - tip.offsetHeight) : y + 14}px`;
}

function hideTooltip() {
  document.getElementById('tooltip').hidden = true;
}

/** The selected node's edges above the threshold as SVG lines; pinned nodes keep their ring. */
function highlight() {
  const layer = d3.select('#highlight');
  layer.selectAll('*').remove();
  const id = state.selected;
  const shown = l => Math.abs(l.weight) >= state.threshold && visible(state.byId.get(l.source)) && visible(state.byId.get(l.target));
  const links = id === null ? [] : [
    ...(state.linkType === 'outgoing' ? [] : state.incoming.get(id)),
    ...(state.linkType === 'incoming' ? [] : state.outgoing.get(id)),
  ].filter(shown);
  const neighbours = new Set(links.flatMap(l => [l.source, l.target]));
  // The pinned subgraph: edges between pinned nodes, drawn as the selected node's are.
  const subgraph = [...state.pinned].flatMap(p => state.outgoing.get(p) ?? [])
    .filter(l => state.pinned.has(l.target) && l.source !== id && l.target !== id && shown(l));
  for (const [link, kind] of [...links.map(l => [l, 'highlighted']), ...subgraph.map(l => [l, 'subgraph'])]) {
    const s = state.byId.get(link.source), d = state.byId.get(link.target);
    layer.append('line').attr('class', `edge ${kind}`).attr('data-source', link.source).attr('data-target', link.target)
      .attr('x1', s.x).attr('y1', s.y).attr('x2', d.x).attr('y2', d.y)
      // Legible however weak: at least 1.2 px, nearly opaque (the canvas behind is faded).
      .attr('stroke', link.weight >= 0 ? colours.positive : colours.negative).attr('stroke-width', Math.max(1.2, widthOf(link.weight)));
  }
  drawNodeLabels();
  d3.selectAll('#nodes .node')
    .classed('pruned', function () { return !visible(state.byId.get(this.dataset.id)); })
    .classed('selected', function () { return this.dataset.id === id; })
    .classed('pinned', function () { return state.pinned.has(this.dataset.id); })
    .classed('faded', function () { return id !== null && this.dataset.id !== id && !neighbours.has(this.dataset.id) && !state.pinned.has(this.dataset.id); });
  drawEdgesSoon();
}

/** Feature nodes that carry a text label without hovering: the most influential ones. */
const labelledByInfluence = 12;
const labelLength = 28;

/**
 * Text beside the selected, the pinned and the most influential feature nodes (in that order of
 * priority): their address and label, above the node or else below it, and left out where it
 * would cover a label already placed (the node keeps its title).
 */
function drawNodeLabels() {
  const wanted = [...new Set([...(state.selected ? [state.selected] : []), ...state.pinned, ...state.influential])];
  const group = d3.select('#node-labels');
  group.selectAll('*').remove();
  const placed = [];   // boxes of the labels drawn: {x1, x2, y1, y2}
  const overlaps = box => placed.some(p => box.x1 < p.x2 && p.x1 < box.x2 && box.y1 < p.y2 && p.y1 < box.y2);
  for (const id of wanted) {
    const node = state.byId.get(id);
    if (!node || kindOf(node) === 'logit') continue;
    const supernode = supernodeOf(id);
    const full = supernode ? `[${supernode}] ${label(node)}` : label(node);
    const text = full.length > labelLength ? `${full.slice(0, labelLength - 1)}…` : full;
    const width = text.length * 5.6, height = 11;   // 10 px text, measured without a layout pass
    const box = [node.y - 7, node.y + 16].map(baseline => ({ x1: node.x + 5, x2: node.x + 5 + width, y1: baseline - height + 2, y2: baseline + 2, baseline }))
      .find(candidate => !overlaps(candidate));
    if (!box) continue;
    placed.push(box);
    group.append('text').attr('class', state.pinned.has(id) ? 'node-label pinned' : 'node-label').attr('data-id', id)
      .attr('x', box.x1).attr('y', box.baseline).text(text)
      .append('title').text(full);
  }
}

/**
 * Nodes whose address ("L3 #240", "L3 #240 @5", "3_240_5") or label contains the query, features first.
 * The query's case and spacing do not matter.
 */
function search(query) {
  const wanted = query.trim().toLowerCase().replace(/\s+/g, ' ');
  if (!wanted) return [];
  return state.graph.nodes
    .filter(n => [n.node_id, address(n), n.clerp ?? ''].some(text => text.toLowerCase().includes(wanted)))
    .sort((a, b) => (kindOf(a) === 'feature' ? 0 : 1) - (kindOf(b) === 'feature' ? 0 : 1) || (a.influence ?? 1) - (b.influence ?? 1))
    .slice(0, 20);
}

function showSearch() {
  const input = document.getElementById('search');
  const results = document.getElementById('search-results');
  const found = search(input.value);
  results.hidden = input.value.trim() === '';
  results.replaceChildren(...(found.length ? found.map(node => el('li', {},
    el('button', { type: 'button', class: 'link', 'data-id': node.node_id, onclick: () => { select(node.node_id); results.hidden = true; } }, label(node))))
    : [el('li', { class: 'muted' }, 'No node matches.')]));
}

function linkList(title, links, other) {
  const strongest = [...links].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)).slice(0, listedLinks);
  return el('div', { class: 'links' },
    el('h3', {}, `${title} (${links.length})`),
    el('ol', {}, strongest.map(link => {
      const node = state.byId.get(other(link));
      return el('li', {},
        el('button', { type: 'button', class: 'link', title: node.node_id, onclick: () => select(node.node_id) }, label(node)),
        el('span', { class: link.weight >= 0 ? 'weight positive' : 'weight negative' }, num(link.weight)),
        link.head_loadings ? headLoadings(link.head_loadings) : null);
    })));
}

/**
 * Which heads carried a link (the graph was made with head_loadings): its weight split by the
 * attention head its paths first pass through — the largest heads, the rest, and the part through
 * no head (same position only). docs/algorithm.md §10.
 */
function headLoadings(loadings) {
  const heads = (loadings.heads ?? []).map(([layer, head, part]) => `L${layer}.H${head} ${num(part)}`);
  const parts = [...heads, `other heads ${num(loadings.rest ?? 0)}`, `no head ${num(loadings.direct ?? 0)}`];
  return el('span', { class: 'heads', title: 'The weight split by the attention head its paths first pass through' }, `via ${parts.join(', ')}`);
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
    kindOf(node) === 'feature' ? labelEditor(node) : null,
    linkList('Inputs', state.incoming.get(id), l => l.source),
    linkList('Outputs', state.outgoing.get(id), l => l.target),
    node.qk_tracing_results ? qkPanel(node.qk_tracing_results) : null,
    kindOf(node) === 'feature' ? featurePanel(node) : null);
}

/**
 * Why a head attended there (the graph was made with enable_qk_tracing): the head behind the
 * node's strongest link from another position, its score from the query position to the key
 * position, and the (query node, key node) pairs and each side's nodes that make up that score,
 * largest first. docs/algorithm.md §11. A contributor the graph does not show (qk_only_nodes)
 * is named, not linked.
 */
function qkPanel(qk) {
  const contributor = id => {
    const node = state.byId.get(id);
    if (node) return el('button', { type: 'button', class: 'link', title: id, onclick: () => select(id) }, label(node));
    const hidden = state.graph.qk_only_nodes?.[id];
    return el('span', { class: 'hidden-node', title: `${id}: not in the graph` }, hidden ? label(hidden) : id);
  };
  const term = value => el('span', { class: value >= 0 ? 'weight positive' : 'weight negative' }, num(value));
  const marginals = (title, list) => el('div', { class: 'qk-side' }, el('h4', {}, title),
    el('ol', {}, (list ?? []).map(([id, value]) => el('li', {}, contributor(id), term(value)))));
  return el('div', { class: 'qk', id: 'qk-panel' },
    el('h3', {}, `Why L${qk.layer}.H${qk.head} attended from position ${qk.query_ctx_idx} to ${qk.key_ctx_idx}`),
    el('p', { class: 'muted' }, `score ${num(qk.score)} (before softmax): query × key pairs, largest first`),
    el('ol', { class: 'qk-pairs' }, (qk.pair_wise_contributors ?? []).map(([q, k, value]) =>
      el('li', {}, contributor(q), el('span', { class: 'muted' }, ' × '), contributor(k), term(value)))),
    marginals('Query side', qk.top_q_marginal_contributors),
    marginals('Key side', qk.top_k_marginal_contributors));
}

// ---- Labels that stick ---------------------------------------------------------------------

/** Whether this page's graph is a job's (its annotations are saved with it) rather than an opened file. */
const savesAnnotations = () => slugOfPage() !== fileSlug;

/** A feature's label, editable: saved with the graph (PUT /jobs/{slug}/annotations) with the pins and supernodes. */
function labelEditor(node) {
  const input = el('input', { id: 'label-input', value: node.clerp ?? '', maxlength: 500, 'aria-label': 'label', placeholder: 'a label for this feature' });
  const status = el('span', { id: 'label-status', class: 'muted' });
  return el('form', { id: 'label-form', onsubmit: event => { event.preventDefault(); saveLabel(node, input.value.trim(), status); } },
    input, el('button', { type: 'submit' }, savesAnnotations() ? 'Save label' : 'Set label'), status);
}

async function saveLabel(node, text, status) {
  setLabel(node, text);
  writeUrl();
  drawNodeLabels();
  showSubgraph();
  if (!savesAnnotations()) { status.textContent = 'set in this page (a file\'s labels are not saved)'; return; }
  status.textContent = 'saving…';
  try {
    await json('PUT', `/jobs/${encodeURIComponent(slugOfPage())}/annotations`, {
      clerps: [...state.labels], pinnedIds: [...state.pinned], supernodes: state.supernodes,
    });
    status.textContent = 'saved with the graph';
  } catch (error) {
    status.textContent = error.message;
  }
}

/**
 * What was saved with the graph: its labels replace the automatic ones; its pins and supernodes
 * make the view when the URL names none (a link's own view wins).
 */
async function loadAnnotations() {
  const { data } = await json('GET', `/jobs/${encodeURIComponent(slugOfPage())}/annotations`);
  const query = new URLSearchParams(location.search);
  // A link's own labels (clerps) win over the saved ones.
  const linked = new Set(readClerps(query.get('clerps')).map(([node]) => node.node_id));
  for (const [id, text] of data.clerps ?? []) {
    const node = state.byId.get(id);
    if (node && !linked.has(id)) setLabel(node, text);
  }
  if (!query.has('pinnedIds') && !query.has('supernodes')) {
    for (const id of data.pinnedIds ?? []) if (state.byId.has(id)) state.pinned.add(id);
    state.supernodes = readSupernodes(JSON.stringify(data.supernodes ?? []));
    writeUrl();
  }
  highlight();
  showNode();
  showSteerFeatures();
  showSubgraph();
}

// ---- Feature dashboards -------------------------------------------------------------------

const dashboards = new Map();   // "layer_index" → Promise of GET /features/{layer}/{index}

/** A feature's dashboard, fetched once per page. */
function dashboardOf(layer, index) {
  const key = `${layer}_${index}`;
  if (!dashboards.has(key)) dashboards.set(key, json('GET', `/features/${layer}/${index}`).then(r => r.data));
  return dashboards.get(key);
}

/**
 * What a feature's label was read from: its top activating examples (each token shaded by the
 * feature's activation on it, the strongest outlined), the tokens it raises and lowers, its density.
 */
function featurePanel(node) {
  const { layer, index } = featureAddress(node);
  const heading = () => el('h3', {}, `Feature L${layer} #${index} `, ...onlineDashboards(node, layer, index));
  const panel = el('section', { id: 'feature-panel', 'data-feature': `${layer}_${index}` }, heading(),
    el('p', { class: 'muted' }, 'Loading its examples…'));
  serverSettings().then(settings => {
    if (!settings.feature_dashboards) {
      throw new Error(settings.graph_files ? 'graphfunctions view was started without --features (a folder of circuit-tracer\'s feature files), so there are no examples to show.'
        : 'The served transcoder set has no feature dashboards (a features/ folder beside its config.yaml).');
    }
    return dashboardOf(layer, index);
  }).then(feature => {
    const examples = (feature.examples_quantiles ?? []).flatMap(q => q.examples ?? []);
    const most = feature.act_max || Math.max(0, ...examples.flatMap(e => e.tokens_acts_list ?? [])) || 1;
    panel.replaceChildren(heading(),
      el('p', { class: 'feature-label' }, feature.label || 'No label.'),
      el('p', { class: 'muted' }, `fires on ${num(100 * (feature.activation_frequency ?? 0), 2)}% of tokens; strongest activation ${num(most)}`),
      el('div', { class: 'logit-effects' },
        el('div', {}, el('b', {}, 'Raises '), el('span', { class: 'top-logits' }, (feature.top_logits ?? []).map(t => el('span', { class: 'token' }, token(t))))),
        el('div', {}, el('b', {}, 'Lowers '), el('span', { class: 'bottom-logits' }, (feature.bottom_logits ?? []).map(t => el('span', { class: 'token' }, token(t)))))),
      el('h3', {}, `Top activations (${examples.length})`),
      examples.length ? el('ol', { class: 'examples' }, examples.map(example => exampleView(example, most)))
        : el('p', { class: 'muted' }, 'It never fired on the examples its source was made from.'));
  }, error => panel.replaceChildren(heading(), el('p', { class: 'muted feature-missing' }, error.message)));
  return panel;
}

/**
 * Links to a feature's dashboards online, where the graph's metadata.feature_details names them (as
 * Neuronpedia's graph server writes it): its Neuronpedia page for a neuronpedia_source_set, its
 * feature JSON under a feature_json_base_url. Plain links, opened by the reader: the page itself
 * fetches nothing from elsewhere.
 */
function onlineDashboards(node, layer, index) {
  const details = state.graph.metadata.feature_details ?? {};
  const links = [];
  if (typeof details.neuronpedia_source_set === 'string' && details.neuronpedia_source_set) {
    const page = `https://www.neuronpedia.org/${encodeURIComponent(state.graph.metadata.scan)}/${encodeURIComponent(`${layer}-${details.neuronpedia_source_set}`)}/${index}`;
    links.push(el('a', { class: 'online-dashboard', href: page, target: '_blank', rel: 'noopener noreferrer' }, 'on Neuronpedia ↗'));
  }
  if (typeof details.feature_json_base_url === 'string' && /^https?:\/\//.test(details.feature_json_base_url) && node.feature !== undefined) {
    const file = `${details.feature_json_base_url.replace(/\/+$/, '')}/${encodeURIComponent(String(node.feature))}.json`;
    links.push(el('a', { class: 'online-dashboard', href: file, target: '_blank', rel: 'noopener noreferrer' }, 'feature JSON ↗'));
  }
  return links.flatMap((link, i) => i ? [' · ', link] : [link]);
}

function exampleView(example, most) {
  const acts = example.tokens_acts_list ?? [];
  const peak = acts.indexOf(Math.max(...acts));
  return el('li', { class: 'example' }, (example.tokens ?? []).map((text, i) => {
    const share = Math.max(0, acts[i] ?? 0) / most;
    const span = el('span', { class: i === peak ? 'token act peak' : 'token act', title: `${num(acts[i] ?? 0)}`, 'data-act': acts[i] ?? 0 }, token(text));
    span.style.background = `rgb(245 158 11 / ${share.toFixed(3)})`;   // CSSOM, which the page's CSP allows (a style attribute it does not)
    return span;
  }));
}

function select(id) {
  state.selected = id;
  writeUrl();
  highlight();
  showNode();
  showSteerFeatures();
}

function togglePin(id) {
  if (state.pinned.has(id)) {
    state.pinned.delete(id);
    // An unpinned node leaves its supernode (as on Neuronpedia); a group of fewer than two is dissolved.
    state.supernodes = state.supernodes.map(([name, ...ids]) => [name, ...ids.filter(m => m !== id)]).filter(g => g.length > 2);
  } else state.pinned.add(id);
  writeUrl();
  highlight();
  showNode();
  showSteerFeatures();
  showSubgraph();
}

/** pinnedIds and clickedId live in the URL, as on Neuronpedia, so a view can be shared or reloaded. */
/** A label the reader gave a node, replacing its automatic clerp. */
function setLabel(node, text) {
  state.labels.set(node.node_id, text);
  node.clerp = text;
}

/**
 * Neuronpedia's feature id of a node, which its clerps parameter is keyed by: layer, the node's
 * feature number and position (node_id for nodes without a feature number).
 */
const featureIdOf = node => node.feature !== undefined && node.feature !== null ? `${node.layer}_${node.feature}_${node.ctx_idx}` : node.node_id;

/** clerps=[[feature id or node id, label], …]: the nodes it names in this graph, with their labels. */
function readClerps(text) {
  let entries;
  try {
    entries = JSON.parse(text ?? '[]');
  } catch {
    return [];
  }
  if (!Array.isArray(entries)) return [];
  const byFeatureId = new Map(state.graph.nodes.map(n => [featureIdOf(n), n]));
  return entries.filter(e => Array.isArray(e) && e.length === 2 && e.every(x => typeof x === 'string'))
    .map(([key, label]) => [byFeatureId.get(key) ?? state.byId.get(key), label]).filter(([node]) => node);
}

/**
 * The view a graph file carries in its qParams (circuit-tracer's server saves it there), as URL
 * parameters: used when the URL itself names no view.
 */
function viewParameters() {
  const query = new URLSearchParams(location.search);
  const viewNames = ['pinnedIds', 'supernodes', 'clickedId', 'linkType', 'clerps'];
  const saved = state.graph.qParams;
  if (viewNames.some(name => query.has(name)) || !saved || typeof saved !== 'object') return query;
  const pinned = Array.isArray(saved.pinnedIds) ? saved.pinnedIds.join(',') : saved.pinnedIds;
  if (pinned) query.set('pinnedIds', String(pinned));
  if (Array.isArray(saved.supernodes) && saved.supernodes.length) query.set('supernodes', JSON.stringify(saved.supernodes));
  if (saved.clickedId) query.set('clickedId', String(saved.clickedId));
  if (saved.linkType) query.set('linkType', String(saved.linkType));
  return query;
}

function writeUrl() {
  const query = new URLSearchParams(location.search);
  if (state.pinned.size) query.set('pinnedIds', [...state.pinned].join(',')); else query.delete('pinnedIds');
  if (state.selected) query.set('clickedId', state.selected); else query.delete('clickedId');
  if (state.supernodes.length) query.set('supernodes', JSON.stringify(state.supernodes)); else query.delete('supernodes');
  if (state.pruning < 1) query.set('pruningThreshold', String(state.pruning)); else query.delete('pruningThreshold');
  if (state.density < 1) query.set('densityThreshold', String(state.density)); else query.delete('densityThreshold');
  if (state.linkType !== 'both') query.set('linkType', state.linkType); else query.delete('linkType');
  if (state.labels.size) query.set('clerps', JSON.stringify([...state.labels].map(([id, text]) => [featureIdOf(state.byId.get(id)), text])));
  else query.delete('clerps');
  const steering = steerParameter();
  if (steering) query.set('steer', steering); else query.delete('steer');
  const search = query.toString();
  history.replaceState(null, '', `${location.pathname}${search ? `?${search}` : ''}`);
}

function readUrl() {
  const query = viewParameters();
  for (const [node, text] of readClerps(query.get('clerps'))) setLabel(node, text);
  for (const id of (query.get('pinnedIds') ?? '').split(',').filter(Boolean)) {
    if (state.byId.has(id)) state.pinned.add(id);
    // A feature address from another graph (e.g. a tour step's) is kept for steering rather than dropped.
    else if (/^\d+_\d+_\d+$/.test(id)) readSteerParameter(`${id}_10`);
  }
  readSteerParameter(query.get('steer'));
  state.supernodes = readSupernodes(query.get('supernodes'));
  const pruning = Number(query.get('pruningThreshold'));
  if (query.has('pruningThreshold') && pruning > 0 && pruning <= 1) state.pruning = pruning;
  const density = Number(query.get('densityThreshold'));
  if (query.has('densityThreshold') && density >= 0 && density <= 1) state.density = density;
  if (['incoming', 'outgoing', 'both'].includes(query.get('linkType'))) state.linkType = query.get('linkType');
  const clicked = query.get('clickedId');
  state.selected = clicked && state.byId.has(clicked) ? clicked : null;
}

/**
 * A node slider (state field and element id): pruning keeps the most influential nodes, density
 * hides the features that fire too often to read; hidden nodes take their edges with them.
 */
function wireNodeSlider(name) {
  const slider = document.getElementById(name);
  const shown = document.getElementById(`${name}-value`);
  slider.value = String(state[name]);
  shown.textContent = num(state[name], 2);
  slider.addEventListener('input', () => {
    state[name] = Number(slider.value);
    shown.textContent = num(state[name], 2);
    writeUrl();
    bucketEdges();
    highlight();
  });
}

/**
 * The densities of the graph's features, from their dashboards in one request (POST
 * /features/densities); without dashboards the slider is disabled and says why.
 */
async function loadDensities(settings) {
  const slider = document.getElementById('density');
  if (!settings.feature_dashboards) {
    slider.disabled = true;
    slider.parentElement.title = 'No feature dashboards are served, so densities are unknown and nothing hides.';
    return;
  }
  const keys = [...new Set(state.graph.nodes.filter(n => kindOf(n) === 'feature').map(n => { const { layer, index } = featureAddress(n); return `${layer}_${index}`; }))];
  const { data } = await json('POST', '/features/densities', { features: keys.map(key => key.split('_').map(Number)) });
  keys.forEach((key, i) => { if (typeof data.densities[i] === 'number') state.densities.set(key, data.densities[i]); });
  bucketEdges();
  highlight();
}

function setThreshold(slider) {
  // The slider is quadratic in |weight| so the weak end, where most edges are, gets most of its travel.
  state.threshold = state.maxWeight * (Number(slider.value) / Number(slider.max)) ** 2;
  document.getElementById('edge-threshold').textContent = num(state.threshold);
  bucketEdges();
  highlight();
}

// ---- Subgraph -----------------------------------------------------------------------------

/**
 * Replacement and completeness scores of the graph with only the pinned features kept, as
 * Neuronpedia's graph page computes a subgraph's: every unpinned feature's outgoing weights are
 * added to the error node at its layer and position (signed, before absolute values), and its
 * edges dropped; then, with Â the row-normalised |A| (rows are targets) and w the logits'
 * probabilities, influence I = w·Â + w·Â² + …, replacement = ΣI(tokens) / (ΣI(tokens) + ΣI(errors)),
 * completeness = Σᵢ (1 − Σ_{j∈errors} Âᵢⱼ)(Iᵢ + wᵢ) / Σᵢ (Iᵢ + wᵢ). With nothing pinned, the whole graph's.
 */
function subgraphScores(graph, pinned) {
  const kind = new Map(graph.nodes.map(n => [n.node_id, kindOf(n)]));
  const errorAt = new Map(graph.nodes.filter(n => kindOf(n) === 'error').map(n => [`${n.layer}@${n.ctx_idx}`, n.node_id]));
  const dropped = id => pinned.size > 0 && kind.get(id) === 'feature' && !pinned.has(id);
  const inputs = new Map(graph.nodes.map(n => [n.node_id, new Map()]));   // target → source → signed weight
  for (const link of graph.links) {
    if (!kind.has(link.source) || !kind.has(link.target) || dropped(link.target)) continue;
    const node = state.byId.get(link.source);
    const source = dropped(link.source) ? errorAt.get(`${node.layer}@${node.ctx_idx}`) : link.source;
    if (source === undefined) continue;
    const row = inputs.get(link.target);
    row.set(source, (row.get(source) ?? 0) + link.weight);
  }
  // Â: each target's absolute input weights as fractions of their sum.
  const normalised = new Map();
  for (const [target, row] of inputs) {
    const total = Math.max(1e-10, [...row.values()].reduce((sum, weight) => sum + Math.abs(weight), 0));
    normalised.set(target, [...row].map(([source, weight]) => [source, Math.abs(weight) / total]));
  }
  const logitWeight = new Map(graph.nodes.filter(n => kindOf(n) === 'logit').map(n => [n.node_id, n.token_prob ?? 0]));
  const influence = new Map(graph.nodes.map(n => [n.node_id, 0]));
  let current = new Map(logitWeight);
  for (let step = 0; current.size > 0; step++) {
    if (step === 1000) throw new Error('influence did not converge: the graph has a cycle');
    const next = new Map();
    for (const [target, amount] of current) {
      for (const [source, fraction] of normalised.get(target)) next.set(source, (next.get(source) ?? 0) + amount * fraction);
    }
    for (const [id, amount] of next) influence.set(id, influence.get(id) + amount);
    current = new Map([...next].filter(([, amount]) => amount !== 0));
  }
  const sumOver = which => graph.nodes.filter(n => kindOf(n) === which).reduce((sum, n) => sum + influence.get(n.node_id), 0);
  const tokens = sumOver('embedding'), errors = sumOver('error');
  let weighted = 0, total = 0;
  for (const node of graph.nodes) {
    const fromErrors = normalised.get(node.node_id).reduce((sum, [source, fraction]) => sum + (kind.get(source) === 'error' ? fraction : 0), 0);
    const weight = influence.get(node.node_id) + (logitWeight.get(node.node_id) ?? 0);
    weighted += (1 - fromErrors) * weight;
    total += weight;
  }
  const finite = value => Number.isFinite(value) ? value : 0;
  return { replacement: finite(tokens / (tokens + errors)), completeness: finite(weighted / total) };
}

function readSupernodes(text) {
  try {
    const groups = JSON.parse(text ?? '[]');
    return Array.isArray(groups) ? groups.filter(g => Array.isArray(g) && g.length > 2 && g.every(x => typeof x === 'string'))
      .map(([name, ...ids]) => [name, ...ids.filter(id => state.pinned.has(id))]).filter(g => g.length > 2) : [];
  } catch {
    return [];
  }
}

const supernodeOf = id => state.supernodes.find(([, ...ids]) => ids.includes(id))?.[0];

/** The pinned nodes (checkable, to group), the supernodes, and the subgraph's scores beside the whole graph's. */
function showSubgraph() {
  const pinned = [...state.pinned].filter(id => state.byId.has(id));
  document.getElementById('subgraph-hint').hidden = pinned.length > 0;
  document.getElementById('supernode-form').hidden = pinned.length < 2;
  const scoresList = document.getElementById('subgraph-scores');
  if (pinned.length) {
    const sub = subgraphScores(state.graph, new Set(pinned));
    const whole = state.graph.metadata.scores ?? {};
    scoresList.dataset.replacement = String(sub.replacement);
    scoresList.dataset.completeness = String(sub.completeness);
    scoresList.replaceChildren(
      el('dt', {}, 'replacement'), el('dd', { class: 'replacement' }, `${num(sub.replacement, 4)} (graph ${num(whole.replacement_score, 4)})`),
      el('dt', {}, 'completeness'), el('dd', { class: 'completeness' }, `${num(sub.completeness, 4)} (graph ${num(whole.completeness_score, 4)})`));
  } else {
    scoresList.replaceChildren();
  }
  document.getElementById('subgraph-nodes').replaceChildren(...pinned.map(id => el('li', { 'data-id': id },
    el('label', {}, el('input', { type: 'checkbox', class: 'group-check', value: id }), ' ', label(state.byId.get(id))),
    supernodeOf(id) ? el('span', { class: 'muted' }, ` in ${supernodeOf(id)}`) : null)));
  document.getElementById('supernodes').replaceChildren(...state.supernodes.map(([name, ...ids], g) => el('li', { 'data-name': name },
    el('b', {}, name), ` (${ids.length}) `,
    el('button', { type: 'button', class: 'link', onclick: () => { state.supernodes.splice(g, 1); writeUrl(); showSubgraph(); drawNodeLabels(); } }, 'ungroup'))));
  drawSubgraphDiagram(pinned);
}

/**
 * The subgraph as Neuronpedia's subgraph view reduces it: one box per supernode and per pinned node
 * outside one, and between boxes the share of the target's input that the source provides. For a
 * pinned target t with input links A (|A| summed over the whole graph: inputAbsSum) and external
 * input E (links from outside its own supernode), each link s→t adds (w / E) · u(t), where u(t) =
 * E / inputAbsSum normalised over t's box; links within a box are dropped.
 */
function subgraphReduction(pinned) {
  const boxOf = id => { const name = supernodeOf(id); return name === undefined ? id : `supernode:${name}`; };
  const external = new Map(), weighting = new Map(), boxWeighting = new Map();
  for (const id of pinned) {
    const inputs = state.incoming.get(id) ?? [];
    const all = inputs.reduce((sum, l) => sum + Math.abs(l.weight), 0);
    const outside = inputs.reduce((sum, l) => sum + (supernodeOf(id) !== undefined && boxOf(l.source) === boxOf(id) ? 0 : Math.abs(l.weight)), 0);
    external.set(id, outside);
    weighting.set(id, outside && all ? outside / all : 0);
    boxWeighting.set(boxOf(id), (boxWeighting.get(boxOf(id)) ?? 0) + weighting.get(id));
  }
  const shown = new Set(pinned);
  const links = new Map();
  for (const id of pinned) {
    const share = boxWeighting.get(boxOf(id)) > 0 ? weighting.get(id) / boxWeighting.get(boxOf(id)) : 0;
    for (const link of state.incoming.get(id) ?? []) {
      if (!shown.has(link.source) || boxOf(link.source) === boxOf(id)) continue;
      const key = `${boxOf(link.source)}\u0000${boxOf(id)}`;
      const added = external.get(id) ? (link.weight / external.get(id)) * share : 0;
      links.set(key, (links.get(key) ?? 0) + added);
    }
  }
  const boxes = new Map();
  for (const id of pinned) {
    const box = boxes.get(boxOf(id)) ?? { id: boxOf(id), name: supernodeOf(id), members: [] };
    box.members.push(state.byId.get(id));
    boxes.set(box.id, box);
  }
  return {
    boxes: [...boxes.values()],
    links: [...links].map(([key, weight]) => { const [source, target] = key.split('\u0000'); return { source, target, weight }; }),
  };
}

/** The reduced subgraph drawn: boxes at their members' mean position and layer, links as wide as their share. */
function drawSubgraphDiagram(pinned) {
  const svg = d3.select('#subgraph-diagram');
  svg.selectAll('*').remove();
  svg.attr('hidden', pinned.length ? null : '');
  if (!pinned.length) return;
  const { boxes, links } = subgraphReduction(pinned);
  const mean = (box, of) => box.members.reduce((sum, n) => sum + of(n), 0) / box.members.length;
  const width = document.getElementById('subgraph-panel').clientWidth - 24, boxWidth = 92, boxHeight = 30, rowGap = 50;
  const rows = [...new Set(boxes.map(b => Math.round(mean(b, rowOf) * 10) / 10))].sort((a, b) => b - a);
  const positions = d3.extent(boxes, b => mean(b, n => n.ctx_idx));
  const x = d3.scaleLinear().domain(positions[0] === positions[1] ? [positions[0] - 1, positions[1] + 1] : positions)
    .range([boxWidth / 2 + 2, Math.max(boxWidth, width - boxWidth / 2 - 2)]);
  // Boxes of one row spread apart where their positions would make them overlap.
  const placed = [];
  for (const [r, row] of rows.entries()) {
    const inRow = boxes.filter(b => Math.round(mean(b, rowOf) * 10) / 10 === row).sort((a, b) => mean(a, n => n.ctx_idx) - mean(b, n => n.ctx_idx));
    let right = -Infinity;
    for (const box of inRow) {
      box.x = Math.max(x(mean(box, n => n.ctx_idx)), right + boxWidth + 4);
      box.y = 10 + boxHeight / 2 + r * rowGap;
      right = box.x;
      placed.push(box);
    }
  }
  const byId = new Map(placed.map(b => [b.id, b]));
  svg.attr('width', Math.max(width, d3.max(placed, b => b.x) + boxWidth / 2 + 2)).attr('height', rows.length * rowGap + 10);
  svg.append('g').selectAll('line').data(links.filter(l => Math.abs(l.weight) > 0)).join('line')
    .attr('class', 'subgraph-link')
    .attr('x1', l => byId.get(l.source).x).attr('y1', l => byId.get(l.source).y)
    .attr('x2', l => byId.get(l.target).x).attr('y2', l => byId.get(l.target).y)
    .attr('stroke', l => l.weight >= 0 ? colours.positive : colours.negative)
    .attr('stroke-width', l => 0.6 + 6 * Math.min(1, Math.abs(l.weight)))
    .attr('data-source', l => l.source).attr('data-target', l => l.target).attr('data-weight', l => String(l.weight))
    .append('title').text(l => `${num(100 * l.weight, 1)}% of the input of ${byId.get(l.target).name ?? label(byId.get(l.target).members[0])}`);
  const box = svg.append('g').selectAll('g').data(placed).join('g')
    .attr('class', b => b.name === undefined ? 'subgraph-box' : 'subgraph-box supernode')
    .attr('data-id', b => b.id)
    .attr('transform', b => `translate(${b.x - boxWidth / 2},${b.y - boxHeight / 2})`)
    .on('click', (event, b) => select(b.members[0].node_id));
  box.append('rect').attr('width', boxWidth).attr('height', boxHeight).attr('rx', 5);
  box.append('text').attr('x', 5).attr('y', 12).text(b => (b.name ?? address(b.members[0])).slice(0, 16));
  box.append('text').attr('class', 'muted').attr('x', 5).attr('y', 25)
    .text(b => (b.name === undefined ? b.members[0].clerp ?? '' : `${b.members.length} nodes`).slice(0, 16));
  box.append('title').text(b => b.name === undefined ? label(b.members[0]) : `${b.name}: ${b.members.map(label).join('; ')}`);
}

/** Groups the checked pinned nodes into a named supernode (a node belongs to one at most). */
function groupChecked(event) {
  event.preventDefault();
  const ids = [...document.querySelectorAll('#subgraph-nodes .group-check:checked')].map(box => box.value);
  const name = document.getElementById('supernode-name').value.trim();
  if (ids.length < 2 || !name) return;
  state.supernodes = state.supernodes.map(([n, ...members]) => [n, ...members.filter(m => !ids.includes(m))]).filter(g => g.length > 2);
  state.supernodes.push([name, ...ids]);
  document.getElementById('supernode-name').value = '';
  writeUrl();
  showSubgraph();
  drawNodeLabels();
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

const steerKey = (layer, index, position) => `${layer}_${index}_${position}`;

/**
 * The features to steer: the pinned and selected feature nodes, and features added by address
 * (any layer, index and position, in this graph or not). Each has its own ablate or delta.
 */
function steerEntries() {
  const entries = new Map();
  const nodes = [...state.pinned, ...(state.selected ? [state.selected] : [])].map(id => state.byId.get(id)).filter(n => n && kindOf(n) === 'feature');
  for (const node of nodes) {
    const { layer, index } = featureAddress(node);
    const key = steerKey(layer, index, node.ctx_idx);
    entries.set(key, state.steer.get(key) ?? { layer, index, position: node.ctx_idx, ablate: true, delta: 10, extra: false });
  }
  for (const [key, entry] of state.steer) if (entry.extra) entries.set(key, entry);
  return entries;
}

/** Keeps an entry's own settings (and every added one) while the page lives and in the URL. */
function setSteer(key, entry) {
  state.steer.set(key, entry);
  writeUrl();
  showSteerFeatures();
}

function showSteerFeatures() {
  const entries = steerEntries();
  const rows = [...entries].map(([key, entry]) => {
    const node = state.byId.get(key);
    const name = node ? label(node) : `L${entry.layer} #${entry.index} @${entry.position} (not in this graph)`;
    const mode = el('select', { 'aria-label': 'how to steer', onchange: e => setSteer(key, { ...entry, ablate: e.target.value === 'ablate' }) },
      el('option', { value: 'ablate', selected: entry.ablate }, 'ablate'),
      el('option', { value: 'delta', selected: !entry.ablate }, 'add'));
    const delta = el('input', { type: 'number', step: 'any', value: entry.delta, class: 'delta', 'aria-label': 'delta', disabled: entry.ablate,
      onchange: e => setSteer(key, { ...entry, delta: Number(e.target.value) }) });
    const remove = entry.extra
      ? el('button', { type: 'button', class: 'remove', title: 'remove', onclick: () => { state.steer.delete(key); writeUrl(); showSteerFeatures(); } }, '×')
      : null;
    return el('li', { 'data-key': key }, el('span', { class: 'steer-name', title: name }, name), mode, delta, remove);
  });
  document.getElementById('steer-features').replaceChildren(...(rows.length ? rows : [el('li', { class: 'muted' }, 'No feature chosen.')]));
  document.getElementById('steer-run').disabled = rows.length === 0;
}

/** Adds a feature by its address from the form (layer, index, position of the prompt). */
function addSteerFeature(event) {
  event.preventDefault();
  const data = new FormData(event.target);
  const [layer, index, position] = ['layer', 'index', 'position'].map(name => Number(data.get(name)));
  const key = steerKey(layer, index, position);
  setSteer(key, { layer, index, position, ablate: false, delta: Number(data.get('delta')), extra: true });
}

/** steer=layer_index_position_(ablate|delta),… in the URL: every added feature and every changed setting. */
function steerParameter() {
  return [...state.steer].map(([key, e]) => `${key}_${e.ablate ? 'ablate' : e.delta}${e.extra ? '' : '_node'}`).join(',');
}

function readSteerParameter(text) {
  for (const item of (text ?? '').split(',').filter(Boolean)) {
    const [layer, index, position, setting, node] = item.split('_');
    const numbers = [layer, index, position].map(Number);
    if (numbers.some(n => !Number.isInteger(n) || n < 0) || (setting !== 'ablate' && !Number.isFinite(Number(setting)))) continue;
    state.steer.set(steerKey(...numbers), { layer: numbers[0], index: numbers[1], position: numbers[2],
      ablate: setting === 'ablate', delta: setting === 'ablate' ? 10 : Number(setting), extra: node !== 'node' });
  }
}

function steerRequest(modelId, form) {
  const data = new FormData(form);
  return {
    model_id: modelId,
    prompt: state.graph.metadata.prompt,
    n_tokens: Number(data.get('n_tokens')),
    top_k: 5,
    temperature: 0,
    features: [...steerEntries().values()].map(e => ({
      layer: e.layer, index: e.index,
      token_active_position: e.position,
      steer_position: e.position,
      ...(e.ablate ? { ablate: true } : { delta: e.delta }),
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

/** Under graphfunctions view there is no model to steer: the panel says where to steer instead. */
function withoutModel() {
  const panel = document.getElementById('steer-panel');
  for (const part of panel.children) if (part.tagName !== 'H2') part.hidden = true;
  panel.append(el('p', { id: 'steer-unavailable', class: 'muted' }, 'This viewer shows graph files only (graphfunctions view), without a model. ',
      'To steer, serve the graph\'s model with the local host (scripts/run.sh) and open the file there (Open file).'));
  document.querySelector('header.bar a[href="/viewer"]').textContent = 'Graphs';
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

// ---- Opening a file -----------------------------------------------------------------------

/** The page address for graphs opened from a file: no job can have it (a slug may not start with '.'). */
const fileSlug = '.file';

/** This script's version (?v=), which the schema check's module is imported with, so it is never stale. */
const assetVersion = new URL(document.currentScript.src).searchParams.get('v');

/**
 * A file's first problem, or null: first against Neuronpedia's graph schema (a module loaded on the
 * first file), then what the schema cannot say (docs/graph-format.md): every position within the
 * prompt, every link between nodes of the file.
 */
async function fileProblem(graph) {
  const { schemaProblem } = await import(`/viewer/assets/graph-schema-check.js?v=${assetVersion}`);
  return await schemaProblem(graph) ?? graphProblem(graph);
}

/**
 * What the page needs of a schema-valid graph that the schema cannot say: at least one node, every
 * position within the prompt, a layer number on every node but the embeddings, links between
 * nodes of the file. The first problem, named by its path, or null.
 */
function graphProblem(graph) {
  const positions = graph.metadata.prompt_tokens.length;
  if (graph.nodes.length === 0) return 'nodes must be a non-empty list';
  const ids = new Set();
  for (const [i, node] of graph.nodes.entries()) {
    if (node.ctx_idx < 0 || node.ctx_idx >= positions) return `nodes[${i}].ctx_idx must be a position of the prompt (0-${positions - 1})`;
    if (node.feature_type !== 'embedding' && !Number.isFinite(Number(node.layer))) return `nodes[${i}].layer must be a layer number`;
    ids.add(node.node_id);
  }
  for (const [i, link] of graph.links.entries()) {
    if (!ids.has(link.source)) return `links[${i}].source '${link.source}' is not a node`;
    if (!ids.has(link.target)) return `links[${i}].target '${link.target}' is not a node`;
  }
  return null;
}

/** The page's message, as an error over the graph area. */
function showError(text) {
  const message = document.getElementById('graph-message');
  message.hidden = false;
  message.className = 'message overlay error';
  message.textContent = text;
}

/** Reads a dropped or chosen file; a graph opens in this page (through the file address, so its view is its own). */
async function openFile(file) {
  let graph;
  try {
    graph = JSON.parse(await file.text());
  } catch (error) {
    showError(`${file.name} is not JSON: ${error.message}`);
    return;
  }
  const problem = await fileProblem(graph);
  if (problem) {
    showError(`${file.name} is not a graph this viewer can draw: ${problem}`);
    return;
  }
  if (state.graph) {   // a second file: carried to a clean page at the file address (within the tab's storage quota)
    try {
      sessionStorage.setItem('graphfunctions-file', JSON.stringify(graph));
    } catch {
      showError(`${file.name} is too large to carry over: open it on a fresh page, /graphs/${fileSlug}`);
      return;
    }
    location.assign(`/graphs/${fileSlug}`);
    return;
  }
  history.replaceState(null, '', `/graphs/${fileSlug}`);
  show(graph, file.name);
}

function listenForFiles() {
  document.getElementById('open-file').addEventListener('change', event => { if (event.target.files[0]) openFile(event.target.files[0]); });
  document.body.addEventListener('dragover', event => event.preventDefault());
  document.body.addEventListener('drop', event => {
    event.preventDefault();
    if (event.dataTransfer.files[0]) openFile(event.dataTransfer.files[0]);
  });
}

// ---- Showing a graph ----------------------------------------------------------------------

/** Draws a graph and wires the page to it (once per page). */
function show(graph, source) {
  const message = document.getElementById('graph-message');
  const started = performance.now();
  state.graph = graph;
  index(graph);
  const area = document.getElementById('canvas-area');
  const frame = place(graph, { width: area.clientWidth, height: area.clientHeight });
  readUrl();
  showMetadata(graph);
  if (source) document.getElementById('graph-title').textContent = `${source} · ${graph.metadata.scan ?? ''}`;
  bucketEdges();
  drawScene(graph, frame);
  highlight();
  showNode();
  showSteerFeatures();
  showSubgraph();
  document.getElementById('supernode-form').addEventListener('submit', groupChecked);
  wireNodeSlider('pruning');
  wireNodeSlider('density');
  const slider = document.getElementById('edge-filter');
  slider.addEventListener('input', () => setThreshold(slider));
  const linkType = document.getElementById('link-type');
  linkType.value = state.linkType;
  linkType.addEventListener('change', () => { state.linkType = linkType.value; writeUrl(); highlight(); });
  document.getElementById('steer-form').addEventListener('submit', steer);
  serverSettings().then(settings => {
    if (settings.graph_files) withoutModel();
    return loadDensities(settings);
  }).then(() => { document.body.dataset.densities = 'loaded'; }, error => {
    document.getElementById('density').parentElement.title = `Densities could not be read: ${error.message}`;
    document.body.dataset.densities = 'failed';
  });
  document.getElementById('steer-add').addEventListener('submit', addSteerFeature);
  document.getElementById('search').addEventListener('input', showSearch);
  window.addEventListener('resize', drawEdgesSoon);
  message.hidden = true;
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  document.body.dataset.ready = 'true';
}

async function main() {
  const message = document.getElementById('graph-message');
  listenForFiles();
  try {
    if (slugOfPage() === fileSlug) {
      const kept = sessionStorage.getItem('graphfunctions-file');
      sessionStorage.removeItem('graphfunctions-file');
      if (kept) { show(JSON.parse(kept), 'file'); return; }
      message.textContent = 'Open a graph JSON file (Open file, above) or drop one here: one made by this service, its CLI, circuit-tracer or Neuronpedia.';
      document.body.dataset.waitingForFile = 'true';
      return;
    }
    show(await loadGraph(slugOfPage()));
    try {
      await loadAnnotations();
      document.body.dataset.annotations = 'loaded';
    } catch (error) {
      // The graph stays readable without its saved labels; the reader is told why they are missing.
      document.getElementById('subgraph-hint').textContent = `Saved labels and pins could not be read: ${error.message}`;
      document.body.dataset.annotations = 'failed';
    }
  } catch (error) {
    showError(error.message);
  }
}

main();
