export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/square") { const n = Number(url.searchParams.get("n")); return new Response(String(n * n)); }
    const out = [];
    const t = async (name, f) => {
      try { out.push(`${name} ok ${await f()}`); }
      catch (e) { out.push(`${name} ${e.name}: ${e.message}`); }
    };
    await t("add", () => env.BACK.add(2, 3));
    await t("shape", async () => {
      const s = await env.BACK.shape({ deep: [1, "two"] });
      return JSON.stringify([s.x, s.when.toISOString(), [...s.map], s.map.get("k").length, [...s.set].map((b) => typeof b + b), s.bytes instanceof Uint8Array, [...s.bytes], Number.isNaN(s.nan), "none" in s, s.nested]);
    });
    await t("echo", async () => {
      const [neg, re, err] = await env.BACK.echo([-0, /a+/gi, new TypeError("x")]);
      return `${Object.is(neg, -0)} ${re} ${err instanceof TypeError} ${err.message}`;
    });
    await t("cycle", async () => {
      const m = await env.BACK.cycle();
      const a = m.get("a");
      return [a.self === a, a.list[0] === a, a.list[1] === a.list, m.get("again") === a, a.n].join(",");
    });
    await t("instance", () => env.BACK.instance());
    await t("symbol", () => env.BACK.symbol());
    await t("boom", () => env.BACK.boom());
    await t("custom", () => env.BACK.custom());
    await t("missing", () => env.BACK.nope());
    await t("field", () => env.BACK.field());
    await t("getter", async () => await env.BACK.getter);
    await t("fetch", async () => (await env.BACK.fetch("http://back/p")).text());
    await t("admin", () => env.ADMIN.who());
    await t("adminfetch", async () => (await env.ADMIN.fetch("http://back/")).text());
    await t("plain", () => env.PLAIN.hello({ name: "x" }));
    await t("plain2", () => env.PLAIN.hello(1, 2));
    await t("plainfetch", async () => (await env.PLAIN.fetch("http://plain/")).text());
    await t("then", () => typeof env.BACK.then);
    await t("back-and-forth", () => env.BACK.askFront(7));
    return new Response(out.join("\n"));
  },
};
