// The jobs page: recent graph jobs with their live Durable progress, and a form that starts one,
// previewing the prompt's tokens and next tokens as the user types.
'use strict';

const { el, json, num, serverSettings, token } = GF;
// Twice a second while a job runs (its progress moves); every 5 s otherwise: each poll lists jobs from Durable.
const activePollMilliseconds = 500;
const idlePollMilliseconds = 5000;
// The preview waits for a pause in typing, so a sentence is one forward pass, not one per key.
const previewDelayMilliseconds = 300;
// The request body whose defaults and ranges the form shows (components.schemas of /openapi.json).
const graphRequestSchema = 'GenerateGraphRequest';

const form = () => document.getElementById('graph-form');
const numberInputs = () => [...form().querySelectorAll('input[type=number]')];

/** The request /generate-graph takes, from the form; the slug is generated when left empty. */
function graphRequest(modelId) {
  const data = new FormData(form());
  const request = { model_id: modelId, prompt: data.get('prompt') };
  const slug = String(data.get('slug_identifier') || '').trim();
  if (slug) request.slug_identifier = slug;
  for (const input of numberInputs()) request[input.name] = Number(input.value);
  // Typed as the model reads it: a leading space is part of the token (" Paris").
  const target = String(data.get('target') ?? ''), minus = String(data.get('minus') ?? '');
  if (target) request.attribution_targets = [minus ? { token: target, minus } : { token: target }];
  return request;
}

/**
 * The number fields' defaults, ranges and descriptions, from the request schema the API serves:
 * the one table in RequestSchema.cs, so the form cannot drift from what the API assumes.
 */
async function applySchemaDefaults() {
  const response = await fetch('/openapi.json');
  if (!response.ok) throw new Error(`the API's request schema could not be read: ${response.status} ${response.statusText}`);
  const fields = (await response.json()).components.schemas[graphRequestSchema].properties;
  for (const input of numberInputs()) {
    const field = fields[input.name];
    input.value = String(field.default);
    if (field.minimum !== undefined) input.min = String(field.minimum);
    if (field.maximum !== undefined) input.max = String(field.maximum);
    input.step = field.type === 'integer' ? '1' : 'any';
    input.title = field.description;
  }
}

// ---- Prompt preview -------------------------------------------------------------------------

let previewTimer = null;
let previewSerial = 0;

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, previewDelayMilliseconds);
}

/** A number field's value when it is a valid one; otherwise omitted, so the API's default applies. */
function validNumber(name) {
  const input = form().elements[name];
  return input.value !== '' && input.checkValidity() ? Number(input.value) : undefined;
}

/** The prompt's tokens and the graph's logit targets (POST /forward-pass with the form's logit settings). */
async function preview() {
  const prompt = form().elements.prompt.value;
  const serial = ++previewSerial;   // an answer to an older prompt is dropped
  const section = document.getElementById('preview');
  if (!prompt) {
    showPreview(null);
    return;
  }
  section.dataset.state = 'loading';
  try {
    const { model_id: modelId, token_limit: limit } = await serverSettings();
    const { data } = await json('POST', '/forward-pass', {
      model_id: modelId, prompt, max_n_logits: validNumber('max_n_logits'), desired_logit_prob: validNumber('desired_logit_prob'),
    });
    if (serial === previewSerial) showPreview(data, limit);
  } catch (error) {
    if (serial !== previewSerial) return;
    showPreview(null);
    section.dataset.state = 'error';
    const message = document.getElementById('preview-message');
    message.className = 'message error';
    message.textContent = `Preview unavailable: ${error.message}`;
  }
}

/**
 * Shows a /forward-pass answer (null: nothing): each token with its whitespace made visible and
 * the ones the model never saw in training marked, the next tokens, the warnings, the length.
 */
function showPreview(answer, limit) {
  const section = document.getElementById('preview');
  const unseen = new Set(answer?.unseen_positions ?? []);
  document.getElementById('preview-tokens').replaceChildren(...(answer?.input_tokens ?? []).map((text, position) =>
    el('span', {
      class: unseen.has(position) ? 'token unseen' : 'token', 'data-position': position,
      title: unseen.has(position) ? `position ${position}: never seen in training` : `position ${position}`,
    }, token(text))));
  document.getElementById('preview-next').replaceChildren(...(answer?.salient_logits ?? []).map(logit =>
    el('li', {}, el('span', { class: 'token' }, token(logit.token)), el('span', { class: 'prob' }, num(logit.probability)))));
  // A warning quotes its token as decoded: a line break or tab in it is made visible too.
  document.getElementById('preview-warnings').replaceChildren(...(answer?.warnings ?? []).map(warning => el('li', {}, token(warning))));
  const message = document.getElementById('preview-message');
  message.className = 'message';
  message.textContent = '';
  const count = document.getElementById('preview-count');
  count.textContent = '';
  if (answer) {
    const counted = answer.input_tokens.length - 1;   // the limit does not count the BOS
    count.textContent = `${counted} tokens besides the BOS`;
    if (counted > limit) {
      message.className = 'message error';
      message.textContent = `Longer than this server's limit of ${limit} tokens: the graph would be refused.`;
    }
  }
  section.dataset.prompt = answer?.prompt ?? '';
  section.dataset.state = answer ? 'ready' : 'empty';
}

