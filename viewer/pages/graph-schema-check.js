// The open-file check of the graph page: a file is validated against Neuronpedia's graph schema
// (docs/schemas/neuronpedia-graph-schema.json, served beside the pages) with @cfworker/json-schema,
// a validator that interprets the schema (no generated code, so the pages' CSP holds).
import { Validator } from './validator.js';

let validator = null;

async function graphValidator() {
  if (!validator) {
    const response = await fetch('/viewer/assets/neuronpedia-graph-schema.json');
    if (!response.ok) throw new Error(`the graph schema could not be read: ${response.status} ${response.statusText}`);
    // Short-circuit: the first problem is the one shown, and a file broken everywhere stays quick.
    validator = new Validator(await response.json(), '7', true);
  }
  return validator;
}

/** "nodes[2].ctx_idx" for the instance location "#/nodes/2/ctx_idx". */
function path(location) {
  return location.replace(/^#\/?/, '').split('/').filter(Boolean)
    .map(part => /^\d+$/.test(part) ? `[${part}]` : `.${decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')}`)
    .join('').replace(/^\./, '') || 'the file';
}

/** Keywords whose errors only say that something inside failed ("Items did not match schema."). */
const enclosing = new Set(['properties', 'items', 'additionalProperties', '$ref', 'allOf', 'anyOf', 'oneOf']);

/** The schema's verdict on a parsed graph: null when valid, else its first problem, where it lies. */
export async function schemaProblem(graph) {
  const result = (await graphValidator()).validate(graph);
  if (result.valid) return null;
  const problem = result.errors.find(e => !enclosing.has(e.keyword)) ?? result.errors.at(-1);
  return `${path(problem.instanceLocation)}: ${problem.error}`;
}
