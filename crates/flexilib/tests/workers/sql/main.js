import { DurableObject } from "cloudflare:workers";

// Checked against workerd (expected.txt); the cases where FlexiLib differs
// on purpose (rowsRead/rowsWritten of DDL, _cf_ tables)
// are left out.
export class Db extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.ready = false;
    ctx.blockConcurrencyWhile(async () => {
      await new Promise((r) => setTimeout(r, 20));
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)");
      this.ready = true;
    });
  }
  async run() {
    const out = [`ready ${this.ready}`];
    const t = (name, f) => { try { out.push(name + " ok " + JSON.stringify(f())); } catch (e) { out.push(name + " " + e.name + ": " + e.message); } };
    const sql = this.ctx.storage.sql;
    t("insert", () => { const c = sql.exec("INSERT INTO t (name, score, data) VALUES (?, ?, ?), (?, ?, ?)", "a", 1.5, new Uint8Array([1, 2]), "b", 2, null); return [c.columnNames, c.rowsRead, c.rowsWritten, c.toArray()]; });
    t("select", () => { const c = sql.exec("SELECT id, name, score, data FROM t ORDER BY id"); const rows = c.toArray(); return [c.columnNames, c.rowsRead, c.rowsWritten, rows.map((r) => ({ ...r, data: r.data instanceof ArrayBuffer ? [...new Uint8Array(r.data)] : r.data }))]; });
    t("raw", () => [...sql.exec("SELECT id, name FROM t ORDER BY id").raw()]);
    t("iter", () => { const a = []; for (const r of sql.exec("SELECT name FROM t ORDER BY id")) a.push(r); return a; });
    t("next", () => { const c = sql.exec("SELECT name FROM t ORDER BY id"); return [c.next(), c.next(), c.next()]; });
    t("one", () => sql.exec("SELECT name FROM t WHERE id = 1").one());
    t("one0", () => sql.exec("SELECT name FROM t WHERE id = 99").one());
    t("one2", () => sql.exec("SELECT name FROM t").one());
    t("multi", () => { const c = sql.exec("INSERT INTO t (name) VALUES ('c'); SELECT count(*) AS n FROM t"); return [c.toArray(), c.rowsWritten]; });
    t("multibind", () => sql.exec("INSERT INTO t (name) VALUES (?); SELECT name FROM t WHERE name = ?", "d", "d").toArray());
    t("begin", () => sql.exec("BEGIN TRANSACTION").toArray());
    t("attach", () => sql.exec("ATTACH DATABASE '/tmp/flexilib-attach.sqlite' AS x").toArray());
    t("bindcount", () => sql.exec("SELECT ?", 1, 2).toArray());
    t("bool", () => sql.exec("SELECT ? AS b", true).toArray());
    t("size", () => typeof sql.databaseSize);
    t("dup", () => sql.exec("SELECT 1 AS a, 2 AS a").toArray());
    t("dupraw", () => [...sql.exec("SELECT 1 AS a, 2 AS a").raw()]);
    t("empty", () => sql.exec("").toArray());
    t("txsync", () => this.ctx.storage.transactionSync(() => { sql.exec("INSERT INTO t (name) VALUES ('tx')"); throw new Error("undo"); }));
    t("afterTx", () => sql.exec("SELECT count(*) AS n FROM t WHERE name = 'tx'").one());
    t("txkeep", () => this.ctx.storage.transactionSync(() => sql.exec("INSERT INTO t (name) VALUES ('kept')").rowsWritten));
    out.push("alarm " + (await this.ctx.storage.getAlarm()));
    return out.join("\n");
  }
  async values() {
    const a = { when: new Date(5), map: new Map([[1, new Set(["x"])]]), bytes: new Uint8Array([7, 8]), big: 10n, nothing: undefined };
    a.self = a;
    await this.ctx.storage.put("v", a);
    const back = await this.ctx.storage.get("v");
    const listed = (await this.ctx.storage.list({ prefix: "v" })).get("v");
    let refused;
    try { await this.ctx.storage.put("c", new (class Point {})()); refused = "stored"; } catch (e) { refused = `${e.name}: ${e.message}`; }
    return [back.when instanceof Date && back.when.getTime(), back.map.get(1).has("x"), back.bytes instanceof Uint8Array && [...back.bytes].join("+"), typeof back.big, "nothing" in back, back.self === back, listed.self === listed, refused].join(" | ");
  }
  async wipe() {
    const sql = this.ctx.storage.sql;
    sql.exec("INSERT INTO t (name) VALUES ('gone')");
    await this.ctx.storage.put("k", 1);
    await this.ctx.storage.setAlarm(Date.now() + 60000);
    await this.ctx.storage.deleteAll();
    const tables = sql.exec("SELECT name FROM sqlite_master WHERE name NOT LIKE '_cf_%'").toArray();
    return [JSON.stringify(tables), String(await this.ctx.storage.get("k")), typeof (await this.ctx.storage.getAlarm())].join(" | ");
  }
  async count() { return sql(this).exec("SELECT count(*) AS n FROM t").one().n; }
  async arm(ms) { await this.ctx.storage.setAlarm(Date.now() + ms); return typeof (await this.ctx.storage.getAlarm()); }
  async alarm(info) {
    const runs = (await this.ctx.storage.get("runs")) ?? 0;
    await this.ctx.storage.put("runs", runs + 1);
    await this.ctx.storage.put("info", [info.retryCount, info.isRetry, typeof info.scheduledTime]);
    // The first run fails: the alarm is retried.
    if (runs === 0) throw new Error("first run fails");
  }
  async fired() { return [await this.ctx.storage.get("runs"), await this.ctx.storage.get("info"), await this.ctx.storage.getAlarm()]; }
}
function sql(o) { return o.ctx.storage.sql; }

export class Kv extends DurableObject {
  async noAlarm() {
    const out = [];
    for (const time of [Date.now() + 1000, "soon"]) {
      try { await this.ctx.storage.setAlarm(time); out.push("set"); } catch (e) { out.push(`${e.name}: ${e.message}`); }
    }
    return out.join("\n");
  }
  async run() {
    try { return JSON.stringify(this.ctx.storage.sql.exec("SELECT 1").toArray()); }
    catch (e) { return `${e.name}: ${e.message}`; }
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const db = env.DB.getByName(url.searchParams.get("name") ?? "a");
    switch (url.pathname) {
      case "/no-alarm": return new Response(await env.KV.getByName("a").noAlarm());
      case "/kv": return new Response(await env.KV.getByName("a").run());
      case "/values": return new Response(await db.values());
      case "/wipe": return new Response(await db.wipe());
      case "/count": return new Response(String(await db.count()));
      case "/arm": return new Response(await db.arm(Number(url.searchParams.get("ms") ?? "100")));
      case "/fired": return new Response(JSON.stringify(await db.fired()));
      default: return new Response(await db.run());
    }
  },
};
