// Spliced into the prelude (at its `@include rpc.js` line, once per process
// before it is compiled), so it shares the prelude's scope: RPC values as
// tagged JSON, stubs, and how a call reaches a method.
  // ------------------------------------------------------------------ RPC
  // Values cross as JSON with tags for what JSON lacks (undefined, NaN,
  // BigInt, Date, Map, Set, RegExp, Error, ArrayBuffer and typed arrays),
  // as a structured clone would carry them; functions, stubs, streams,
  // Requests/Responses and cycles cannot cross here (DataCloneError).
  const RPC_LIMIT = 32 * 1024 * 1024;
  const typedArrays = { Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView };
  const standardErrors = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
  const dataCloneError = (what) => new DOMException(`Could not serialize object of type "${what}". This type does not support serialization (FlexiLib's RPC carries values, not functions, stubs or streams).`, 'DataCloneError');
  function put(o, k, v) { Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true }); }
  // `instances`: a class instance is sent as its own properties (storage,
  // as V8's serializer keeps it) rather than refused (RPC, as workerd).
  function rpcEncode(value, instances) {
    // Arrays, objects, Maps and Sets get ids in the order they are first
    // met; meeting one again sends its id (a shared or cyclic reference).
    const ids = new Map();
    const walk = (v) => {
      switch (typeof v) {
        case 'undefined': return { $: 'u' };
        case 'boolean': case 'string': return v;
        case 'number': return Number.isFinite(v) && !Object.is(v, -0) ? v : { $: 'n', v: Object.is(v, -0) ? '-0' : String(v) };
        case 'bigint': return { $: 'b', v: v.toString() };
        case 'function': throw dataCloneError(v.name ? `function ${v.name}` : 'function');
        case 'symbol': throw new DOMException(`${String(v)} could not be cloned.`, 'DataCloneError');
      }
      if (v === null) return null;
      if (ids.has(v)) return { $: '@', v: ids.get(v) };
      const container = () => ids.set(v, ids.size);
      {
        if (Array.isArray(v)) { container(); const a = []; for (let i = 0; i < v.length; i++) a.push(walk(v[i])); return a; }
        if (v instanceof Date) return { $: 'd', v: v.getTime() };
        if (v instanceof Map) { container(); const e = []; for (const [k, x] of v) { const ek = walk(k); e.push([ek, walk(x)]); } return { $: 'm', v: e }; }
        if (v instanceof Set) { container(); const e = []; for (const x of v) e.push(walk(x)); return { $: 's', v: e }; }
        if (v instanceof RegExp) return { $: 'r', v: v.source, f: v.flags };
        if (v instanceof Error) return { $: 'e', n: v.name, v: v.message };
        if (v instanceof ArrayBuffer) return { $: 'ab', v: N.base64UrlEncode(new Uint8Array(v)) };
        if (ArrayBuffer.isView(v)) {
          const name = Object.keys(typedArrays).find((k) => v instanceof typedArrays[k]) || 'Uint8Array';
          return { $: 'ta', t: name, v: N.base64UrlEncode(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
        }
        if (v instanceof ReadableStream || v instanceof Request || v instanceof Response || v instanceof RpcTarget) throw dataCloneError(v.constructor.name);
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null && !instances) {
          // A class instance: workerd's refusal, word for word.
          const name = (proto.constructor && proto.constructor.name) || 'Object';
          throw new DOMException(`Could not serialize object of type "${name}". This type does not support serialization.`, 'DataCloneError');
        }
        container();
        const o = {};
        for (const k of Object.keys(v)) put(o, k, walk(v[k]));
        return Object.prototype.hasOwnProperty.call(o, '$') ? { $: 'o', v: o } : o;
      }
    };
    const text = JSON.stringify(walk(value));
    if (text.length > RPC_LIMIT) throw new RangeError(`The RPC message is larger than ${RPC_LIMIT} bytes`);
    return text;
  }
  function rpcDecode(text) {
    return rpcRevive(JSON.parse(text));
  }
  // A parsed RPC message made values again.
  function rpcRevive(parsed) {
    // Containers are made (and numbered) before their contents, in the
    // encoder's order, so `{ $: '@' }` finds them.
    const made = [];
    const made_ = (x) => { made.push(x); return x; };
    const fill = (o, v) => { for (const k of Object.keys(v)) put(o, k, walk(v[k])); return o; };
    const walk = (v) => {
      if (v === null || typeof v !== 'object') return v;
      if (Array.isArray(v)) { const a = made_([]); for (const x of v) a.push(walk(x)); return a; }
      switch (v.$) {
        case undefined: return fill(made_({}), v);
        case 'o': return fill(made_({}), v.v);
        case '@': {
          if (!(v.v >= 0 && v.v < made.length)) throw new DOMException('Invalid RPC message', 'DataCloneError');
          return made[v.v];
        }
        case 'u': return undefined;
        case 'n': return Number(v.v);
        case 'b': return BigInt(v.v);
        case 'd': return new Date(v.v);
        case 'm': { const m = made_(new Map()); for (const [k, x] of v.v) { const key = walk(k); m.set(key, walk(x)); } return m; }
        case 's': { const set = made_(new Set()); for (const x of v.v) set.add(walk(x)); return set; }
        case 'r': return new RegExp(v.v, v.f);
        case 'e': return rpcError(v.n, v.v);
        case 'ab': return toArrayBuffer(N.base64UrlDecode(v.v) || new Uint8Array(0));
        case 'ta': {
          const bytes = N.base64UrlDecode(v.v) || new Uint8Array(0);
          const C = typedArrays[v.t] || Uint8Array;
          if (C === DataView) return new DataView(bytes.buffer, 0, bytes.byteLength);
          return new C(bytes.buffer, 0, Math.floor(bytes.byteLength / C.BYTES_PER_ELEMENT));
        }
        default: return fill(made_({}), v);
      }
    };
    return walk(parsed);
  }
  // An error as Cloudflare rethrows it in the caller: the standard classes
  // keep their name; another name becomes part of an Error's message.
  function rpcError(name, message) {
    if (name === 'DataCloneError') return new DOMException(message, name);
    const E = standardErrors[name];
    return E ? new E(message) : new Error(`${name}: ${message}`);
  }
  // The callee's side: the answer of an RPC call, encoded.
  async function rpcAnswer(run) {
    let result;
    try { result = { ok: await run() }; } catch (e) {
      result = { error: [(e && e.name) || 'Error', (e && e.message) || String(e)] };
    }
    try { return rpcEncode(result); } catch (e) {
      return JSON.stringify({ error: [(e && e.name) || 'Error', (e && e.message) || String(e)] });
    }
  }
  // Method `name` of `instance` as an RPC call reaches it: the methods and
  // getters of its class (not its own fields, nor Object's), as on
  // Cloudflare. `call`: a call with `args`; otherwise a property read.
  const rpcBases = () => [Object.prototype, WorkerEntrypoint.prototype, DurableObject.prototype, RpcTarget.prototype];
  function rpcInvoke(instance, name, call, args) {
    const missing = () => new TypeError(`The RPC receiver does not implement the method "${name}".`);
    if (name === 'constructor' || name === 'fetch' && !call) throw missing();
    let desc;
    for (let p = Object.getPrototypeOf(instance); p && !rpcBases().includes(p); p = Object.getPrototypeOf(p)) {
      desc = Object.getOwnPropertyDescriptor(p, name);
      if (desc) break;
    }
    if (!desc) throw missing();
    const value = desc.get ? desc.get.call(instance) : desc.value;
    if (!call) return value;
    if (typeof value !== 'function') throw missing();
    return value.apply(instance, args);
  }
  // A stub: the properties of `target`, and any other string property is a
  // remote method (called) or property (awaited). `send(method)` says where
  // the call goes (see fetchVia).
  function rpcStub(target, send) {
    const remote = async (prop, call, args) => {
      const body = rpcEncode(call ? args : null);
      const res = await fetchVia(send(call ? prop : prop + '\u0000get'), 'http://rpc.internal/', { method: 'POST', body });
      const text = await res.text();
      let answer = null;
      if (res.status === 200) { try { answer = rpcDecode(text); } catch (e) { answer = null; } }
      if (answer === null || typeof answer !== 'object') throw new Error(`RPC call to "${prop}" failed: the callee answered ${res.status} (${text.trim().slice(0, 200)})`);
      if (answer.error) throw rpcError(answer.error[0], answer.error[1]);
      return answer.ok;
    };
    return new Proxy(target, {
      get(t, prop) {
        if (prop in t) return t[prop];
        if (typeof prop !== 'string' || prop === 'then') return undefined;
        const method = (...args) => remote(prop, true, args);
        method.then = (resolve, reject) => remote(prop, false, null).then(resolve, reject);
        return method;
      },
    });
  }
  // RPC arguments (or `null` for a property read) and the method name, as a
  // call brings them.
  function rpcRequest(method, body) {
    const get = method.endsWith('\u0000get');
    const name = get ? method.slice(0, -4) : method;
    const args = rpcDecode(body ? dec(body) : 'null');
    return [name, !get, Array.isArray(args) ? args : []];
  }
