// The jobs page: recent graph jobs with their live Durable progress, and a form that starts one.
'use strict';

const { el, json, serverSettings } = GF;
// Twice a second while a job runs (its progress moves); every 5 s otherwise: each poll lists jobs from Durable.
const activePollMilliseconds = 500;
const idlePollMilliseconds = 5000;
const numberFields = ['max_feature_nodes', 'node_threshold', 'edge_threshold', 'max_n_logits', 'desired_logit_prob', 'batch_size'];

/** The request /generate-graph takes, from the form; the slug is generated when left empty. */
function graphRequest(form, modelId) {
  const data = new FormData(form);
  const request = { model_id: modelId, prompt: data.get('prompt') };
  const slug = String(data.get('slug_identifier') || '').trim();
  if (slug) request.slug_identifier = slug;
  for (const name of numberFields) request[name] = Number(data.get(name));
  return request;
}

async function startGraph(event) {
  event.preventDefault();
  const form = event.target;
  const message = document.getElementById('form-message');
  const { model_id: modelId } = await serverSettings();
  message.className = 'message';
  message.textContent = 'Starting…';
  try {
    // The job runs in the background; this page follows it through GET /jobs.
    const { data } = await json('POST', '/generate-graph', graphRequest(form, modelId), { Prefer: 'respond-async' });
    message.textContent = `Started ${data.id}.`;
    await poll();
  } catch (error) {
    message.className = 'message error';
    message.textContent = error.message;
  }
}

function progressCell(job) {
  const status = job.customStatus;
  if (!status) return el('td', { class: 'progress' }, job.runtimeStatus === 'Pending' ? 'queued' : '');
  const total = status.features_to_visit;
  return el('td', { class: 'progress', 'data-visited': status.features_visited, 'data-phase': status.phase },
    el('span', { class: 'phase' }, status.phase),
    total > 0 ? el('progress', { max: total, value: status.features_visited }) : null,
    total > 0 ? el('span', { class: 'count' }, `${status.features_visited} / ${total}`) : null);
}

function actions(job) {
  const finished = !['Pending', 'Running', 'Suspended'].includes(job.runtimeStatus);
  const cell = el('td', { class: 'actions' });
  if (job.runtimeStatus === 'Completed' && !job.delivered) {
    cell.append(el('button', { type: 'button', onclick: () => GF.download(`/jobs/${encodeURIComponent(job.id)}/result`, `${job.id}.json`) }, 'JSON'));
  }
  if (!finished) {
    cell.append(el('button', { type: 'button', onclick: () => json('POST', `/jobs/${encodeURIComponent(job.id)}/terminate?reason=from+the+jobs+page`).then(refresh, report) }, 'Stop'));
  } else {
    cell.append(el('button', { type: 'button', onclick: () => json('DELETE', `/jobs/${encodeURIComponent(job.id)}`).then(refresh, report) }, 'Delete'));
  }
  return cell;
}

function row(job) {
  const viewable = job.runtimeStatus === 'Completed' && !job.delivered;
  const elapsed = job.customStatus ? `${job.customStatus.elapsed_s.toFixed(1)} s` : '';
  return el('tr', { 'data-job-id': job.id, 'data-state': job.runtimeStatus },
    el('td', {}, viewable ? el('a', { href: `/graphs/${encodeURIComponent(job.id)}` }, job.id) : job.id),
    el('td', { class: 'prompt', title: job.prompt ?? '' }, job.prompt ?? ''),
    el('td', { class: `state ${job.runtimeStatus.toLowerCase()}`, title: job.failure ?? '' },
      job.delivered ? `${job.runtimeStatus} (uploaded)` : job.runtimeStatus),
    progressCell(job),
    el('td', {}, elapsed),
    el('td', {}, new Date(job.createdTime).toLocaleTimeString()),
    actions(job));
}

function report(error) {
  const message = document.getElementById('jobs-message');
  message.className = 'message error';
  message.textContent = error.message;
}

/** Refreshes the table; returns whether a job is still pending or running. */
async function refresh() {
  const { data } = await json('GET', '/jobs');
  const body = document.querySelector('#jobs tbody');
  body.replaceChildren(...(data.jobs.length ? data.jobs.map(row) : [el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No graph jobs yet.'))]));
  document.getElementById('jobs-message').textContent = '';
  return data.jobs.some(job => job.runtimeStatus === 'Running' || job.runtimeStatus === 'Pending');
}

let nextPoll = null;

/** Polls now and again later; a job started from the form calls it too, so the fast pace resumes at once. */
async function poll() {
  clearTimeout(nextPoll);
  let active = true;
  try {
    active = await refresh();
  } catch (error) {
    report(error);
  }
  nextPoll = setTimeout(poll, active ? activePollMilliseconds : idlePollMilliseconds);
}

async function main() {
  const settings = await serverSettings();
  document.getElementById('served-model').textContent = `serving ${settings.model_id}`;
  document.getElementById('graph-form').addEventListener('submit', startGraph);
  poll();
}

main();
