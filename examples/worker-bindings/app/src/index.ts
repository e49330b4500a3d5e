// D1 notes, R2 files, a Durable Object counting visits in its own SQLite
// database, and calls to another worker through a service binding (fetch
// and RPC). The route prefix is /bindings.
import { DurableObject } from "cloudflare:workers";

interface Env {
  DB: D1Database;
  FILES: R2Bucket;
  VISITS: DurableObjectNamespace<Visits>;
  GREETER: Fetcher & { greet(name: string): Promise<{ text: string; at: Date }> };
}

// A SQLite-backed class (`new_sqlite_classes` in wrangler.toml).
export class Visits extends DurableObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // No call is delivered before the table exists.
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS visits (page TEXT PRIMARY KEY, count INTEGER NOT NULL)");
    });
  }

  visit(page: string): number {
    return this.ctx.storage.sql
      .exec<{ count: number }>(
        "INSERT INTO visits (page, count) VALUES (?, 1) ON CONFLICT (page) DO UPDATE SET count = count + 1 RETURNING count",
        page,
      )
      .one().count;
  }
}

const schema = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)";

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.replace(/^\/bindings/, "") || "/";
    if (path === "/notes" && request.method === "POST") {
      await env.DB.exec(schema);
      const text = await request.text();
      const { meta } = await env.DB.prepare("INSERT INTO notes (text) VALUES (?)").bind(text).run();
      return Response.json({ id: meta.last_row_id });
    }
    if (path === "/notes") {
      await env.DB.exec(schema);
      const { results } = await env.DB.prepare("SELECT id, text FROM notes ORDER BY id").all();
      return Response.json(results);
    }
    if (path.startsWith("/files/")) {
      const key = path.slice("/files/".length);
      if (request.method === "PUT") {
        const object = await env.FILES.put(key, await request.arrayBuffer(), {
          httpMetadata: { contentType: request.headers.get("content-type") ?? "application/octet-stream" },
        });
        return Response.json({ key: object?.key, size: object?.size, etag: object?.httpEtag });
      }
      const object = await env.FILES.get(key);
      if (object === null) return new Response("no such file\n", { status: 404 });
      const headers = new Headers();
      object.writeHttpMetadata(headers);
      headers.set("etag", object.httpEtag);
      return new Response(object.body, { headers });
    }
    if (path === "/visits") {
      const counter = env.VISITS.getByName("site");
      return new Response(`visit number ${await counter.visit("home")}\n`);
    }
    if (path === "/greet") {
      // The other worker, by its wrangler name, in process.
      return env.GREETER.fetch(`http://greeter/hello?name=${url.searchParams.get("name") ?? "you"}`);
    }
    if (path === "/greet-rpc") {
      // A method of the other worker's WorkerEntrypoint class.
      const { text, at } = await env.GREETER.greet(url.searchParams.get("name") ?? "you");
      return new Response(`${text} (a Date: ${at instanceof Date})\n`);
    }
    return new Response("try /bindings/notes, /bindings/files/NAME, /bindings/visits, /bindings/greet, /bindings/greet-rpc\n");
  },
};
