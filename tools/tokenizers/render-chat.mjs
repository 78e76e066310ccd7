// The reference renderer of the chat-template tests (ChatTemplateTests): reads
// [{template, variables}, ...] as JSON on stdin and writes [{output} | {error}, ...] as JSON,
// each case rendered by @huggingface/jinja, the Jinja implementation transformers.js uses.
import { Template } from "@huggingface/jinja";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map(({ template, variables }) => {
  try {
    return { output: new Template(template).render(variables) };
  } catch (error) {
    return { error: String(error?.message ?? error) };
  }
});
process.stdout.write(JSON.stringify(results));
