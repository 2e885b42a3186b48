// A fixed system prompt, as an application sends with every call, and a user message that differs
// on every request, so nothing downstream can answer from memory what it should compute.
const SYSTEM_PROMPT =
  'You are a terse assistant for a literature course. Answer in one sentence, in plain English, without quoting the text. ' +
  'If the question is not about literature, say that you only answer questions about literature.';
let sent = 0;

/** A fresh chat completion body for `model` on every call (the student number counts up over the process). */
export const chatCompletionBody = (model: string) => (): string =>
  JSON.stringify({
    model,
    messages: [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: `Summarise the plot of Hamlet in one sentence for student ${++sent}.` },
    ],
    max_tokens: 64,
  });

/** The request fields of a JSON POST for a load target. */
export const postJson = (makeBody: () => string, headers: Record<string, string> = {}) => ({
  method: 'POST' as const,
  makeBody,
  headers: { 'content-type': 'application/json', ...headers },
});
