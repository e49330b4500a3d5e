const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
async function results(request) {
  const out = {};
  const t = async (name, f) => { try { out[name] = await f(); } catch (e) { out[name] = 'THROWS ' + e.name + ': ' + e.message; } };
  await t('textCT', () => new Response('x').headers.get('content-type'));
  await t('binCT', () => new Response(new Uint8Array([1])).headers.get('content-type'));
  await t('jsonCT', () => Response.json({}).headers.get('content-type'));
  await t('usp', () => new Response(new URLSearchParams('a=1')).headers.get('content-type'));
  await t('blobCT', () => new Response(new Blob(['x'], { type: 'Text/HTML' })).headers.get('content-type'));
  await t('redirect', () => { const r = Response.redirect('http://x.com/a b', 301); return [r.status, r.headers.get('location')]; });
  await t('redirectBad', () => Response.redirect('http://x.com', 200));
  await t('status199', () => new Response('x', { status: 199 }));
  await t('204body', () => new Response('x', { status: 204 }));
  await t('headersIter', () => { const h = new Headers([['B', '1'], ['a', '2'], ['b', '3'], ['Set-Cookie', 'x=1'], ['set-cookie', 'y=2']]); return [...h]; });
  await t('getSetCookie', () => { const h = new Headers(); h.append('set-cookie', 'a=1'); h.append('set-cookie', 'b=2'); return [h.get('set-cookie'), h.getSetCookie()]; });
  await t('badHeader', () => new Headers({ 'a b': '1' }));
  await t('bodyUsed', async () => { const r = new Response('abc'); const a = r.bodyUsed; await r.text(); let e; try { await r.text(); } catch (x) { e = x.name + ': ' + x.message; } return [a, r.bodyUsed, e]; });
  await t('clone', async () => { const r = new Response('abc'); const c = r.clone(); return [await r.text(), await c.text()]; });
  await t('reqGetBody', () => new Request('http://x/', { body: 'x' }));
  await t('reqRelative', () => new Request('/x'));
  await t('reqMethod', () => [new Request('http://x', { method: 'post' }).method, new Request('http://x', { method: 'Foo' }).method]);
  await t('url', () => { const u = new URL('HTTP://Ex.com:80/a/../b?x=1 2#h'); return [u.href, u.origin, u.host, u.port, u.pathname, u.search, u.hash, u.searchParams.get('x')]; });
  await t('urlBad', () => new URL('nope'));
  await t('usp2', () => { const p = new URLSearchParams({ a: '1 2', b: 'é&' }); p.append('a', '3'); p.sort(); return [p.toString(), p.getAll('a'), p.size]; });
  await t('urlSetSearch', () => { const u = new URL('http://x/p?a=1'); u.searchParams.set('b', 'c d'); u.pathname = '/q r'; u.hash = 'z'; return u.href; });
  await t('atob', () => [atob(' aGVs bG8 '), btoa('hello'), btoa(String.fromCharCode(255))]);
  await t('atobBad', () => atob('a'));
  await t('btoaBad', () => btoa('\u0100'));
  await t('textDecoder', () => [new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0xff])), new TextEncoder().encode('é').length]);
  await t('textDecoderFatal', () => new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff])));
  await t('textDecoderLatin1', () => { const d = new TextDecoder('latin1'); return [d.encoding, d.decode(new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x80]))]; });
  await t('textDecoderLegacy', () => ['iso-8859-2', 'windows-1251', 'koi8-r', 'gbk', 'shift_jis', 'euc-kr', 'big5', 'utf-16be'].map((l) => new TextDecoder(l).encoding));
  await t('textDecoderSjisStream', () => { const d = new TextDecoder('shift_jis'); const b = new Uint8Array([0x82, 0xa0, 0x82, 0xa2]); return d.decode(b.subarray(0, 3), { stream: true }) + '|' + d.decode(b.subarray(3)); });
  await t('textDecoderUtf16', () => [new TextDecoder('utf-16le').decode(new Uint8Array([0xff, 0xfe, 0x68, 0x00, 0x69, 0x00])), new TextDecoder('utf-16le', { ignoreBOM: true }).decode(new Uint8Array([0xff, 0xfe, 0x68, 0x00])).length]);
  await t('textDecoderLegacyFatal', () => new TextDecoder('shift_jis', { fatal: true }).decode(new Uint8Array([0x82])));
  await t('textDecoderReplacement', () => new TextDecoder('iso-2022-kr'));
  await t('textDecoderUnknown', () => new TextDecoder('klingon'));
  await t('digest', async () => [hex(await crypto.subtle.digest('SHA-1', new TextEncoder().encode('abc'))), hex(await crypto.subtle.digest({ name: 'SHA-512' }, new TextEncoder().encode('')) ).slice(0, 16)]);
  await t('hmac', async () => { const k = await crypto.subtle.importKey('raw', new TextEncoder().encode('key'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']); const s = await crypto.subtle.sign('HMAC', k, new TextEncoder().encode('The quick brown fox jumps over the lazy dog')); return [hex(s), await crypto.subtle.verify('HMAC', k, s, new TextEncoder().encode('The quick brown fox jumps over the lazy dog')), k.algorithm, k.type, k.extractable, k.usages]; });
  await t('uuid', () => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()));
  await t('grv', () => crypto.getRandomValues(new Uint8Array(4)).length);
  await t('grvBig', () => crypto.getRandomValues(new Uint8Array(65537)));
  await t('grvFloat', () => crypto.getRandomValues(new Float32Array(1)));
  await t('structuredClone', () => { const o = { a: [1, { b: new Date(0) }], m: new Map([[1, 2]]) }; o.self = o; const c = structuredClone(o); return [c !== o, c.self === c, c.a[1].b instanceof Date, c.m.get(1)]; });
  await t('structuredCloneFn', () => structuredClone(() => 1));
  await t('formData', async () => { const f = new FormData(); f.append('a', '1'); f.append('f', new Blob(['xyz'], { type: 'text/plain' }), 'x.txt'); const r = new Request('http://x/', { method: 'POST', body: f }); const g = await r.formData(); return [r.headers.get('content-type').split(';')[0], g.get('a'), g.get('f').name, g.get('f').type, await g.get('f').text()]; });
  await t('urlencodedForm', async () => { const g = await new Request('http://x/', { method: 'POST', body: new URLSearchParams('a=1&b=2') }).formData(); return [...g]; });
  await t('abort', async () => { const s = AbortSignal.timeout(10); await new Promise((r) => setTimeout(r, 30)); return [s.aborted, s.reason.name]; });
  await t('abortCtl', () => { const c = new AbortController(); c.abort(); return [c.signal.aborted, c.signal.reason.name, c.signal.reason.message]; });
  await t('blob', async () => { const b = new Blob(['ab', new Uint8Array([99])]); return [b.size, await b.text(), await b.slice(1).text()]; });
  await t('streamRead', async () => { const s = new ReadableStream({ start(c) { c.enqueue('a'); c.enqueue('b'); c.close(); } }); const out = []; for await (const x of s) out.push(x); return out; });
  await t('pipeThrough', async () => { const s = new ReadableStream({ start(c) { c.enqueue('a'); c.close(); } }).pipeThrough(new TransformStream({ transform(ch, c) { c.enqueue(ch.toUpperCase()); } })); return await new Response(s.pipeThrough(new TextEncoderStream())).text(); });
  await t('respNonBytesStream', async () => { const s = new ReadableStream({ start(c) { c.enqueue('a'); c.close(); } }); return await new Response(s).text(); });
  await t('jsonErr', async () => await new Response('{').json());
  await t('reqUrl', () => new URL(request.url).pathname + new URL(request.url).search);
  await t('reqHeaders', () => [...request.headers].map(([k]) => k).join(','));
  await t('cf', () => typeof request.cf);
  await t('immutable', () => request.headers.set('x', '1'));
  await t('navigator', () => navigator.userAgent);
  await t('kv', () => typeof globalThis.caches);
  return out;
}
export default {
  async fetch(request, env, ctx) {
    const p = new URL(request.url).pathname;
    if (p === '/throw') throw new Error('boom');
    if (p === '/roundtrip') { const ct = request.headers.get('content-type') || ''; if (ct.startsWith('application/json')) return Response.json({ got: await request.json() }); if (ct.startsWith('multipart/') || ct.startsWith('application/x-www')) { const f = await request.formData(); const out = []; for (const [k, v] of f) out.push([k, typeof v === 'string' ? v : [v.name, v.type, v.size, [...new Uint8Array(await v.arrayBuffer())].slice(0, 4)]]); return Response.json(out); } if (ct === 'application/octet-stream') return new Response(await request.arrayBuffer()); return new Response(await request.text()); }
    if (p === '/reject') return Promise.reject(new Error('x'));
    if (p === '/notresp') return 'hello';
    if (p === '/undef') return;
    if (p === '/204') return new Response(null, { status: 204 });
    if (p === '/two') { const h = new Headers(); h.append('x-a', '1'); h.append('x-a', '2'); h.append('set-cookie', 'a=1'); h.append('set-cookie', 'b=2'); return new Response('two', { headers: h }); }
    return new Response(JSON.stringify(await results(request), null, 1));
  },
};
