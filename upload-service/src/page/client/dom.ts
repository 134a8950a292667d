// The page's DOM helpers: find an element, make one (strings become text, never HTML), links that
// only ever point at http(s), short times, messages, and a button's request with its outcome shown.

/** The element with this id (the page's HTML has every id the script asks for). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/** An element; strings among the children become text nodes, function attributes become listeners. */
export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') e.addEventListener(k, v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, String(v));
  }
  e.append(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
  return e;
}

/** A link that opens a new tab, and only for http(s) addresses. */
export const link = (url: string, text?: string) => h('a', { href: /^https?:[/][/]/.test(url) ? url : null, target: '_blank', rel: 'noopener' }, text || url);

export const when = (iso: string | undefined) =>
  iso ? new Date(iso).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';

/** Shows `text` in the message element `id`, as an error or not. */
export function say(id: string, text: string | undefined, isError = false): void {
  const e = $(id);
  e.textContent = text || '';
  e.className = 'msg' + (isError ? ' error' : ' ok');
}

/** Runs a button's request; its failure shows the API's message in the element msgId. */
export async function act(button: HTMLButtonElement, msgId: string, work: () => Promise<string | void>): Promise<void> {
  button.disabled = true;
  say(msgId, '');
  try {
    const text = await work();
    if (text) say(msgId, text);
  } catch (err) {
    say(msgId, (err as Error).message, true);
  } finally {
    button.disabled = false;
  }
}

/** A form's filled fields, trimmed; empty ones left out. */
export function formBody(form: HTMLFormElement): Record<string, string> {
  const body: Record<string, string> = {};
  for (const [k, v] of new FormData(form)) if (String(v).trim()) body[k] = String(v).trim();
  return body;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const enc = encodeURIComponent;