/** Enter submits, as in a search box; Shift+Enter (or a paste) still puts a line break in the prompt. */
function submitOnEnter(event) {
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing) return;
  event.preventDefault();
  form().requestSubmit();
}

/** The served model's example prompts (the demo's tour), as chips that fill the prompt. */
function showExamples(prompts) {
  const box = document.getElementById('examples');
  box.append(...prompts.map(prompt => el('button', {
    type: 'button', class: 'example', onclick: () => {
      const field = form().elements.prompt;
      field.value = prompt;
      field.focus();
      clearTimeout(previewTimer);
      preview();
    },
  }, prompt)));
  box.hidden = prompts.length === 0;
}

// ---- Jobs -----------------------------------------------------------------------------------

async function startGraph(event) {
  event.preventDefault();
  const message = document.getElementById('form-message');
  const { model_id: modelId } = await serverSettings();
  message.className = 'message';
  message.textContent = 'Starting…';
  try {
    // The job runs in the background; this page follows it through GET /jobs.
    const { data } = await json('POST', '/generate-graph', graphRequest(modelId), { Prefer: 'respond-async' });
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
  if (job.file) return cell;   // a graph file (graphfunctions view): nothing to stop or delete
  if (!finished) {
    cell.append(el('button', { type: 'button', onclick: () => json('POST', `/jobs/${encodeURIComponent(job.id)}/terminate?reason=from+the+jobs+page`).then(refresh, report) }, 'Stop'));
  } else {
    cell.append(el('button', { type: 'button', onclick: () => {
      // A purge cannot be undone: the job's history, graph and files go.
      if (confirm(`Delete job ${job.id}, its graph and its files? This cannot be undone.`)) json('DELETE', `/jobs/${encodeURIComponent(job.id)}`).then(refresh, report);
    } }, 'Delete'));
  }
  return cell;
}

function row(job) {
  const viewable = job.runtimeStatus === 'Completed' && !job.delivered;
  const elapsed = job.customStatus ? `${job.customStatus.elapsed_s.toFixed(1)} s` : '';
  return el('tr', { 'data-job-id': job.id, 'data-state': job.runtimeStatus },
    el('td', {}, viewable ? el('a', { href: `/graphs/${encodeURIComponent(job.id)}` }, job.id) : job.id),
    el('td', { class: 'prompt', title: job.prompt ?? '' }, job.prompt ?? ''),
    el('td', { class: `state ${job.runtimeStatus.toLowerCase()}` },
      job.delivered ? `${job.runtimeStatus} (uploaded)` : job.runtimeStatus,
      job.failure ? el('div', { class: 'failure' }, job.failure) : ''),
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
  body.replaceChildren(...(data.jobs.length ? data.jobs.map(row) : [el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No graphs yet.'))]));
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

/**
 * Under graphfunctions view the jobs are graph files and there is no model: no form, the files
 * listed (a folder is looked at again on every refresh, so graphs written later appear).
 */
function showGraphFiles() {
  document.getElementById('new-graph').hidden = true;
  document.getElementById('jobs-title').textContent = 'Graph files';
  document.getElementById('served-model').textContent = 'graph files (graphfunctions view: no model, so no new graphs or steering)';
  poll();
}

async function main() {
  const settings = await serverSettings();
  if (settings.graph_files) {
    showGraphFiles();
    return;
  }
  document.getElementById('served-model').textContent = `serving ${settings.model_id}`;
  try {
    await applySchemaDefaults();
  } catch (error) {
    const message = document.getElementById('form-message');
    message.className = 'message error';
    message.textContent = error.message;
  }
  showExamples(settings.example_prompts ?? []);
  const prompt = form().elements.prompt;
  prompt.addEventListener('input', schedulePreview);
  prompt.addEventListener('keydown', submitOnEnter);
  for (const name of ['max_n_logits', 'desired_logit_prob']) form().elements[name].addEventListener('input', schedulePreview);
  form().addEventListener('submit', startGraph);
  form().dataset.ready = 'true';
  preview();
  poll();
}

main();
