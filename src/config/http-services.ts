/**
 * Checks of `auth.http` and `webhooks` beyond single values: a URL to ask, header names and values
 * that HTTP allows, unique webhook names, topic filters only with message.published events. Each
 * message names the key and the value.
 */
import type { HttpAuthConfig, WebhookConfig } from './schema.js';

/** RFC 9110 token: the characters a header name may have. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Header values: visible characters, spaces and tabs (no CR / LF that would split the request). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Every problem of `auth.http`; `at` names it ("starling.json: auth.http"). */
export function checkHttpAuth(http: HttpAuthConfig, at: string): string[] {
  const errors: string[] = [];
  if (http.authenticateUrl === undefined && http.publishUrl === undefined && http.subscribeUrl === undefined) {
    errors.push(`${at} needs at least one of authenticateUrl, publishUrl and subscribeUrl (the URLs of the service)`);
  }
  if (http.method === 'GET' && http.bodyFormat !== undefined) errors.push(`${at}.bodyFormat is for method POST; with GET the request is in the query string`);
  errors.push(...checkHeaders(http.headers, `${at}.headers`));
  return errors;
}

/** Every problem of `webhooks`; `where(i)` names webhook i ("starling.json: webhooks[0]"). */
export function checkWebhooks(webhooks: readonly WebhookConfig[], where: (index: number) => string): string[] {
  const errors: string[] = [];
  const seen = new Map<string, number>();
  webhooks.forEach((webhook, i) => {
    const at = `${where(i)} ("${webhook.name}")`;
    const first = seen.get(webhook.name);
    if (first !== undefined) errors.push(`${at}.name: "${webhook.name}" is already the name of webhooks[${first}]; webhook names must be unique`);
    seen.set(webhook.name, i);
    if (webhook.events.length === 0) errors.push(`${at}.events must list at least one event`);
    const published = webhook.events.includes('message.published');
    const topics = webhook.topics ?? [];
    if (published && topics.length === 0) errors.push(`${at}.topics must list the topic filters of the messages to send (e.g. ["sensors/#"]), since events has message.published`);
    if (!published && topics.length > 0) errors.push(`${at}.topics is for message.published events, which events does not list`);
    errors.push(...checkHeaders(webhook.headers, `${at}.headers`));
    if (webhook.signatureHeader !== undefined && !HEADER_NAME.test(webhook.signatureHeader)) {
      errors.push(`${at}.signatureHeader must be a header name (letters, digits and !#$%&'*+.^_\`|~-); got ${JSON.stringify(webhook.signatureHeader)}`);
    }
    if (webhook.signatureHeader !== undefined && webhook.secret === undefined) errors.push(`${at}.signatureHeader needs secret (the key the body is signed with)`);
    const retry = webhook.retry;
    if (retry?.initialDelayMs !== undefined && retry.maxDelayMs !== undefined && retry.initialDelayMs > retry.maxDelayMs) {
      errors.push(`${at}.retry.initialDelayMs (${retry.initialDelayMs}) must not be above retry.maxDelayMs (${retry.maxDelayMs})`);
    }
  });
  return errors;
}

function checkHeaders(headers: Readonly<Record<string, string>> | undefined, at: string): string[] {
  const errors: string[] = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!HEADER_NAME.test(name)) errors.push(`${at}: ${JSON.stringify(name)} is not a header name (letters, digits and !#$%&'*+.^_\`|~-)`);
    else if (!HEADER_VALUE.test(value)) errors.push(`${at}.${name} must be a header value without line breaks or control characters; got ${JSON.stringify(value)}`);
  }
  return errors;
}
