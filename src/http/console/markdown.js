// A small Markdown renderer for the console's protocol page: headings, paragraphs, lists, fenced
// code, tables, block quotes and rules; inline code, bold, italics and links. Everything is
// escaped first, so the text can hold nothing that runs; a link keeps only http(s), relative and
// #anchor targets. It is not CommonMark, only enough for the project's own documents.

const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** The id a heading gets, GitHub's way: lower case, punctuation dropped, spaces to hyphens. */
export function slug(text) {
  return text.toLowerCase().replace(/<[^>]*>/g, '').replace(/[^\p{L}\p{N} _-]/gu, '').trim().replace(/ /g, '-');
}

function inline(text) {
  // Code spans first, kept aside so nothing inside them is read as markup.
  const spans = [];
  let out = escapeHtml(text).replace(/`([^`]+)`/g, (_, code) => `\u0000${spans.push(`<code>${code}</code>`) - 1}\u0000`);
  out = out
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (whole, label, href) => {
      const target = href.replace(/&amp;/g, '&');
      if (!/^(https?:\/\/|#|\.{0,2}\/|[\w.-]+(\/|\.md|$))/i.test(target) || /^\s*javascript:/i.test(target)) return label;
      return `<a href="${escapeHtml(target)}">${label}</a>`;
    })
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^\w*])\*([^*\s][^*]*)\*(?!\w)/g, '$1<em>$2</em>')
    .replace(/(^|[^\w])_([^_\s][^_]*)_(?!\w)/g, '$1<em>$2</em>');
  return out.replace(/\u0000(\d+)\u0000/g, (_, i) => spans[Number(i)]);
}

const cells = (line) => line.trim().replace(/^\|/, '').replace(/\|$/, '').split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));

/** Markdown text to HTML (a string, safe to assign to innerHTML). */
export function renderMarkdown(text) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const html = [];
  let i = 0;
  const isBlockStart = (l) => /^(#{1,6} |```|> ?|\s*([-*+]|\d+[.)]) |\|)/.test(l) || /^(-{3,}|\*{3,})\s*$/.test(l);
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i++;
      continue;
    }
    let m;
    if ((m = /^```\s*([\w-]*)/.exec(line))) {
      const code = [];
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) code.push(lines[i]);
      i++;
      html.push(`<pre><code${m[1] ? ` class="language-${escapeHtml(m[1])}"` : ''}>${escapeHtml(code.join('\n'))}</code></pre>`);
    } else if ((m = /^(#{1,6}) +(.*?)\s*#*\s*$/.exec(line))) {
      const level = m[1].length;
      const content = inline(m[2]);
      html.push(`<h${level} id="${escapeHtml(slug(content))}">${content}</h${level}>`);
      i++;
    } else if (/^(-{3,}|\*{3,})\s*$/.test(line)) {
      html.push('<hr>');
      i++;
    } else if (/^> ?/.test(line)) {
      const quoted = [];
      for (; i < lines.length && /^> ?/.test(lines[i]); i++) quoted.push(lines[i].replace(/^> ?/, ''));
      html.push(`<blockquote>${renderMarkdown(quoted.join('\n'))}</blockquote>`);
    } else if (line.trimStart().startsWith('|') && i + 1 < lines.length && /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/.test(lines[i + 1])) {
      const head = cells(line);
      const rows = [];
      for (i += 2; i < lines.length && lines[i].trimStart().startsWith('|'); i++) rows.push(cells(lines[i]));
      html.push(`<table><thead><tr>${head.map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`);
    } else if ((m = /^(\s*)([-*+]|\d+[.)]) /.exec(line))) {
      const ordered = /\d/.test(m[2]);
      const indent = m[1].length;
      const items = [];
      while (i < lines.length) {
        const item = /^(\s*)([-*+]|\d+[.)]) +(.*)$/.exec(lines[i]);
        if (item && item[1].length <= indent) {
          items.push([item[3]]);
          i++;
        } else if (items.length > 0 && lines[i].trim() !== '' && /^\s+/.test(lines[i])) {
          items[items.length - 1].push(lines[i].slice(Math.min(indent + 2, lines[i].length - lines[i].trimStart().length)));
          i++;
        } else {
          break;
        }
      }
      const tag = ordered ? 'ol' : 'ul';
      html.push(`<${tag}>${items.map(([first, ...rest]) => {
        const nested = rest.length > 0 && /^\s*([-*+]|\d+[.)]) /.test(rest.find((l) => /^\s*([-*+]|\d+[.)]) /.test(l)) ?? '');
        if (!nested) return `<li>${inline([first, ...rest.map((l) => l.trim())].join(' '))}</li>`;
        const at = rest.findIndex((l) => /^\s*([-*+]|\d+[.)]) /.test(l));
        return `<li>${inline([first, ...rest.slice(0, at).map((l) => l.trim())].join(' '))}${renderMarkdown(rest.slice(at).join('\n'))}</li>`;
      }).join('')}</${tag}>`);
    } else {
      const para = [];
      for (; i < lines.length && lines[i].trim() !== '' && (para.length === 0 || !isBlockStart(lines[i])); i++) para.push(lines[i].trim());
      html.push(`<p>${inline(para.join(' '))}</p>`);
    }
  }
  return html.join('\n');
}
