// Signed cookies with cookie-signature (which `require`s Node's `crypto`:
// HMAC-SHA256 and timingSafeEqual), bytes with safe-buffer (which
// `require`s `buffer`), an EventEmitter, and a request id kept in an
// AsyncLocalStorage across awaits. Needs `nodejs_compat` (wrangler.toml).
import { sign, unsign } from "cookie-signature";
import { Buffer as SafeBuffer } from "safe-buffer";
import { EventEmitter } from "node:events";
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";

interface Env {
  COOKIE_SECRET: string;
}

const requestTag = new AsyncLocalStorage<string>();

async function later(): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  return requestTag.getStore() ?? "(none)";
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    // Mounted at /node-compat in the shipped proxy.ini, or at the root.
    const path = url.pathname.replace(/^\/node-compat(?=\/|$)/, "") || "/";
    const tag = url.searchParams.get("tag") ?? "untagged";
    return requestTag.run(tag, async () => {
      switch (path) {
        case "/sign":
          return new Response(sign(url.searchParams.get("value") ?? "", env.COOKIE_SECRET));
        case "/unsign":
          return new Response(String(unsign(url.searchParams.get("cookie") ?? "", env.COOKIE_SECRET)));
        case "/bytes": {
          const bytes = SafeBuffer.from(url.searchParams.get("text") ?? "", "utf8");
          return new Response(`${bytes.toString("hex")} ${bytes.toString("base64")} ${SafeBuffer.isBuffer(bytes)}`);
        }
        case "/events": {
          const bus = new EventEmitter();
          const seen: string[] = [];
          bus.on("note", (text: string) => seen.push(text));
          bus.once("note", (text: string) => seen.push(`first:${text}`));
          bus.emit("note", "a");
          bus.emit("note", "b");
          return new Response(seen.join(","));
        }
        case "/tag":
          return new Response(`${await later()} ${createHash("sha1").update(tag).digest("hex").slice(0, 8)}`);
        default:
          return new Response("try /sign?value=V, /unsign?cookie=C, /bytes?text=T, /events, /tag?tag=T\n");
      }
    });
  },
};
