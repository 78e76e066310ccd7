// What both viewer pages share: calls to the service's API with the secret header, and building
// DOM from data without ever parsing it as HTML.
'use strict';

const GF = (() => {
  const secretKey = 'graphfunctions-secret';
  const secretHeader = 'x-secret-key';

  let asking = null;

  /**
   * Where the secret is kept: for the origin (every tab) while the page is served on loopback, where
   * the reader is the operator; for the tab only on any other host.
   */
  const secretStore = ['127.0.0.1', 'localhost', '[::1]'].includes(location.hostname) ? localStorage : sessionStorage;

  /** The secret dialog: asks once (calls waiting together share one question); the answer lives in web storage, never in a URL. */
  function askSecret(reason) {
    asking ??= showSecretDialog(reason).finally(() => { asking = null; });
    return asking;
  }

  function showSecretDialog(reason) {
    let dialog = document.getElementById('secret-dialog');
    if (!dialog) {
      dialog = el('dialog', { id: 'secret-dialog' },
        el('form', { method: 'dialog' },
          el('p', { id: 'secret-reason' }),
          el('label', {}, 'Secret ',
            el('input', { id: 'secret-input', type: 'password', autocomplete: 'current-password', required: '' })),
          el('p', { class: 'muted' }, 'It is the server\'s SECRET setting: on the local host in local.settings.json ',
            '(else local.settings.example.json, whose value is local-dev-secret-change-me); in Azure in the app\'s Key Vault. ',
            secretStore === localStorage ? 'This browser remembers it for this address.' : 'This tab remembers it until it closes.'),
          el('button', { id: 'secret-ok', type: 'submit' }, 'Use')));
      document.body.append(dialog);
    }
    dialog.querySelector('#secret-reason').textContent = reason;
    const input = dialog.querySelector('#secret-input');
    input.value = '';
    return new Promise(resolve => {
      dialog.addEventListener('close', () => {
        secretStore.setItem(secretKey, input.value);
        resolve();
      }, { once: true });
      dialog.showModal();
    });
  }

  /** fetch with the secret (asked for first where the server needs one); a refusal for the secret asks again. */
  async function call(method, path, body, headers = {}) {
    if (!secretStore.getItem(secretKey) && (await serverSettings()).secret_required) await askSecret('This server needs its secret.');
    for (;;) {
      const sent = { ...headers };
      const secret = secretStore.getItem(secretKey);
      if (secret) sent[secretHeader] = secret;
      if (body !== undefined) sent['content-type'] = 'application/json';
      const response = await fetch(path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
      if (response.status === 400 || response.status === 403) {
        const refusal = await response.clone().json().catch(() => null);
        if (refusal && typeof refusal.error === 'string' && refusal.error.includes(secretHeader)) {
          secretStore.removeItem(secretKey);
          await askSecret(secret ? 'The secret was not accepted.' : 'This server needs its secret.');
          continue;
        }
      }
      return response;
    }
  }

  /** A JSON answer, or an Error carrying the service's own {"error": ...} message. */
  async function json(method, path, body, headers) {
    const response = await call(method, path, body, headers);
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    return { status: response.status, data };
  }

  let settings;
  /** The served model and limits (GET /viewer/settings), read once. */
  async function serverSettings() {
    settings ??= await (await fetch('/viewer/settings')).json();
    return settings;
  }

  /** An element with attributes and children (strings become text nodes, never HTML). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    node.append(...children.flat().filter(c => c !== undefined && c !== null));
    return node;
  }

  /** Number formatting for weights, activations and probabilities: never "0.00" for a value that is not 0. */
  function num(value, digits = 3) {
    if (value === null || value === undefined) return '—';
    const magnitude = Math.abs(value);
    return magnitude !== 0 && (magnitude < 10 ** -digits || magnitude >= 1e4) ? value.toExponential(Math.max(1, digits - 1)) : value.toFixed(digits);
  }

  /**
   * A token (or a text) as the viewer shows it: line breaks and tabs, and spaces at either end,
   * made visible, so a trailing space or newline is a token one can see (newline and return as
   * the graph JSON's prompt_tokens write them).
   */
  function token(text) {
    return String(text).replace(/\r/g, '↵').replace(/\n/g, '⏎').replace(/\t/g, '⇥')
      .replace(/^ +| +$/g, spaces => '␣'.repeat(spaces.length));
  }

  /** Saves a JSON answer as a file (a link cannot send the secret header). */
  async function download(path, name) {
    const response = await call('GET', path);
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    const url = URL.createObjectURL(await response.blob());
    el('a', { href: url, download: name }).click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  return { call, json, serverSettings, el, num, token, download };
})();
