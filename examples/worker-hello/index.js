// The smallest Cloudflare Worker, run unmodified by FlexiLib:
//   /hello = worker:examples/worker-hello/index.js      (proxy.ini)
// Then: curl localhost:8069/hello   and   curl localhost:8069/hello/stream
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.endsWith('/stream')) {
      // A streamed body: each line reaches the client as it is written.
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      const encoder = new TextEncoder();
      ctx.waitUntil((async () => {
        for (let i = 1; i <= 5; i++) {
          await writer.write(encoder.encode(`line ${i} at ${new Date().toISOString()}\n`));
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        await writer.close();
      })());
      return new Response(readable, { headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    }
    console.log(`${request.method} ${url.pathname}`);
    return new Response(`Hello from a Cloudflare Worker on FlexiLib! You asked for ${url.pathname}\n`);
  },
};
