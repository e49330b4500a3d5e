// A link shortener on KV.
//   POST   /kv/links        {"url": "https://…", "ttl": 3600?}  → {"code", "short"}
//   GET    /kv/links        list (?cursor=… for the next page)
//   GET    /kv/:code        302 to the link; the visit is counted after the response
//   GET    /kv/stats/:code  {"url", "visits", "created"}
//   DELETE /kv/links/:code
import { Router } from './router.js';

const json = (data, status = 200) => Response.json(data, { status });

function newCode() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_');
}

async function create({ request, env, url }) {
  let body;
  try {
    body = await request.json();
  } catch {
    return json({ error: 'send JSON: {"url": "https://…"}' }, 400);
  }
  let target;
  try {
    target = new URL(body.url);
  } catch {
    return json({ error: 'url is not a valid URL' }, 400);
  }
  if (target.href.length > env.LIMITS.max_url_length) return json({ error: 'url too long' }, 400);
  const code = newCode();
  const ttl = Number(body.ttl) || env.LIMITS.ttl_days * 86400;
  // KV rejects TTLs under 60 s, as on Cloudflare: the error goes back to the client.
  try {
    await env.LINKS.put(`link:${code}`, target.href, {
      expirationTtl: ttl,
      metadata: { created: new Date().toISOString() },
    });
  } catch (e) {
    return json({ error: e.message }, 400);
  }
  return json({ code, short: new URL(`${env.BASE}/${code}`, url).href }, 201);
}

async function list({ env, url }) {
  const page = await env.LINKS.list({ prefix: 'link:', limit: 20, cursor: url.searchParams.get('cursor') || undefined });
  return json({
    links: page.keys.map((key) => ({ code: key.name.slice(5), created: key.metadata?.created, expiration: key.expiration })),
    next: page.list_complete ? null : page.cursor,
  });
}

async function follow({ env, ctx, params }) {
  const target = await env.LINKS.get(`link:${params.code}`);
  if (target === null) return json({ error: 'no such link' }, 404);
  // Counted after the response has gone out.
  ctx.waitUntil((async () => {
    const visits = Number((await env.LINKS.get(`visits:${params.code}`)) || 0);
    await env.LINKS.put(`visits:${params.code}`, String(visits + 1));
  })());
  return Response.redirect(target, 302);
}

async function stats({ env, params }) {
  const { value, metadata } = await env.LINKS.getWithMetadata(`link:${params.code}`);
  if (value === null) return json({ error: 'no such link' }, 404);
  const visits = Number((await env.LINKS.get(`visits:${params.code}`)) || 0);
  return json({ url: value, visits, created: metadata?.created });
}

async function remove({ env, params }) {
  await env.LINKS.delete(`link:${params.code}`);
  await env.LINKS.delete(`visits:${params.code}`);
  return new Response(null, { status: 204 });
}

export default {
  async fetch(request, env, ctx) {
    const router = new Router(env.BASE)
      .on('GET', '/', () => new Response('A link shortener on Workers KV. POST /links {"url": "…"}\n'))
      .on('POST', '/links', create)
      .on('GET', '/links', list)
      .on('DELETE', '/links/:code', remove)
      .on('GET', '/stats/:code', stats)
      .on('GET', '/:code', follow);
    return router.handle(request, env, ctx);
  },
};
