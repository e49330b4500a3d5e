import { Buffer } from "node:buffer";
import { EventEmitter, once } from "node:events";
import util from "node:util";
import { promisify, inspect, types, format } from "node:util";
import crypto, { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import { AsyncLocalStorage } from "node:async_hooks";
import process from "node:process";
import bare from "buffer";

const als = new AsyncLocalStorage();
export default {
  async fetch(request, env) {
    const out = [];
    const t = async (name, f) => { try { out.push(name + " " + (await f())); } catch (e) { out.push(name + " " + e.name + ": " + e.message); } };
    await t("bare", () => bare.Buffer === Buffer);
    await t("globalBuffer", () => typeof globalThis.Buffer + " " + (globalThis.Buffer === Buffer) + " " + typeof globalThis.process);
    await t("from", () => Buffer.from("héllo").toString("hex") + " " + Buffer.from("68656c6c6f", "hex").toString() + " " + Buffer.from("aGk/Pz8+", "base64").toString("latin1") + " " + Buffer.from("hi??>").toString("base64url") + " " + Buffer.from([1, 2, 3]).toString("base64"));
    await t("concat", () => { const b = Buffer.concat([Buffer.from("ab"), Buffer.from("cd")]); return [b.length, b.toString(), Buffer.isBuffer(b), b instanceof Uint8Array, Buffer.byteLength("héllo"), b.equals(Buffer.from("abcd")), Buffer.compare(Buffer.from("a"), Buffer.from("b"))].join(","); });
    await t("slice", () => { const b = Buffer.from("hello"); const s = b.slice(1, 3); s[0] = 69; return b.toString() + " " + (s instanceof Buffer) + " " + JSON.stringify(Buffer.from("hi")); });
    await t("rw", () => { const b = Buffer.alloc(8); b.writeUInt32BE(0xdeadbeef, 0); b.writeInt16LE(-2, 4); b.writeUInt8(7, 6); return [b.toString("hex"), b.readUInt32BE(0), b.readInt16LE(4), b.readUInt8(6), b.readUInt16LE(0)].join(","); });
    await t("rwVar", () => { const b = Buffer.alloc(6); b.writeUIntBE(0x123456, 0, 3); b.writeIntLE(-2, 3, 3); return [b.toString("hex"), b.readUIntBE(0, 3), b.readIntLE(3, 3), b.readUIntLE(0, 6), Buffer.from("abcabc").lastIndexOf("bc"), Buffer.from([1, 2, 3, 4]).swap16().toString("hex")].join(","); });
    await t("fill", () => Buffer.alloc(5, "ab").toString() + " " + Buffer.alloc(3).toString("hex") + " " + Buffer.from("abcabc").indexOf("ca") + " " + Buffer.from("abc").includes("bc"));
    await t("inspectBuf", () => inspect(Buffer.from("hi")));
    await t("latin1", () => Buffer.from("é", "latin1").toString("hex") + " " + Buffer.from([0xe9]).toString("latin1") + " " + Buffer.from("hi", "utf16le").toString("hex") + " " + Buffer.from("ab", "ascii").toString("ascii"));
    await t("events", () => { const e = new EventEmitter(); const got = []; e.on("x", (a, b) => got.push(a + b)); e.once("x", () => got.push("once")); e.emit("x", 1, 2); e.emit("x", 3, 4); return got.join(",") + " " + e.listenerCount("x") + " " + e.eventNames().join("|"); });
    await t("eventsError", () => { const e = new EventEmitter(); e.emit("error", new Error("unhandled")); });
    await t("eventsOnce", async () => { const e = new EventEmitter(); setTimeout(() => e.emit("go", 42), 1); const [v] = await once(e, "go"); return v; });
    await t("promisify", async () => { const f = promisify((a, cb) => setTimeout(() => cb(null, a * 2), 1)); const g = promisify((cb) => cb(new TypeError("bad"))); let err; try { await g(); } catch (e) { err = e.name; } return (await f(21)) + " " + err; });
    await t("inspect", () => inspect({ a: 1, b: "x", c: [1, 2, { d: null }], e: undefined, f: new Map([["k", 1]]), g: new Set([1]), h: () => 1, i: new Date(0) }));
    await t("inspectLong", () => inspect(Array.from({ length: 30 }, (_, i) => i)) + "\n" + inspect(Array.from({ length: 120 }, (_, i) => i * 3)) + "\n" + inspect(["apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "honeydew"]));
    await t("inspectDeep", () => inspect({ a: { b: "x".repeat(60), c: [1, 2, 3] }, d: [{ e: 1, f: "y".repeat(50) }], s: new Set(Array.from({ length: 8 }, (_, i) => i)) }));
    await t("inspectNested", () => inspect({ a: { b: { c: { d: 1 } } } }));
    await t("inspectStr", () => inspect("it's") + " " + inspect([1, "a"]) + " " + inspect(null) + " " + inspect(10n) + " " + inspect(Symbol("s")));
    await t("inspectClass", () => { class Foo { constructor() { this.x = 1; } } return inspect(new Foo()) + " " + inspect(new Error("boom")).split("\n")[0] + " " + inspect([]) + " " + inspect({}); });
    await t("format", () => format("%s=%d %i %j %O %%", "a", 4.5, 4.5, { x: 1 }, [1]) + " | " + format("a", "b", 3));
    await t("types", () => [types.isPromise(Promise.resolve()), types.isDate(new Date()), types.isRegExp(/x/), types.isUint8Array(Buffer.alloc(1)), types.isArrayBuffer(new ArrayBuffer(1)), types.isMap(new Map()), types.isAsyncFunction(async () => {}), types.isTypedArray(new Int8Array(1)), types.isNativeError(new TypeError())].join(","));
    await t("utilMisc", () => typeof util.inherits + " " + typeof util.deprecate + " " + typeof util.TextEncoder + " " + util.isDeepStrictEqual?.({ a: [1] }, { a: [1] }));
    await t("hash", () => ["sha1", "sha256", "sha512", "md5"].map((a) => createHash(a).update("hello").update(" world").digest("hex").slice(0, 16)).join(",") + " " + createHash("sha256").update("x").digest("base64") + " " + createHash("md5").update(Buffer.from("x")).digest().length);
    await t("hmac", () => createHmac("sha256", "key").update("data").digest("hex"));
    await t("random", () => { const b = randomBytes(16); return [b.length, Buffer.isBuffer(b), /^[0-9a-f-]{36}$/.test(randomUUID()), typeof crypto.getRandomValues, typeof crypto.webcrypto?.subtle, crypto.timingSafeEqual(Buffer.from("a"), Buffer.from("a"))].join(","); });
    await t("badHash", () => createHash("sha3-999"));
    await t("als", async () => als.run({ id: 7 }, async () => { await new Promise((r) => setTimeout(r, 1)); await fetch("http://127.0.0.1:1/").catch(() => {}); return als.getStore().id + " " + typeof als.getStore(); }));
    await t("alsOutside", () => String(als.getStore()));
    await t("alsNested", () => als.run(1, () => als.run(2, () => als.getStore()) + "," + als.getStore()));
    await t("process", () => [typeof process.env, process.env.GREETING, typeof process.nextTick, process.platform, typeof process.version, process === globalThis.process].join(","));
    await t("nextTick", async () => { const order = []; await new Promise((r) => { process.nextTick(() => { order.push("tick"); r(); }); order.push("sync"); }); return order.join(","); });
    return new Response(out.join("\n"));
  },
};
