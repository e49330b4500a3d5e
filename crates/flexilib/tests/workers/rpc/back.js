import { WorkerEntrypoint } from "cloudflare:workers";
class Point { constructor() { this.x = 1; } }
export class Admin extends WorkerEntrypoint {
  async who() { return "admin:" + this.env.ROLE; }
  async fetch() { return new Response("admin fetch"); }
}
export default class extends WorkerEntrypoint {
  async fetch(request) { return new Response("back fetch " + new URL(request.url).pathname); }
  add(a, b) { return a + b; }
  async shape(x) {
    return { x, when: new Date(86400000), map: new Map([["k", [1, undefined]]]), set: new Set([1n]), bytes: new Uint8Array([1, 2, 255]), nan: NaN, none: undefined, nested: { "$": "dollar" } };
  }
  async boom() { throw new RangeError("too far"); }
  async custom() { const e = new Error("custom"); e.name = "MyError"; throw e; }
  echo(value) { return value; }
  instance() { return new Point(); }
  cycle() { const a = { n: 1, list: [] }; a.self = a; a.list.push(a, a.list); return new Map([["a", a], ["again", a]]); }
  symbol() { return Symbol("s"); }
  field = 5;
  get getter() { return this.env.ROLE + "!"; }
  async askFront(n) { const r = await this.env.FRONT.fetch("http://front/square?n=" + n); return Number(await r.text()) + 1; }
}
