// The few DOM helpers the page's modules share.

/** el('p', { class: 'x', onclick: f }, child, …): an element; strings become text, never HTML. */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** Chinese with an English subtitle. */
export const bi = (zh, en) => [zh, ' ', el('small', null, en)];

/** Replaces what `out` shows with one box of a kind (ok, err, busy, note). */
export function show(out, kind, ...children) {
  out.replaceChildren(el('div', { class: kind }, ...children));
}

/** A row of a <dl>: a bilingual term and its value. */
export function row(zh, en, value) {
  return [el('dt', null, bi(zh, en)), el('dd', null, value)];
}
