// The Workers globals: class shells over the runtime's native functions
// (`N`, Rust). Evaluated once per JS thread as a function taking `N` and
// returning the entry points the Rust event loop calls (`E`).
(function (N) {
  'use strict';
  const G = globalThis;
  const kInternal = Symbol('internal');
  const enc = (s) => N.utf8Encode(String(s));
  const dec = (b) => N.utf8Decode(b, false);
  const define = (name, value) =>
    Object.defineProperty(G, name, { value, writable: true, configurable: true, enumerable: false });

  // ---------------------------------------------------------------- bytes
  function isBufferSource(v) {
    return v instanceof ArrayBuffer || ArrayBuffer.isView(v);
  }
  // A Uint8Array viewing (not copying) a BufferSource.
  function view(v) {
    if (v instanceof Uint8Array) return v;
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    throw new TypeError('Expected an ArrayBuffer or ArrayBufferView');
  }
  // A Uint8Array copying a BufferSource.
  function copy(v) {
    return new Uint8Array(view(v));
  }
  function concat(chunks) {
    let len = 0;
    for (const c of chunks) len += c.byteLength;
    const out = new Uint8Array(len);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
  function toArrayBuffer(u8) {
    if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength) return u8.buffer;
    return u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
  }

  // ---------------------------------------------------------------- console
  function inspect(v, depth, seen) {
    if (typeof v === 'string') return depth === 0 ? v : JSON.stringify(v);
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v === 'bigint') return v + 'n';
    if (typeof v === 'symbol') return v.toString();
    if (typeof v === 'function') return `[Function: ${v.name || 'anonymous'}]`;
    if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}`.trimEnd() : `${v.name}: ${v.message}`;
    seen = seen || [];
    if (seen.includes(v)) return '[Circular]';
    if (depth > 2) return Array.isArray(v) ? '[Array]' : '[Object]';
    seen = seen.concat([v]);
    const d = depth + 1;
    if (Array.isArray(v)) return `[ ${v.map((x) => inspect(x, d, seen)).join(', ')} ]`;
    if (v instanceof Date) return v.toISOString();
    if (v instanceof RegExp) return String(v);
    if (v instanceof Map) return `Map(${v.size}) { ${[...v].map(([k, x]) => `${inspect(k, d, seen)} => ${inspect(x, d, seen)}`).join(', ')} }`;
    if (v instanceof Set) return `Set(${v.size}) { ${[...v].map((x) => inspect(x, d, seen)).join(', ')} }`;
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length}) [ ${Array.from(v).slice(0, 50).join(', ')} ]`;
    if (v instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${v.byteLength} }`;
    if (v instanceof Promise) return 'Promise { <pending> }';
    const name = v.constructor && v.constructor !== Object ? v.constructor.name + ' ' : '';
    const keys = Object.keys(v);
    if (keys.length === 0) return name + '{}';
    return `${name}{ ${keys.map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${inspect(v[k], d, seen)}`).join(', ')} }`;
  }
  function format(args) {
    let out = [];
    let i = 0;
    if (typeof args[0] === 'string' && args.length > 1 && /%[sdifjoOc%]/.test(args[0])) {
      i = 1;
      out.push(
        args[0].replace(/%([sdifjoOc%])/g, (m, f) => {
          if (f === '%') return '%';
          if (i >= args.length) return m;
          const a = args[i++];
          switch (f) {
            case 's': return typeof a === 'string' ? a : inspect(a, 1);
            case 'd': case 'i': return String(f === 'i' ? parseInt(a) : Number(a));
            case 'f': return String(parseFloat(a));
            case 'j': return JSON.stringify(a);
            case 'c': return '';
            default: return inspect(a, 1);
          }
        }),
      );
    }
    for (; i < args.length; i++) out.push(inspect(args[i], 0));
    return out.join(' ');
  }
  const counts = new Map();
  const timers = new Map();
  const console = {
    log: (...a) => N.log(1, format(a)),
    info: (...a) => N.log(1, format(a)),
    debug: (...a) => N.log(0, format(a)),
    warn: (...a) => N.log(2, format(a)),
    error: (...a) => N.log(3, format(a)),
    trace: (...a) => N.log(1, 'Trace: ' + format(a) + '\n' + new Error().stack),
    dir: (v) => N.log(1, inspect(v, 1)),
    table: (v) => N.log(1, inspect(v, 1)),
    assert: (c, ...a) => { if (!c) N.log(3, 'Assertion failed' + (a.length ? ': ' + format(a) : '')); },
    count: (l = 'default') => { counts.set(l, (counts.get(l) || 0) + 1); N.log(1, `${l}: ${counts.get(l)}`); },
    countReset: (l = 'default') => counts.delete(l),
    time: (l = 'default') => timers.set(l, N.now()),
    timeLog: (l = 'default', ...a) => N.log(1, `${l}: ${(N.now() - (timers.get(l) || 0)).toFixed(3)}ms ${format(a)}`.trimEnd()),
    timeEnd: (l = 'default') => { N.log(1, `${l}: ${(N.now() - (timers.get(l) || 0)).toFixed(3)}ms`); timers.delete(l); },
    group: () => {}, groupEnd: () => {}, groupCollapsed: () => {},
  };
  define('console', console);

  // ---------------------------------------------------------------- errors
  function errorText(e) {
    if (e instanceof Error) {
      const head = `${e.name}: ${e.message}`;
      return e.stack ? `${head}\n${e.stack}`.trimEnd() : head;
    }
    return 'Uncaught ' + inspect(e, 1);
  }
  const DOMException = G.DOMException;

  // ---------------------------------------------------------------- ops
  // A host operation (timer-free): Rust settles it with E.settle(id, ok, a, b).
  const pending = new Map();
  let opSeq = 0;
  function op(start) {
    return new Promise((resolve, reject) => {
      const id = ++opSeq;
      pending.set(id, [resolve, reject]);
      try {
        start(id);
      } catch (e) {
        pending.delete(id);
        reject(e);
      }
    });
  }

  // ---------------------------------------------------------------- timers
  const timerFns = new Map();
  let timerSeq = 0;
  function setTimer(fn, ms, args, repeat) {
    const id = ++timerSeq;
    ms = Math.max(0, Number(ms) || 0);
    timerFns.set(id, { fn, args, repeat: repeat ? Math.max(ms, 1) : 0 });
    N.timerStart(id, ms);
    return id;
  }
  function clearTimer(id) {
    if (timerFns.delete(Number(id))) N.timerCancel(Number(id));
  }
  define('setTimeout', (fn, ms, ...args) => setTimer(fn, ms, args, false));
  define('setInterval', (fn, ms, ...args) => setTimer(fn, ms, args, true));
  define('clearTimeout', clearTimer);
  define('clearInterval', clearTimer);
  function fireTimer(id) {
    const t = timerFns.get(id);
    if (!t) return;
    if (t.repeat) N.timerStart(id, t.repeat);
    else timerFns.delete(id);
    if (typeof t.fn === 'function') t.fn(...t.args);
  }
  define('scheduler', { wait: (ms) => new Promise((r) => setTimer(r, ms, [], false)) });

  // ---------------------------------------------------------------- base64, codecs
  define('btoa', (s) => {
    const r = N.btoa(String(s));
    if (r == null) throw new DOMException('btoa() can only operate on characters in the Latin1 (ISO/IEC 8859-1) range.', 'InvalidCharacterError');
    return r;
  });
  define('atob', (s) => {
    const r = N.atob(String(s));
    if (r == null) throw new DOMException("atob() called with invalid base64-encoded data. (Only whitespace, '+', '/', alphanumeric ASCII, and up to two terminal '=' signs when the input data length is divisible by 4 are allowed.)", 'InvalidCharacterError');
    return r;
  });

  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') { return enc(input); }
    encodeInto(input, dest) {
      const s = String(input);
      let read = 0;
      let written = 0;
      for (const ch of s) {
        const bytes = enc(ch);
        if (written + bytes.length > dest.length) break;
        dest.set(bytes, written);
        written += bytes.length;
        read += ch.length;
      }
      return { read, written };
    }
  }
  const utf8Labels = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];
  class TextDecoder {
    constructor(label = 'utf-8', options = {}) {
      const l = String(label).trim().toLowerCase();
      this._legacy = null;
      if (!utf8Labels.includes(l)) {
        // Every other WHATWG encoding, by encoding_rs.
        const name = N.encodingName(l);
        if (name == null) throw new RangeError(`"${label}" is not a valid encoding.`);
        if (name !== 'utf-8') this._legacy = name;
      }
      this._fatal = !!options.fatal;
      this._ignoreBOM = !!options.ignoreBOM;
      this._pending = null;
      this._bomSeen = false;
    }
    get encoding() { return this._legacy || 'utf-8'; }
    get fatal() { return this._fatal; }
    get ignoreBOM() { return this._ignoreBOM; }
    decode(input, options = {}) {
      let bytes = input === undefined ? new Uint8Array(0) : view(input);
      if (this._pending) {
        bytes = concat([this._pending, bytes]);
        this._pending = null;
      }
      if (this._legacy) {
        const stream = !!options.stream;
        const pair = N.legacyDecode(this._legacy, bytes, this._fatal, stream, !this._ignoreBOM && !this._bomSeen);
        if (pair == null) throw new TypeError('Failed to decode input.');
        if (pair[1] < bytes.length) this._pending = bytes.slice(pair[1]);
        this._bomSeen = stream && (this._bomSeen || pair[1] > 0);
        return pair[0];
      }
      if (options.stream) {
        // Keep an incomplete trailing sequence for the next call.
        let cut = bytes.length;
        for (let back = 1; back <= 3 && back <= bytes.length; back++) {
          const b = bytes[bytes.length - back];
          if ((b & 0xc0) === 0x80) continue;
          const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
          if (need > back) cut = bytes.length - back;
          break;
        }
        if (cut < bytes.length) {
          this._pending = bytes.slice(cut);
          bytes = bytes.subarray(0, cut);
        }
      }
      if (!this._ignoreBOM && !this._bomSeen && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        bytes = bytes.subarray(3);
      }
      if (bytes.length > 0) this._bomSeen = true;
      if (!options.stream) this._bomSeen = false;
      const s = N.utf8Decode(bytes, this._fatal);
      if (s == null) throw new TypeError('Failed to decode input.');
      return s;
    }
  }
  define('TextEncoder', TextEncoder);
  define('TextDecoder', TextDecoder);

  // ---------------------------------------------------------------- events, abort
  class Event {
    constructor(type, init = {}) {
      this.type = String(type);
      this.bubbles = !!init.bubbles;
      this.cancelable = !!init.cancelable;
      this.defaultPrevented = false;
      this.timeStamp = Date.now();
      this.target = null;
    }
    preventDefault() { if (this.cancelable) this.defaultPrevented = true; }
    stopPropagation() {}
    stopImmediatePropagation() { this._stop = true; }
  }
  class EventTarget {
    constructor() { this._listeners = new Map(); }
    addEventListener(type, fn, opts) {
      if (!fn) return;
      if (!this._listeners) this._listeners = new Map();
      const list = this._listeners.get(type) || [];
      if (!list.some((l) => l.fn === fn)) list.push({ fn, once: typeof opts === 'object' && !!opts.once });
      this._listeners.set(type, list);
    }
    removeEventListener(type, fn) {
      const list = this._listeners && this._listeners.get(type);
      if (list) this._listeners.set(type, list.filter((l) => l.fn !== fn));
    }
    dispatchEvent(event) {
      event.target = this;
      const list = ((this._listeners && this._listeners.get(event.type)) || []).slice();
      for (const l of list) {
        if (l.once) this.removeEventListener(event.type, l.fn);
        if (typeof l.fn === 'function') l.fn.call(this, event);
        else l.fn.handleEvent(event);
        if (event._stop) break;
      }
      return !event.defaultPrevented;
    }
  }
  define('Event', Event);
  define('EventTarget', EventTarget);

  class AbortSignal extends EventTarget {
    constructor(key) {
      if (key !== kInternal) throw new TypeError('Illegal constructor');
      super();
      this.aborted = false;
      this.reason = undefined;
      this.onabort = null;
    }
    throwIfAborted() { if (this.aborted) throw this.reason; }
    _abort(reason) {
      if (this.aborted) return;
      this.aborted = true;
      this.reason = reason === undefined ? new DOMException('The operation was aborted', 'AbortError') : reason;
      const ev = new Event('abort');
      if (typeof this.onabort === 'function') this.onabort(ev);
      this.dispatchEvent(ev);
    }
    static abort(reason) {
      const s = new AbortSignal(kInternal);
      s._abort(reason);
      return s;
    }
    static timeout(ms) {
      const s = new AbortSignal(kInternal);
      setTimeout(() => s._abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
      return s;
    }
    static any(signals) {
      const s = new AbortSignal(kInternal);
      for (const x of signals) {
        if (x.aborted) { s._abort(x.reason); return s; }
        x.addEventListener('abort', () => s._abort(x.reason));
      }
      return s;
    }
  }
  class AbortController {
    constructor() { this.signal = new AbortSignal(kInternal); }
    abort(reason) { this.signal._abort(reason); }
  }
  define('AbortSignal', AbortSignal);
  define('AbortController', AbortController);

  // ---------------------------------------------------------------- structuredClone
  function structuredClone(value, seen = new Map()) {
    if (value === null || typeof value !== 'object') {
      if (typeof value === 'function' || typeof value === 'symbol') {
        throw new DOMException(`${String(value)} could not be cloned.`, 'DataCloneError');
      }
      return value;
    }
    if (seen.has(value)) return seen.get(value);
    let out;
    if (value instanceof Date) out = new Date(value.getTime());
    else if (value instanceof RegExp) out = new RegExp(value.source, value.flags);
    else if (value instanceof ArrayBuffer) out = value.slice(0);
    else if (ArrayBuffer.isView(value)) {
      const buf = structuredClone(value.buffer, seen);
      out = value instanceof DataView ? new DataView(buf, value.byteOffset, value.byteLength) : new value.constructor(buf, value.byteOffset, value.length);
    } else if (value instanceof Map) {
      out = new Map();
      seen.set(value, out);
      for (const [k, v] of value) out.set(structuredClone(k, seen), structuredClone(v, seen));
      return out;
    } else if (value instanceof Set) {
      out = new Set();
      seen.set(value, out);
      for (const v of value) out.add(structuredClone(v, seen));
      return out;
    } else if (value instanceof Error) {
      const Ctor = [EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError].find((C) => value instanceof C) || Error;
      out = new Ctor(value.message);
      if (value.stack) out.stack = value.stack;
    } else if (value instanceof Blob) out = new (value instanceof File ? File : Blob)([value._bytes], value.name, { type: value.type });
    else if (value instanceof Boolean || value instanceof Number || value instanceof String) out = Object(value.valueOf());
    else if (Array.isArray(value)) {
      out = new Array(value.length);
      seen.set(value, out);
      for (let i = 0; i < value.length; i++) if (i in value) out[i] = structuredClone(value[i], seen);
      return out;
    } else {
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new DOMException(`${inspect(value, 1)} could not be cloned.`, 'DataCloneError');
      }
      out = {};
      seen.set(value, out);
      for (const k of Object.keys(value)) out[k] = structuredClone(value[k], seen);
      return out;
    }
    seen.set(value, out);
    return out;
  }
  define('structuredClone', (v) => structuredClone(v));

  // ---------------------------------------------------------------- URL
  const urlFields = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
  class URL {
    constructor(url, base) {
      const parts = N.urlParse(String(url), base === undefined ? undefined : String(base));
      if (parts == null) throw new TypeError(`Invalid URL string.`);
      this._parts = parts;
      this._params = null;
    }
    static canParse(url, base) {
      return N.urlParse(String(url), base === undefined ? undefined : String(base)) != null;
    }
    static parse(url, base) {
      return URL.canParse(url, base) ? new URL(url, base) : null;
    }
    _set(field, value) {
      const parts = N.urlSet(this._parts[0], field, String(value));
      if (parts != null) this._parts = parts;
      if (field === 'search' || field === 'href') this._params && this._params._reset(this._parts[9]);
    }
    get searchParams() {
      if (!this._params) {
        this._params = new URLSearchParams(this._parts[9]);
        this._params._url = this;
      }
      return this._params;
    }
    toString() { return this._parts[0]; }
    toJSON() { return this._parts[0]; }
  }
  urlFields.forEach((f, i) => {
    Object.defineProperty(URL.prototype, f, {
      get() { return this._parts[i]; },
      set: f === 'origin' ? undefined : function (v) { this._set(f, v); },
      enumerable: true,
      configurable: true,
    });
  });
  define('URL', URL);

  class URLSearchParams {
    constructor(init = '') {
      this._list = [];
      this._url = null;
      if (init instanceof URLSearchParams) this._list = init._list.map((p) => p.slice());
      else if (typeof init === 'object' && init !== null) {
        if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const p = [...pair];
            if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
            this._list.push([String(p[0]), String(p[1])]);
          }
        } else for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
      } else this._reset(String(init));
    }
    _reset(s) {
      if (s.startsWith('?')) s = s.slice(1);
      const flat = N.formDecode(s);
      this._list = [];
      for (let i = 0; i < flat.length; i += 2) this._list.push([flat[i], flat[i + 1]]);
    }
    _update() {
      if (this._url) {
        const s = this.toString();
        const parts = N.urlSet(this._url._parts[0], 'search', s);
        if (parts != null) this._url._parts = parts;
      }
    }
    get size() { return this._list.length; }
    append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
    delete(k, v) {
      k = String(k);
      this._list = this._list.filter(([a, b]) => !(a === k && (v === undefined || b === String(v))));
      this._update();
    }
    get(k) { const p = this._list.find(([a]) => a === String(k)); return p ? p[1] : null; }
    getAll(k) { return this._list.filter(([a]) => a === String(k)).map((p) => p[1]); }
    has(k, v) { return this._list.some(([a, b]) => a === String(k) && (v === undefined || b === String(v))); }
    set(k, v) {
      k = String(k);
      const i = this._list.findIndex(([a]) => a === k);
      if (i < 0) this._list.push([k, String(v)]);
      else {
        this._list[i][1] = String(v);
        this._list = this._list.filter(([a], j) => a !== k || j === i);
      }
      this._update();
    }
    sort() {
      this._list = this._list.map((p, i) => [p, i]).sort((x, y) => (x[0][0] < y[0][0] ? -1 : x[0][0] > y[0][0] ? 1 : x[1] - y[1])).map((x) => x[0]);
      this._update();
    }
    forEach(fn, thisArg) { for (const [k, v] of this._list) fn.call(thisArg, v, k, this); }
    *entries() { for (const p of this._list) yield [p[0], p[1]]; }
    *keys() { for (const p of this._list) yield p[0]; }
    *values() { for (const p of this._list) yield p[1]; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return N.formEncode(this._list.flat()); }
  }
  define('URLSearchParams', URLSearchParams);

  // ---------------------------------------------------------------- Headers
  const tokenRe = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const headerNames = new Map(); // valid names seen, lowercased
  function headerName(n) {
    const known = headerNames.get(n);
    if (known !== undefined) return known;
    const name = String(n);
    if (!tokenRe.test(name)) throw new TypeError(`Invalid header name.`);
    const lower = name.toLowerCase();
    if (typeof n === 'string' && headerNames.size < 1024) headerNames.set(n, lower);
    return lower;
  }
  const headerValues = new Map(); // short valid values seen, normalized
  function headerValue(v) {
    const known = typeof v === 'string' ? headerValues.get(v) : undefined;
    if (known !== undefined) return known;
    const value = String(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
    if (/[\0\r\n]/.test(value)) throw new TypeError(`Invalid header value.`);
    if (typeof v === 'string' && v.length <= 64 && headerValues.size < 256) headerValues.set(v, value);
    return value;
  }
  class Headers {
    constructor(init) {
      this._list = [];
      this._immutable = false;
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        this._list = init._list.map((p) => p.slice());
      } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError('Header pairs must contain exactly two items');
          this.append(p[0], p[1]);
        }
      } else if (typeof init === 'object') {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      } else throw new TypeError('Failed to construct Headers: invalid init');
    }
    _check() { if (this._immutable) throw new TypeError("Can't modify immutable headers."); }
    append(n, v) { this._check(); this._list.push([headerName(n), headerValue(v)]); }
    delete(n) { this._check(); n = headerName(n); this._list = this._list.filter((p) => p[0] !== n); }
    get(n) {
      n = headerName(n);
      const list = this._list;
      let value = null;
      for (let i = 0; i < list.length; i++) {
        if (list[i][0] === n) value = value === null ? list[i][1] : value + ', ' + list[i][1];
      }
      return value;
    }
    getAll(n) {
      n = headerName(n);
      if (n !== 'set-cookie') throw new TypeError('getAll() can only be used with the header name "Set-Cookie".');
      return this.getSetCookie();
    }
    getSetCookie() { return this._list.filter((p) => p[0] === 'set-cookie').map((p) => p[1]); }
    has(n) {
      n = headerName(n);
      const list = this._list;
      for (let i = 0; i < list.length; i++) if (list[i][0] === n) return true;
      return false;
    }
    set(n, v) {
      this._check();
      n = headerName(n);
      v = headerValue(v);
      const i = this._list.findIndex((p) => p[0] === n);
      if (i < 0) this._list.push([n, v]);
      else {
        this._list[i][1] = v;
        this._list = this._list.filter((p, j) => p[0] !== n || j === i);
      }
    }
    _sorted() {
      const names = [...new Set(this._list.map((p) => p[0]))].sort();
      const out = [];
      for (const n of names) {
        if (n === 'set-cookie') for (const v of this.getSetCookie()) out.push([n, v]);
        else out.push([n, this.get(n)]);
      }
      return out;
    }
    forEach(fn, thisArg) { for (const [k, v] of this._sorted()) fn.call(thisArg, v, k, this); }
    *entries() { yield* this._sorted(); }
    *keys() { for (const p of this._sorted()) yield p[0]; }
    *values() { for (const p of this._sorted()) yield p[1]; }
    [Symbol.iterator]() { return this.entries(); }
  }
  define('Headers', Headers);
  function flatHeaders(h) {
    const list = h._list;
    const out = new Array(list.length * 2);
    for (let i = 0; i < list.length; i++) {
      out[2 * i] = list[i][0];
      out[2 * i + 1] = list[i][1];
    }
    return out;
  }
  function headersFromFlat(flat, immutable) {
    const h = Object.create(Headers.prototype);
    const list = new Array(flat.length >> 1);
    for (let i = 0; i < flat.length; i += 2) list[i >> 1] = [flat[i].toLowerCase(), flat[i + 1]];
    h._list = list;
    h._immutable = immutable;
    return h;
  }

  // ---------------------------------------------------------------- Blob, File, FormData
  class Blob {
    constructor(parts = [], options = {}) {
      const chunks = [];
      for (const p of parts) {
        if (p instanceof Blob) chunks.push(p._bytes);
        else if (isBufferSource(p)) chunks.push(copy(p));
        else chunks.push(enc(p));
      }
      this._bytes = concat(chunks);
      const t = options.type === undefined ? '' : String(options.type);
      this._type = /^[\x20-\x7e]*$/.test(t) ? t.toLowerCase() : '';
    }
    get size() { return this._bytes.byteLength; }
    get type() { return this._type; }
    slice(start = 0, end = this.size, type = '') {
      const b = new Blob([], { type });
      const s = start < 0 ? Math.max(this.size + start, 0) : Math.min(start, this.size);
      const e = end < 0 ? Math.max(this.size + end, 0) : Math.min(end, this.size);
      b._bytes = this._bytes.slice(s, Math.max(s, e));
      return b;
    }
    async text() { return dec(this._bytes); }
    async arrayBuffer() { return toArrayBuffer(this._bytes.slice()); }
    async bytes() { return this._bytes.slice(); }
    stream() { return streamOfBytes(this._bytes); }
  }
  class File extends Blob {
    constructor(parts, name, options = {}) {
      super(parts, options);
      this._name = String(name);
      this._lastModified = options.lastModified === undefined ? Date.now() : Number(options.lastModified);
    }
    get name() { return this._name; }
    get lastModified() { return this._lastModified; }
  }
  define('Blob', Blob);
  define('File', File);

  function formValue(v, filename) {
    if (v instanceof Blob) {
      if (!(v instanceof File) || filename !== undefined) {
        return new File([v], filename !== undefined ? filename : v instanceof File ? v.name : 'blob', { type: v.type });
      }
      return v;
    }
    return String(v);
  }
  class FormData {
    constructor() { this._list = []; }
    append(n, v, f) { this._list.push([String(n), formValue(v, f)]); }
    delete(n) { this._list = this._list.filter((p) => p[0] !== String(n)); }
    get(n) { const p = this._list.find((x) => x[0] === String(n)); return p ? p[1] : null; }
    getAll(n) { return this._list.filter((x) => x[0] === String(n)).map((p) => p[1]); }
    has(n) { return this._list.some((x) => x[0] === String(n)); }
    set(n, v, f) {
      n = String(n);
      const i = this._list.findIndex((p) => p[0] === n);
      if (i < 0) this._list.push([n, formValue(v, f)]);
      else {
        this._list[i] = [n, formValue(v, f)];
        this._list = this._list.filter((p, j) => p[0] !== n || j === i);
      }
    }
    forEach(fn, thisArg) { for (const [k, v] of this._list) fn.call(thisArg, v, k, this); }
    *entries() { for (const p of this._list) yield [p[0], p[1]]; }
    *keys() { for (const p of this._list) yield p[0]; }
    *values() { for (const p of this._list) yield p[1]; }
    [Symbol.iterator]() { return this.entries(); }
  }
  define('FormData', FormData);
  function encodeMultipart(form) {
    const boundary = '----FlexiLibFormBoundary' + N.uuid().replace(/-/g, '');
    const esc = (s) => s.replace(/\r\n|\r|\n/g, '\r\n').replace(/"/g, '%22').replace(/\r\n/g, '%0D%0A');
    const chunks = [];
    for (const [name, value] of form._list) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${esc(name)}"`;
      if (value instanceof File) {
        head += `; filename="${esc(value.name)}"\r\nContent-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`;
        chunks.push(enc(head), value._bytes, enc('\r\n'));
      } else chunks.push(enc(head + '\r\n\r\n' + value.replace(/\r\n|\r|\n/g, '\r\n') + '\r\n'));
    }
    chunks.push(enc(`--${boundary}--\r\n`));
    return [concat(chunks), `multipart/form-data; boundary=${boundary}`];
  }
  function parseForm(bytes, contentType) {
    const ct = (contentType || '').toLowerCase();
    const form = new FormData();
    if (ct.startsWith('multipart/form-data')) {
      const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
      if (!m) throw new TypeError('Failed to parse body as FormData: no multipart boundary.');
      const flat = N.multipart(bytes, (m[1] || m[2]).trim());
      for (let i = 0; i < flat.length; i += 4) {
        const [name, filename, type, data] = [flat[i], flat[i + 1], flat[i + 2], flat[i + 3]];
        if (filename === null) form.append(name, dec(data));
        else form.append(name, new File([data], filename, { type: type || '' }));
      }
      return form;
    }
    if (ct.startsWith('application/x-www-form-urlencoded')) {
      const flat = N.formDecode(dec(bytes));
      for (let i = 0; i < flat.length; i += 2) form.append(flat[i], flat[i + 1]);
      return form;
    }
    throw new TypeError('Unrecognized Content-Type header value. FormData can only parse the following MIME types: multipart/form-data, application/x-www-form-urlencoded');
  }

  // ---------------------------------------------------------------- streams
  function settled() {
    let resolve, reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    promise.catch(() => {});
    return { promise, resolve, reject };
  }
  class ReadableStreamDefaultController {
    constructor(stream) { this._s = stream; }
    get desiredSize() {
      const s = this._s;
      if (s._state === 'errored') return null;
      if (s._state === 'closed') return 0;
      return s._hwm - s._queueSize;
    }
    enqueue(chunk) {
      const s = this._s;
      if (s._closeRequested || s._state !== 'readable') throw new TypeError('Cannot enqueue to a closed stream');
      const r = s._reader;
      if (r && r._requests.length > 0) {
        r._requests.shift().resolve({ value: chunk, done: false });
      } else {
        const size = s._sizeOf(chunk);
        s._queue.push([chunk, size]);
        s._queueSize += size;
      }
      s._pullIfNeeded();
    }
    close() {
      const s = this._s;
      if (s._closeRequested || s._state !== 'readable') throw new TypeError('Cannot close a closed stream');
      s._closeRequested = true;
      if (s._queue.length === 0) s._close();
    }
    error(e) { this._s._error(e); }
  }
  class ReadableStream {
    constructor(source = {}, strategy = {}) {
      source = source || {};
      this._source = source;
      this._state = 'readable';
      this._queue = [];
      this._queueSize = 0;
      this._reader = null;
      this._closeRequested = false;
      this._started = false;
      this._pulling = false;
      this._pullAgain = false;
      this._disturbed = false;
      this._storedError = undefined;
      const bytes = source.type === 'bytes';
      this._hwm = strategy.highWaterMark !== undefined ? Number(strategy.highWaterMark) : bytes ? 0 : 1;
      this._size = typeof strategy.size === 'function' ? strategy.size : null;
      this._controller = new ReadableStreamDefaultController(this);
      if (bytes) {
        Object.defineProperty(this._controller, 'byobRequest', { value: null });
      }
      let start;
      try {
        start = typeof source.start === 'function' ? source.start.call(source, this._controller) : undefined;
      } catch (e) {
        this._error(e);
        return;
      }
      Promise.resolve(start).then(
        () => { this._started = true; this._pullIfNeeded(); },
        (e) => this._error(e),
      );
    }
    _sizeOf(chunk) {
      if (this._size) return this._size(chunk);
      return 1;
    }
    _pullIfNeeded() {
      if (!this._started || this._state !== 'readable' || this._closeRequested) return;
      const waiting = this._reader ? this._reader._requests.length : 0;
      if (waiting === 0 && this._hwm - this._queueSize <= 0) return;
      if (typeof this._source.pull !== 'function') return;
      if (this._pulling) { this._pullAgain = true; return; }
      this._pulling = true;
      let p;
      try {
        p = this._source.pull.call(this._source, this._controller);
      } catch (e) {
        this._error(e);
        return;
      }
      Promise.resolve(p).then(
        () => {
          this._pulling = false;
          if (this._pullAgain) { this._pullAgain = false; this._pullIfNeeded(); }
        },
        (e) => this._error(e),
      );
    }
    _close() {
      if (this._state !== 'readable') return;
      this._state = 'closed';
      const r = this._reader;
      if (r) {
        for (const req of r._requests.splice(0)) req.resolve({ value: undefined, done: true });
        r._closed.resolve(undefined);
      }
    }
    _error(e) {
      if (this._state !== 'readable') return;
      this._state = 'errored';
      this._storedError = e;
      this._queue = [];
      this._queueSize = 0;
      const r = this._reader;
      if (r) {
        for (const req of r._requests.splice(0)) req.reject(e);
        r._closed.reject(e);
      }
    }
    _read() {
      this._disturbed = true;
      if (this._queue.length > 0) {
        const [chunk, size] = this._queue.shift();
        this._queueSize -= size;
        if (this._closeRequested && this._queue.length === 0) this._close();
        else this._pullIfNeeded();
        return Promise.resolve({ value: chunk, done: false });
      }
      if (this._state === 'closed') return Promise.resolve({ value: undefined, done: true });
      if (this._state === 'errored') return Promise.reject(this._storedError);
      const req = settled();
      this._reader._requests.push(req);
      this._pullIfNeeded();
      return req.promise;
    }
    _cancel(reason) {
      this._disturbed = true;
      if (this._state === 'closed') return Promise.resolve();
      if (this._state === 'errored') return Promise.reject(this._storedError);
      this._queue = [];
      this._queueSize = 0;
      this._close();
      try {
        return Promise.resolve(typeof this._source.cancel === 'function' ? this._source.cancel.call(this._source, reason) : undefined).then(() => undefined);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    get locked() { return this._reader !== null; }
    cancel(reason) {
      if (this.locked) return Promise.reject(new TypeError('This ReadableStream is currently locked to a reader.'));
      return this._cancel(reason);
    }
    getReader(options = {}) {
      if (options && options.mode === 'byob') throw new TypeError('BYOB readers are not supported by this runtime.');
      return new ReadableStreamDefaultReader(this);
    }
    tee() {
      const reader = this.getReader();
      let c1, c2;
      let canceled = 0;
      const pull = async () => {
        const { value, done } = await reader.read();
        if (done) {
          try { c1.close(); } catch (_) {}
          try { c2.close(); } catch (_) {}
          return;
        }
        try { c1.enqueue(value); } catch (_) {}
        try { c2.enqueue(value); } catch (_) {}
      };
      const cancel = () => { if (++canceled === 2) reader.cancel(); };
      const a = new ReadableStream({ start(c) { c1 = c; }, pull, cancel });
      const b = new ReadableStream({ start(c) { c2 = c; }, pull, cancel });
      return [a, b];
    }
    async pipeTo(dest, options = {}) {
      const reader = this.getReader();
      const writer = dest.getWriter();
      try {
        for (;;) {
          if (options.signal && options.signal.aborted) throw options.signal.reason;
          const { value, done } = await reader.read();
          if (done) break;
          await writer.write(value);
        }
        if (!options.preventClose) await writer.close();
      } catch (e) {
        if (!options.preventAbort) await writer.abort(e).catch(() => {});
        if (!options.preventCancel) await reader.cancel(e).catch(() => {});
        throw e;
      } finally {
        reader.releaseLock();
        writer.releaseLock();
      }
    }
    pipeThrough(transform, options) {
      this.pipeTo(transform.writable, options).catch(() => {});
      return transform.readable;
    }
    values(options = {}) {
      const reader = this.getReader();
      return {
        next: () => reader.read(),
        return: async (v) => {
          if (!options.preventCancel) await reader.cancel(v);
          else reader.releaseLock();
          return { value: v, done: true };
        },
        [Symbol.asyncIterator]() { return this; },
      };
    }
    [Symbol.asyncIterator](options) { return this.values(options); }
    static from(iterable) {
      const it = iterable[Symbol.asyncIterator] ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
      return new ReadableStream({
        async pull(c) {
          const { value, done } = await it.next();
          if (done) c.close();
          else c.enqueue(value);
        },
        async cancel(r) { if (it.return) await it.return(r); },
      }, { highWaterMark: 0 });
    }
  }
  class ReadableStreamDefaultReader {
    constructor(stream) {
      if (stream._reader) throw new TypeError('This ReadableStream is currently locked to a reader.');
      this._stream = stream;
      this._requests = [];
      this._closed = settled();
      stream._reader = this;
      if (stream._state === 'closed') this._closed.resolve(undefined);
      else if (stream._state === 'errored') this._closed.reject(stream._storedError);
    }
    get closed() { return this._closed.promise; }
    read() {
      if (!this._stream) return Promise.reject(new TypeError('This ReadableStream reader has been released.'));
      return this._stream._read();
    }
    cancel(reason) {
      if (!this._stream) return Promise.reject(new TypeError('This ReadableStream reader has been released.'));
      return this._stream._cancel(reason);
    }
    releaseLock() {
      const s = this._stream;
      if (!s) return;
      const e = new TypeError('This ReadableStream reader has been released.');
      for (const req of this._requests.splice(0)) req.reject(e);
      if (s._state === 'readable') this._closed.reject(e);
      s._reader = null;
      this._stream = null;
    }
  }
  define('ReadableStream', ReadableStream);
  define('ReadableStreamDefaultReader', ReadableStreamDefaultReader);
  define('ReadableStreamDefaultController', ReadableStreamDefaultController);

  class WritableStream {
    constructor(sink = {}, strategy = {}) {
      this._sink = sink || {};
      this._state = 'writable';
      this._queue = [];
      this._hwm = strategy.highWaterMark !== undefined ? Number(strategy.highWaterMark) : 1;
      this._writer = null;
      this._busy = false;
      this._started = false;
      this._storedError = undefined;
      this._closing = null;
      this._controller = { error: (e) => this._error(e), signal: new AbortController().signal };
      let start;
      try {
        start = typeof this._sink.start === 'function' ? this._sink.start.call(this._sink, this._controller) : undefined;
      } catch (e) {
        this._error(e);
        return;
      }
      Promise.resolve(start).then(() => { this._started = true; this._advance(); }, (e) => this._error(e));
    }
    get locked() { return this._writer !== null; }
    getWriter() { return new WritableStreamDefaultWriter(this); }
    abort(reason) {
      if (this.locked) return Promise.reject(new TypeError('This WritableStream is currently locked to a writer.'));
      return this._abort(reason);
    }
    close() {
      if (this.locked) return Promise.reject(new TypeError('This WritableStream is currently locked to a writer.'));
      return this._close();
    }
    _desired() { return this._hwm - this._queue.length - (this._busy ? 1 : 0); }
    _write(chunk) {
      if (this._state === 'errored') return Promise.reject(this._storedError);
      if (this._state !== 'writable' || this._closing) return Promise.reject(new TypeError('This WritableStream has been closed.'));
      const req = settled();
      this._queue.push({ chunk, req });
      this._advance();
      this._updateReady();
      return req.promise;
    }
    _close() {
      if (this._state !== 'writable' || this._closing) return Promise.reject(new TypeError('This WritableStream has been closed.'));
      this._closing = settled();
      this._advance();
      return this._closing.promise;
    }
    async _abort(reason) {
      if (this._state !== 'writable') return;
      this._error(reason);
      if (typeof this._sink.abort === 'function') await this._sink.abort.call(this._sink, reason);
    }
    _error(e) {
      if (this._state !== 'writable') return;
      this._state = 'errored';
      this._storedError = e;
      for (const { req } of this._queue.splice(0)) req.reject(e);
      if (this._closing) this._closing.reject(e);
      if (this._writer) {
        this._writer._closed.reject(e);
        this._writer._readyReject(e);
      }
    }
    _updateReady() {
      const w = this._writer;
      if (!w || this._state !== 'writable') return;
      if (this._desired() > 0) w._readyResolve();
      else if (w._readyDone) w._newReady();
    }
    _advance() {
      if (!this._started || this._busy || this._state !== 'writable') return;
      if (this._queue.length === 0) {
        if (this._closing) {
          this._busy = true;
          let p;
          try {
            p = typeof this._sink.close === 'function' ? this._sink.close.call(this._sink) : undefined;
          } catch (e) {
            p = Promise.reject(e);
          }
          Promise.resolve(p).then(
            () => {
              this._busy = false;
              this._state = 'closed';
              this._closing.resolve(undefined);
              if (this._writer) this._writer._closed.resolve(undefined);
            },
            (e) => { this._busy = false; this._error(e); },
          );
        }
        return;
      }
      const { chunk, req } = this._queue.shift();
      this._busy = true;
      let p;
      try {
        p = typeof this._sink.write === 'function' ? this._sink.write.call(this._sink, chunk, this._controller) : undefined;
      } catch (e) {
        p = Promise.reject(e);
      }
      Promise.resolve(p).then(
        () => {
          this._busy = false;
          req.resolve(undefined);
          this._updateReady();
          this._advance();
        },
        (e) => { this._busy = false; req.reject(e); this._error(e); },
      );
    }
  }
  class WritableStreamDefaultWriter {
    constructor(stream) {
      if (stream._writer) throw new TypeError('This WritableStream is currently locked to a writer.');
      this._stream = stream;
      stream._writer = this;
      this._closed = settled();
      this._newReady();
      if (stream._state === 'errored') {
        this._closed.reject(stream._storedError);
        this._readyReject(stream._storedError);
      } else if (stream._state === 'closed') this._closed.resolve(undefined);
      if (stream._desired() > 0) this._readyResolve();
    }
    _newReady() {
      const r = settled();
      this._ready = r.promise;
      this._readyDone = false;
      this._readyResolve = () => { this._readyDone = true; r.resolve(undefined); };
      this._readyReject = (e) => { this._readyDone = true; r.reject(e); };
    }
    get closed() { return this._closed.promise; }
    get ready() { return this._ready; }
    get desiredSize() { return this._stream ? this._stream._desired() : null; }
    write(chunk) {
      if (!this._stream) return Promise.reject(new TypeError('This WritableStream writer has been released.'));
      return this._stream._write(chunk);
    }
    close() {
      if (!this._stream) return Promise.reject(new TypeError('This WritableStream writer has been released.'));
      return this._stream._close();
    }
    abort(reason) {
      if (!this._stream) return Promise.reject(new TypeError('This WritableStream writer has been released.'));
      return this._stream._abort(reason);
    }
    releaseLock() {
      if (!this._stream) return;
      this._stream._writer = null;
      this._stream = null;
    }
  }
  define('WritableStream', WritableStream);
  define('WritableStreamDefaultWriter', WritableStreamDefaultWriter);

  class TransformStream {
    constructor(transformer = {}, writableStrategy = {}, readableStrategy = {}) {
      transformer = transformer || {};
      let rc;
      let wake = null;
      // As the standard's TransformStream: writes wait while the readable
      // side has no room and no reader waiting.
      let backpressure = true;
      this.readable = new ReadableStream({
        start(c) { rc = c; },
        pull() {
          backpressure = false;
          if (wake) { const w = wake; wake = null; w(); }
        },
        cancel: (reason) => { this.writable._error(reason); },
      }, { highWaterMark: readableStrategy.highWaterMark !== undefined ? readableStrategy.highWaterMark : 0, size: readableStrategy.size });
      const controller = {
        enqueue: (chunk) => {
          rc.enqueue(chunk);
          if (rc.desiredSize <= 0) backpressure = true;
        },
        error: (e) => { rc.error(e); this.writable._error(e); },
        terminate: () => { try { rc.close(); } catch (_) {} this.writable._error(new TypeError('The transform stream has been terminated')); },
        get desiredSize() { return rc.desiredSize; },
      };
      const started = Promise.resolve(typeof transformer.start === 'function' ? transformer.start(controller) : undefined);
      this.writable = new WritableStream({
        start: () => started,
        async write(chunk) {
          // Back-pressure: wait until the readable side wants more.
          if (backpressure && readable._state === 'readable') {
            await new Promise((r) => { wake = r; });
          }
          if (typeof transformer.transform === 'function') await transformer.transform(chunk, controller);
          else controller.enqueue(chunk);
        },
        async close() {
          if (typeof transformer.flush === 'function') await transformer.flush(controller);
          try { rc.close(); } catch (_) {}
        },
        abort(e) { rc.error(e); },
      }, writableStrategy);
      const readable = this.readable;
    }
  }
  define('TransformStream', TransformStream);
  define('IdentityTransformStream', class IdentityTransformStream extends TransformStream {});
  define('FixedLengthStream', class FixedLengthStream extends TransformStream {
    constructor(length) { super(); this._length = length; this.readable._length = Number(length); }
  });
  define('ByteLengthQueuingStrategy', class { constructor({ highWaterMark }) { this.highWaterMark = highWaterMark; } size(c) { return c.byteLength; } });
  define('CountQueuingStrategy', class { constructor({ highWaterMark }) { this.highWaterMark = highWaterMark; } size() { return 1; } });
  define('TextEncoderStream', class TextEncoderStream extends TransformStream {
    constructor() { super({ transform(chunk, c) { c.enqueue(enc(chunk)); } }); }
    get encoding() { return 'utf-8'; }
  });
  define('TextDecoderStream', class TextDecoderStream extends TransformStream {
    constructor(label, options) {
      const d = new TextDecoder(label, options);
      super({
        transform(chunk, c) { const s = d.decode(chunk, { stream: true }); if (s) c.enqueue(s); },
        flush(c) { const s = d.decode(); if (s) c.enqueue(s); },
      });
    }
    get encoding() { return 'utf-8'; }
  });

  // A stream of known bytes: its length is known (`_length`), as R2's put
  // asks of a stream.
  function streamOfBytes(bytes) {
    let done = false;
    const stream = new ReadableStream({
      type: 'bytes',
      pull(c) {
        if (!done && bytes.byteLength > 0) c.enqueue(bytes.slice());
        done = true;
        c.close();
      },
    });
    stream._length = bytes.byteLength;
    return stream;
  }
  async function readAll(stream) {
    const reader = stream.getReader();
    const chunks = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (isBufferSource(value)) chunks.push(copy(value));
      else throw new TypeError('This ReadableStream did not return bytes.');
    }
    reader.releaseLock();
    return concat(chunks);
  }

  // ---------------------------------------------------------------- bodies
  // [bytes | stream | null, content type | null]
  function extractBody(body) {
    if (body === null || body === undefined) return [null, null];
    if (typeof body === 'string') return [body, 'text/plain;charset=UTF-8'];
    if (isBufferSource(body)) return [copy(body), null];
    if (body instanceof ReadableStream) return [body, null];
    if (body instanceof Blob) return [body._bytes.slice(), body.type || null];
    if (body instanceof URLSearchParams) return [enc(body.toString()), 'application/x-www-form-urlencoded;charset=UTF-8'];
    if (body instanceof FormData) return encodeMultipart(body);
    return [enc(String(body)), 'text/plain;charset=UTF-8'];
  }
  const bodyUsedMessage = 'Body has already been used. It can only be used once. Use tee() first if you need to read it twice.';
  class Body {
    _initBody(body, headers) {
      const extracted = extractBody(body);
      const b = extracted[0];
      const type = extracted[1];
      this._bytes = b instanceof ReadableStream ? null : b;
      this._stream = b instanceof ReadableStream ? b : null;
      this._used = false;
      if (type) {
        const list = headers._list;
        let typed = false;
        for (let i = 0; i < list.length; i++) if (list[i][0] === 'content-type') typed = true;
        if (!typed) list.push(['content-type', type]);
      }
    }
    get body() {
      if (this._stream) return this._stream;
      if (this._bytes === null) return null;
      this._stream = streamOfBytes(typeof this._bytes === 'string' ? enc(this._bytes) : this._bytes);
      this._bytes = null;
      return this._stream;
    }
    get bodyUsed() { return this._used || (this._stream !== null && this._stream._disturbed); }
    async _consume() {
      if (this.bodyUsed) throw new TypeError(bodyUsedMessage);
      this._used = true;
      if (this._stream) {
        if (this._stream.locked) throw new TypeError('This ReadableStream is currently locked to a reader.');
        return readAll(this._stream);
      }
      const b = this._bytes;
      this._bytes = null;
      if (typeof b === 'string') return enc(b);
      return b || new Uint8Array(0);
    }
    async arrayBuffer() { return toArrayBuffer(await this._consume()); }
    async bytes() { return this._consume(); }
    async text() {
      if (typeof this._bytes === 'string' && !this._stream && !this._used) {
        const text = this._bytes;
        this._used = true;
        this._bytes = null;
        return text;
      }
      return dec(await this._consume());
    }
    async json() { return JSON.parse(await this.text()); }
    async blob() {
      const b = await this._consume();
      return new Blob([b], { type: this.headers.get('content-type') || '' });
    }
    async formData() { return parseForm(await this._consume(), this.headers.get('content-type')); }
    _cloneBody() {
      if (this.bodyUsed) throw new TypeError('Body has already been used. It can only be used once. Use tee() first if you need to read it twice.');
      if (this._stream) {
        const [a, b] = this._stream.tee();
        this._stream = a;
        return b;
      }
      return this._bytes;
    }
  }

  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'COPY', 'LOCK', 'MKCOL',
    'MOVE', 'PROPFIND', 'PROPPATCH', 'SEARCH', 'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'REPORT', 'MKACTIVITY', 'CHECKOUT',
    'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE', 'MKCALENDAR', 'LINK', 'UNLINK'];
  class Request extends Body {
    constructor(input, init = {}) {
      super();
      init = init || {};
      let src = null;
      if (input instanceof Request) src = input;
      else if (input instanceof URL) input = input.href;
      const url = src ? src.url : N.urlParse(String(input), undefined);
      if (url == null) throw new TypeError(`Invalid URL: ${String(input)}`);
      this._url = src ? src._url : url[0];
      let method = init.method !== undefined ? String(init.method) : src ? src.method : 'GET';
      if (!methods.includes(method.toUpperCase())) throw new TypeError(`Invalid HTTP method string: ${method}`);
      method = method.toUpperCase();
      this._method = method;
      this._headers = new Headers(init.headers !== undefined ? init.headers : src ? src.headers : undefined);
      this._redirect = init.redirect !== undefined ? String(init.redirect) : src ? src.redirect : 'follow';
      this._signal = init.signal !== undefined ? init.signal : src ? src._signal : null;
      this._cf = init.cf !== undefined ? init.cf : src ? src.cf : undefined;
      let body = init.body;
      let inherited = null;
      if (body === undefined && src) {
        if (src.bodyUsed) throw new TypeError(bodyUsedMessage);
        inherited = src;
        body = src._stream || src._bytes;
      }
      if (body !== undefined && body !== null && (method === 'GET' || method === 'HEAD')) {
        throw new TypeError('Request with a GET or HEAD method cannot have a body.');
      }
      if (inherited) {
        // The body moves over as it is (no content type is implied).
        this._initBody(null, this._headers);
        this._bytes = inherited._bytes;
        this._stream = inherited._stream;
        inherited._used = inherited._stream !== null || inherited._bytes !== null;
      } else this._initBody(body, this._headers);
    }
    get url() { return this._url; }
    get method() { return this._method; }
    get headers() { return this._headers; }
    get redirect() { return this._redirect; }
    get signal() { return this._signal || (this._signal = new AbortController().signal); }
    get cf() { return this._cf; }
    get fetcher() { return null; }
    get integrity() { return ''; }
    get keepalive() { return false; }
    clone() {
      const r = new Request(this._url, { method: this._method, headers: this._headers, redirect: this._redirect, signal: this._signal, cf: this._cf });
      const b = this._cloneBody();
      r._bytes = b instanceof ReadableStream ? null : b;
      r._stream = b instanceof ReadableStream ? b : null;
      return r;
    }
  }
  define('Request', Request);

  const nullBodyStatus = [101, 204, 205, 304];
  const redirectStatus = [301, 302, 303, 307, 308];
  class Response extends Body {
    constructor(body = null, init = undefined) {
      super();
      let status = 200;
      let statusText = '';
      let headers;
      let webSocket = null;
      if (init === undefined || init === null) {
        headers = new Headers();
      } else {
        const internal = init[kInternal];
        if (init.status !== undefined) status = Number(init.status);
        const upgrade = status === 101 && init.webSocket instanceof WebSocket;
        if (!internal && !upgrade && (!Number.isInteger(status) || status < 200 || status > 599)) {
          throw new RangeError('Responses may only be constructed with status codes in the range 200 to 599, inclusive.');
        }
        if (!internal && body !== null && body !== undefined && nullBodyStatus.includes(status)) {
          throw new TypeError('Response with null body status (101, 204, 205, or 304) cannot have a body.');
        }
        if (init.statusText !== undefined) statusText = String(init.statusText);
        headers = new Headers(init.headers);
        if (init.webSocket) webSocket = init.webSocket;
      }
      this._status = status;
      this._statusText = statusText;
      this._headers = headers;
      this._type = 'default';
      this._urlList = null;
      this._redirected = false;
      this._webSocket = webSocket;
      this._initBody(body, headers);
    }
    static json(data, init = {}) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError('The data is not JSON serializable');
      const headers = new Headers(init.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(text, { ...init, headers });
    }
    static redirect(url, status = 302) {
      if (!redirectStatus.includes(status)) throw new RangeError(`${status} is not a redirect status code. It must be one of: 301, 302, 303, 307, or 308.`);
      const parsed = new URL(String(url));
      return new Response(null, { status, headers: { location: parsed.href } });
    }
    static error() {
      const r = new Response(null, { status: 0, [kInternal]: true });
      r._type = 'error';
      r._headers._immutable = true;
      return r;
    }
    get status() { return this._status; }
    get statusText() { return this._statusText; }
    get ok() { return this._status >= 200 && this._status <= 299; }
    get headers() { return this._headers; }
    get redirected() { return this._redirected; }
    get url() { return this._urlList ? this._urlList[this._urlList.length - 1] : ''; }
    get type() { return this._type; }
    get webSocket() { return this._webSocket; }
    get cf() { return undefined; }
    clone() {
      const b = this._cloneBody();
      const r = new Response(null, { status: this._status, statusText: this._statusText, headers: this._headers, [kInternal]: true });
      r._bytes = b instanceof ReadableStream ? null : b;
      r._stream = b instanceof ReadableStream ? b : null;
      r._urlList = this._urlList && this._urlList.slice();
      r._redirected = this._redirected;
      r._type = this._type;
      return r;
    }
  }
  define('Response', Response);

  // ---------------------------------------------------------------- WebSockets
  // A WebSocketPair's two ends: the worker keeps `server` and answers
  // with `client` (status 101); the real client then talks to `server`.
  const sockets = new Map();
  class MessageEvent extends Event {
    constructor(type, init = {}) { super(type, init); this.data = init.data; }
  }
  class CloseEvent extends Event {
    constructor(type, init = {}) {
      super(type, init);
      this.code = init.code === undefined ? 0 : init.code;
      this.reason = init.reason === undefined ? '' : String(init.reason);
      this.wasClean = !!init.wasClean;
    }
  }
  class ErrorEvent extends Event {
    constructor(type, init = {}) { super(type, init); this.message = init.message || ''; this.error = init.error; }
  }
  class WebSocket extends EventTarget {
    constructor(url) {
      if (url !== kInternal) {
        throw new TypeError('Outbound WebSocket connections (new WebSocket(url)) are not supported by this runtime; use a WebSocketPair to accept them.');
      }
      super();
      this._state = 1;
      this._accepted = false;
      this._socket = 0;
      this._queue = [];
      this._peer = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      this.onopen = null;
      this.binaryType = 'arraybuffer';
    }
    get readyState() { return this._state; }
    get url() { return null; }
    get protocol() { return ''; }
    get extensions() { return ''; }
    accept() {
      if (this._accepted) return;
      this._accepted = true;
    }
    send(data) {
      if (!this._accepted) throw new TypeError('You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.');
      if (this._state >= 2) throw new TypeError("Can't call WebSocket send() after close().");
      let payload;
      if (typeof data === 'string') payload = data;
      else if (isBufferSource(data)) payload = new Uint8Array(view(data));
      else payload = String(data);
      if (!this._socket) { this._queue.push(['send', payload]); return; }
      const r = N.wsSend(this._socket, payload);
      if (r === 2) throw new Error('WebSocket send buffer is full: the client is not reading.');
    }
    close(code, reason) {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new TypeError('Invalid WebSocket close code: ' + code + '.');
      }
      if (reason !== undefined && enc(String(reason)).byteLength > 123) {
        throw new TypeError('WebSocket close reason is too long.');
      }
      if (this._state >= 2) return;
      this._state = 2;
      const args = [code === undefined ? 0 : code, reason === undefined ? '' : String(reason)];
      if (!this._socket) { this._queue.push(['close', ...args]); return; }
      N.wsClose(this._socket, ...args);
    }
    _attach(socket) {
      this._socket = socket;
      sockets.set(socket, this);
      for (const [what, a, b] of this._queue.splice(0)) {
        if (what === 'send') N.wsSend(socket, a);
        else N.wsClose(socket, a, b);
      }
    }
    _fire(event) {
      const handler = this['on' + event.type];
      if (typeof handler === 'function') handler.call(this, event);
      this.dispatchEvent(event);
    }
  }
  for (const [name, value] of [['CONNECTING', 0], ['OPEN', 1], ['CLOSING', 2], ['CLOSED', 3]]) {
    Object.defineProperty(WebSocket, name, { value });
    Object.defineProperty(WebSocket.prototype, name, { value });
  }
  class WebSocketPair {
    constructor() {
      const client = new WebSocket(kInternal);
      const server = new WebSocket(kInternal);
      client._peer = server;
      server._peer = client;
      this[0] = client;
      this[1] = server;
    }
  }
  // An event of socket `id` (see websocket.rs): 'message' (a string or
  // bytes), 'close' (code, reason, clean) or 'error' (a message).
  function socketEvent(id, kind, data, code, reason, clean) {
    const ws = sockets.get(id);
    if (!ws) return;
    if (kind === 'message') {
      ws._fire(new MessageEvent('message', { data: typeof data === 'string' ? data : data.buffer }));
    } else if (kind === 'error') {
      ws._fire(new ErrorEvent('error', { message: data, error: new Error(data) }));
      ws._state = 3;
      sockets.delete(id);
      ws._fire(new CloseEvent('close', { code: 1006, reason: '', wasClean: false }));
    } else {
      ws._state = 3;
      sockets.delete(id);
      ws._fire(new CloseEvent('close', { code, reason, wasClean: clean }));
    }
  }
  define('WebSocket', WebSocket);
  define('WebSocketPair', WebSocketPair);
  define('MessageEvent', MessageEvent);
  define('CloseEvent', CloseEvent);
  define('ErrorEvent', ErrorEvent);

  // ---------------------------------------------------------------- crypto
  const digestNames = { 'SHA-1': 'SHA-1', 'SHA-256': 'SHA-256', 'SHA-384': 'SHA-384', 'SHA-512': 'SHA-512', MD5: 'MD5' };
  function algName(alg) {
    const n = typeof alg === 'string' ? alg : alg && alg.name;
    if (typeof n !== 'string') throw new TypeError('Algorithm must be a string or an object with a name');
    return n.toUpperCase();
  }
  function hashName(h) {
    const n = algName(h);
    if (!digestNames[n]) throw new DOMException(`Unrecognized hash algorithm: ${n}`, 'NotSupportedError');
    return digestNames[n];
  }
  class CryptoKey {
    constructor(key) {
      if (key !== kInternal) throw new TypeError('Illegal constructor');
    }
  }
  const subtle = {
    async digest(alg, data) {
      return toArrayBuffer(N.digest(hashName(alg), view(data)));
    },
    async importKey(format, keyData, alg, extractable, usages) {
      const name = algName(alg);
      if (name !== 'HMAC') throw new DOMException(`Unrecognized or unimplemented algorithm: ${name}`, 'NotSupportedError');
      const hash = hashName(alg.hash);
      let raw;
      if (format === 'raw') raw = copy(keyData);
      else if (format === 'jwk') {
        if (!keyData || typeof keyData.k !== 'string') throw new DOMException('JWK is missing "k"', 'DataError');
        raw = N.base64UrlDecode(keyData.k);
        if (raw == null) throw new DOMException('Invalid JWK "k"', 'DataError');
      } else throw new DOMException(`Unsupported key format: ${format}`, 'NotSupportedError');
      for (const u of usages || []) {
        if (u !== 'sign' && u !== 'verify') throw new DOMException(`Unsupported key usage for a HMAC key: ${u}`, 'SyntaxError');
      }
      if (raw.length === 0) throw new DOMException('Imported HMAC key length (0) must be a non-zero value.', 'DataError');
      const key = new CryptoKey(kInternal);
      Object.defineProperties(key, {
        type: { value: 'secret', enumerable: true },
        extractable: { value: !!extractable, enumerable: true },
        algorithm: { value: { name: 'HMAC', hash: { name: hash }, length: alg.length || raw.length * 8 }, enumerable: true },
        usages: { value: [...(usages || [])], enumerable: true },
        _raw: { value: raw },
      });
      return key;
    },
    async generateKey(alg, extractable, usages) {
      const name = algName(alg);
      if (name !== 'HMAC') throw new DOMException(`Unrecognized or unimplemented algorithm: ${name}`, 'NotSupportedError');
      const hash = hashName(alg.hash);
      const bytes = alg.length ? Math.ceil(alg.length / 8) : { 'SHA-384': 128, 'SHA-512': 128 }[hash] || 64;
      return subtle.importKey('raw', N.randomBytes(bytes), alg, extractable, usages);
    },
    async exportKey(format, key) {
      if (!(key instanceof CryptoKey)) throw new TypeError('Expected a CryptoKey');
      if (!key.extractable) throw new DOMException('Attempt to export a non-extractable key.', 'InvalidAccessError');
      if (format === 'raw') return toArrayBuffer(key._raw.slice());
      if (format === 'jwk') return { kty: 'oct', k: N.base64UrlEncode(key._raw), alg: 'HS' + key.algorithm.hash.name.slice(4), ext: true, key_ops: key.usages };
      throw new DOMException(`Unsupported key format: ${format}`, 'NotSupportedError');
    },
    async sign(alg, key, data) {
      if (algName(alg) !== 'HMAC' || !(key instanceof CryptoKey)) throw new DOMException('Unsupported algorithm or key', 'NotSupportedError');
      if (!key.usages.includes('sign')) throw new DOMException('Requested key usage "sign" does not match any usage listed in this CryptoKey.', 'InvalidAccessError');
      return toArrayBuffer(N.hmac(key.algorithm.hash.name, key._raw, view(data)));
    },
    async verify(alg, key, signature, data) {
      if (algName(alg) !== 'HMAC' || !(key instanceof CryptoKey)) throw new DOMException('Unsupported algorithm or key', 'NotSupportedError');
      if (!key.usages.includes('verify')) throw new DOMException('Requested key usage "verify" does not match any usage listed in this CryptoKey.', 'InvalidAccessError');
      return N.timingSafeEqual(N.hmac(key.algorithm.hash.name, key._raw, view(data)), view(signature));
    },
    timingSafeEqual(a, b) {
      const x = view(a);
      const y = view(b);
      if (x.byteLength !== y.byteLength) throw new TypeError('Input buffers must have the same byte length');
      return N.timingSafeEqual(x, y);
    },
  };
  for (const m of ['encrypt', 'decrypt', 'deriveBits', 'deriveKey', 'wrapKey', 'unwrapKey']) {
    subtle[m] = async () => { throw new DOMException(`crypto.subtle.${m} is not implemented by this runtime yet`, 'NotSupportedError'); };
  }
  const integerArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
  const crypto = {
    subtle,
    getRandomValues(ta) {
      if (!integerArrays.some((C) => ta instanceof C)) throw new DOMException('ArrayBufferView argument to getRandomValues() must be an integer-typed view.', 'TypeMismatchError');
      if (ta.byteLength > 65536) throw new DOMException(`getRandomValues() only accepts buffers of size <= 64K but provided ${ta.byteLength} bytes.`, 'QuotaExceededError');
      view(ta).set(N.randomBytes(ta.byteLength));
      return ta;
    },
    randomUUID: () => N.uuid(),
    DigestStream: undefined,
  };
  define('crypto', crypto);
  define('CryptoKey', CryptoKey);
  define('navigator', { userAgent: 'Cloudflare-Workers', hardwareConcurrency: 1, language: 'en' });
  if (!G.performance) define('performance', { now: () => N.now(), timeOrigin: Date.now() });
  define('self', G);
  // The Cache API as on a workers.dev route: nothing is cached.
  class Cache {
    async match() { return undefined; }
    async put(req, res) { if (res && res.body) await res.arrayBuffer(); }
    async delete() { return false; }
  }
  const defaultCache = new Cache();
  define('caches', { default: defaultCache, open: async () => defaultCache });

  // ---------------------------------------------------------------- fetch
  async function fetch(input, init) {
    return fetchVia(null, input, init);
  }
  // `service`: null (the network), [worker name, entrypoint, RPC method]
  // (a service binding), or { which } (a Durable Object).
  async function fetchVia(service, input, init) {
    const req = new Request(input, init);
    const signal = req._signal;
    if (signal && signal.aborted) throw signal.reason;
    const scheme = N.urlParse(req.url, undefined)[2];
    if (scheme !== 'http:' && scheme !== 'https:') throw new TypeError(`Fetch API cannot load: ${req.url}`);
    if (!['follow', 'manual', 'error'].includes(req.redirect)) throw new TypeError(`Invalid redirect value: ${req.redirect}`);
    const body = req._stream || req._bytes ? await req._consume() : null;
    let abortReject = null;
    const aborted = new Promise((_, reject) => { abortReject = reject; });
    aborted.catch(() => {});
    let opId = 0;
    const onAbort = () => { if (opId) N.opCancel(opId); abortReject(signal.reason); };
    if (signal) signal.addEventListener('abort', onAbort);
    const head = await Promise.race([
      op((id) => {
        opId = id;
        if (service === null) N.fetch(id, req.method, req.url, flatHeaders(req.headers), body, req.redirect);
        else if (Array.isArray(service)) N.serviceFetch(id, service, req.method, req.url, flatHeaders(req.headers), body);
        else N.objectCall(id, service.which, req.method, req.url, flatHeaders(req.headers), body);
      }),
      aborted,
    ]).finally(() => { if (signal) signal.removeEventListener('abort', onAbort); });
    const [status, statusText, flat, bodyId, finalUrl, redirected] = head;
    let stream = null;
    if (bodyId) {
      stream = new ReadableStream({
        type: 'bytes',
        pull: async (c) => {
          if (signal && signal.aborted) throw signal.reason;
          const chunk = await op((id) => N.bodyRead(id, bodyId));
          if (chunk === null) c.close();
          else c.enqueue(chunk);
        },
        cancel: () => N.bodyCancel(bodyId),
      }, { highWaterMark: 0 });
    }
    const res = new Response(stream, { status, statusText, [kInternal]: true });
    res._headers = headersFromFlat(flat);
    if (stream) {
      // A body with a Content-Length has a known length (R2's put takes it).
      const length = res._headers.get('content-length');
      if (length !== null && /^\d+$/.test(length)) stream._length = Number(length);
    }
    res._headers._immutable = true;
    res._urlList = [finalUrl];
    res._redirected = redirected;
    return res;
  }
  define('fetch', fetch);
  // A service binding (`env.X` for `[[services]] binding = "X"`): `fetch`,
  // and any other property is an RPC method of the callee's entrypoint.
  function serviceStub(service, entrypoint) {
    const which = (method) => [service, entrypoint, method];
    const target = {
      fetch: (input, init) => fetchVia(which(''), input, init),
      connect() { throw new Error('connect() is not supported by service bindings here'); },
    };
    return rpcStub(target, (method) => which(method));
  }

  // @include rpc.js
  // ------------------------------------------------------ Durable Objects
  // `cloudflare:workers` (a built-in module of the loader) exports these.
  class DurableObject {
    constructor(ctx, env) { this.ctx = ctx; this.env = env; }
  }
  class WorkerEntrypoint {
    constructor(ctx, env) { this.ctx = ctx; this.env = env; }
  }
  class RpcTarget {}
  const cloudflareWorkers = { DurableObject, WorkerEntrypoint, RpcTarget, setEnv: null };
  Object.defineProperty(G, Symbol.for('flexilib.cloudflare:workers'), { value: cloudflareWorkers });

  class DurableObjectId {
    constructor(hex, name) { this._hex = hex; if (name !== undefined) this.name = name; }
    toString() { return this._hex; }
    equals(other) { return other instanceof DurableObjectId && other._hex === this._hex; }
  }
  class DurableObjectNamespace {
    constructor(index) { this._index = index; }
    idFromName(name) { name = String(name); return new DurableObjectId(N.doIdFromName(this._index, name), name); }
    idFromString(hex) {
      hex = String(hex);
      if (!N.doIsId(hex)) throw new TypeError('Invalid Durable Object ID: must be 64 hex digits');
      return new DurableObjectId(hex);
    }
    newUniqueId() { return new DurableObjectId(N.doNewUniqueId()); }
    get(id) {
      if (!(id instanceof DurableObjectId)) throw new TypeError('get() requires a DurableObjectId');
      return objectStub(this._index, id);
    }
    getByName(name) { return this.get(this.idFromName(name)); }
    jurisdiction() { return this; }
  }
  // A stub: `fetch`, and any other property is an RPC method (see rpcStub).
  function objectStub(index, id) {
    const which = (method) => ({ which: [String(index), id.toString(), method] });
    const target = { id, name: id.name, fetch: (input, init) => fetchVia(which(''), input, init) };
    return rpcStub(target, which);
  }
  // Values are kept in the RPC encoding (structured-clone-ish: Date, Map,
  // Set, bytes, BigInt, cycles…); plain JSON stored before reads the same.
  function storageValue(value) {
    return rpcEncode(value, true);
  }
  class DurableObjectStorage {
    constructor(index, id) { this._index = index; this._id = id; }
    _op(what, args) { return op((o) => N.doStorage(o, this._index, this._id, what, args)); }
    async get(keys) {
      const many = Array.isArray(keys);
      const list = many ? keys.map(String) : [String(keys)];
      const items = JSON.parse(await this._op('get', list));
      if (!many) return items[0] === null ? undefined : rpcRevive(items[0].v);
      const found = new Map();
      list.forEach((k, i) => { if (items[i] !== null) found.set(k, rpcRevive(items[i].v)); });
      return found;
    }
    async put(key, value) {
      const args = [];
      if (key !== null && typeof key === 'object') {
        for (const [k, v] of Object.entries(key)) args.push(String(k), storageValue(v));
      } else {
        if (value === undefined) throw new TypeError('put() requires a value');
        args.push(String(key), storageValue(value));
      }
      await this._op('put', args);
    }
    async delete(keys) {
      const many = Array.isArray(keys);
      const n = Number(await this._op('delete', many ? keys.map(String) : [String(keys)]));
      return many ? n : n > 0;
    }
    // As on Cloudflare the alarm stays; a SQLite-backed object's tables go.
    async deleteAll() {
      if (this._sqlite) N.doSqlDeleteAll(this._index, this._id);
      await this._op('deleteAll', []);
    }
    async list(options = {}) {
      options = options || {};
      const args = [options.prefix ?? '', options.start ?? '', options.end ?? '', options.limit ? String(options.limit) : '', options.reverse ? '1' : ''];
      return new Map(JSON.parse(await this._op('list', args.map(String))).map(([k, v]) => [k, rpcRevive(v)]));
    }
    async transaction(fn) { return fn(this); }
    transactionSync(fn) {
      if (!this._sqlite) return fn();
      const depth = this._depth = (this._depth || 0) + 1;
      N.doSqlSavepoint(this._index, this._id, depth, 'begin');
      try {
        const result = fn();
        N.doSqlSavepoint(this._index, this._id, depth, 'commit');
        return result;
      } catch (e) {
        N.doSqlSavepoint(this._index, this._id, depth, 'rollback');
        throw e;
      } finally { this._depth = depth - 1; }
    }
    async sync() {}
    async getAlarm() {
      const at = await op((o) => N.doAlarm(o, this._index, this._id, 'get', 0));
      return at === null ? null : Number(at);
    }
    async setAlarm(time) {
      const at = time instanceof Date ? time.getTime() : Number(time);
      if (!Number.isFinite(at)) throw new TypeError("Failed to execute 'setAlarm' on 'DurableObjectStorage': parameter 1 is not of type 'date'.");
      const owner = objectOwners.get(`${this._index}:${this._id}`);
      if (owner && typeof owner.alarm !== 'function') throw new TypeError('Your Durable Object class must have an alarm() handler in order to call setAlarm()');
      await op((o) => N.doAlarm(o, this._index, this._id, 'set', Math.max(0, Math.floor(at))));
    }
    async deleteAlarm() { await op((o) => N.doAlarm(o, this._index, this._id, 'delete', 0)); }
    get sql() {
      if (!this._sqlStorage) this._sqlStorage = new SqlStorage(this._index, this._id);
      return this._sqlStorage;
    }
  }
  // @include sql.js
  class DurableObjectState {
    constructor(index, id) {
      this.id = id;
      this.storage = new DurableObjectStorage(index, id.toString());
      this.storage._sqlite = objectSqlite[index] === true;
      this._gate = null;
    }
    // Calls to one object already run one at a time; what this adds is
    // that none is delivered until `fn` has settled (a constructor's
    // initialisation, as on Cloudflare).
    blockConcurrencyWhile(fn) {
      const p = Promise.resolve().then(fn);
      const gate = p.then(() => {}, () => {});
      this._gate = this._gate ? Promise.all([this._gate, gate]) : gate;
      return p;
    }
    waitUntil(promise) { Promise.resolve(promise).catch(() => {}); }
  }
  // The objects this thread holds (every object lives on the first JS
  // thread), by namespace and id.
  const liveObjects = new Map();
  // The instance by storage key (`index:id`), for setAlarm's check.
  const objectOwners = liveObjects;
  const objectStates = new Map();
  let objectClasses = [];
  let objectSqlite = [];
  function objectEntry(id, which, method, url, flat, body) {
    const index = Number(which[0]);
    const objectId = which[1];
    const rpc = which[2];
    const key = `${index}:${objectId}`;
    let instance = liveObjects.get(key);
    try {
      if (!instance) {
        const className = objectClasses[index];
        const Class = mainModule && mainModule[className];
        if (typeof Class !== 'function') throw new TypeError(`The Durable Object class "${className}" is not exported by the worker's main module`);
        const state = new DurableObjectState(index, new DurableObjectId(objectId));
        objectStates.set(key, state);
        instance = new Class(state, env);
        liveObjects.set(key, instance);
        N.objectsLive(liveObjects.size);
      }
    } catch (e) {
      objectStates.delete(key);
      N.fail(id, errorText(e));
      return;
    }
    // Nothing is delivered while blockConcurrencyWhile() runs.
    const state = objectStates.get(key);
    const gate = state && state._gate;
    if (gate) {
      gate.then(() => { if (state._gate === gate) state._gate = null; deliver(); });
      return;
    }
    deliver();
    function deliver() {
      if (rpc && rpc.startsWith('\u0000alarm:')) {
        const [, retry, at] = rpc.split(':');
        rpcAnswer(() => {
          if (typeof instance.alarm !== 'function') throw new TypeError('The Durable Object has no alarm() handler');
          return instance.alarm({ scheduledTime: Number(at), retryCount: Number(retry), isRetry: Number(retry) > 0 });
        }).then((text) => {
          if (text.startsWith('{"error"')) N.log(3, `Uncaught (in alarm) ${rpcDecode(text).error.join(': ')}`);
          N.respond(id, 200, '', ['content-type', 'application/json'], enc(text));
        });
        return;
      }
      if (rpc) {
        rpcAnswer(() => {
          const [name, call, args] = rpcRequest(rpc, body);
          return rpcInvoke(instance, name, call, args);
        }).then((text) => N.respond(id, 200, '', ['content-type', 'application/json'], enc(text)));
        return;
      }
      let res;
      try {
        if (typeof instance.fetch !== 'function') throw new TypeError('The Durable Object has no fetch() method');
        res = instance.fetch(incoming(method, url, flat, body));
      } catch (e) {
        N.fail(id, errorText(e));
        return;
      }
      Promise.resolve(res).then((r) => answer(id, r), (e) => N.fail(id, errorText(e)));
    }
  }

  // ---------------------------------------------------------------- KV
  const kvTypes = ['text', 'json', 'arrayBuffer', 'stream'];
  function kvKey(key, what) {
    key = String(key);
    if (key === '') throw new TypeError('Key name cannot be empty.');
    if (key === '.' || key === '..') throw new TypeError(`Illegal key name "${key}". Please use a different name.`);
    const len = enc(key).length;
    if (len > 512) throw new Error(`KV ${what} failed: 414 UTF-8 encoded length of ${len} exceeds key length limit of 512.`);
    return key;
  }
  function kvDecode(bytes, type) {
    switch (type) {
      case 'text': return dec(bytes);
      case 'json': return JSON.parse(dec(bytes));
      case 'arrayBuffer': return toArrayBuffer(bytes);
      case 'stream': return streamOfBytes(bytes);
    }
  }
  class KVNamespace {
    constructor(ns) { this._ns = ns; }
    async _get(key, options) {
      const type = typeof options === 'string' ? options : (options && options.type) || 'text';
      if (!kvTypes.includes(type)) throw new TypeError(`Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".`);
      const keys = Array.isArray(key);
      if (keys && (type === 'arrayBuffer' || type === 'stream')) throw new TypeError(`"${type}" is not a valid type. Use "json" or "text"`);
      const list = keys ? key.map((k) => kvKey(k, 'GET')) : [kvKey(key, 'GET')];
      const results = [];
      for (const k of list) {
        const r = await op((id) => N.kvGet(id, this._ns, k));
        results.push(r === null ? { value: null, metadata: null } : { value: kvDecode(r[0], type), metadata: r[1] === null ? null : JSON.parse(r[1]) });
      }
      return keys ? results : results[0];
    }
    async get(key, options) {
      const r = await this._get(key, options);
      if (Array.isArray(key)) return new Map(key.map((k, i) => [k, r[i].value]));
      return r.value;
    }
    async getWithMetadata(key, options) {
      const r = await this._get(key, options);
      if (Array.isArray(key)) return new Map(key.map((k, i) => [k, r[i]]));
      return { value: r.value, metadata: r.metadata, cacheStatus: null };
    }
    async put(key, value, options = {}) {
      key = kvKey(key, 'PUT');
      options = options || {};
      let bytes;
      if (typeof value === 'string') bytes = enc(value);
      else if (isBufferSource(value)) bytes = copy(value);
      else if (value instanceof ReadableStream) bytes = await readAll(value);
      else if (value instanceof Blob) bytes = value._bytes;
      else throw new TypeError('KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.');
      const now = Math.floor(Date.now() / 1000);
      let expiration = 0;
      if (options.expiration !== undefined && options.expiration !== null) {
        const e = Math.floor(Number(options.expiration));
        if (!(e > 0) || e < now + 60) throw new Error(`KV PUT failed: 400 Invalid expiration of ${options.expiration}. Please specify integer greater than the current number of seconds since the UNIX epoch.`);
        expiration = e;
      }
      if (options.expirationTtl !== undefined && options.expirationTtl !== null) {
        const t = Math.floor(Number(options.expirationTtl));
        if (!(t >= 60)) throw new Error(`KV PUT failed: 400 Invalid expiration_ttl of ${options.expirationTtl}. Please specify integer greater than 0. Expiration TTL must be at least 60.`);
        expiration = now + t;
      }
      let metadata = null;
      if (options.metadata !== undefined && options.metadata !== null) {
        metadata = JSON.stringify(options.metadata);
        const len = enc(metadata).length;
        if (len > 1024) throw new Error(`KV PUT failed: 413 Metadata length of ${len} exceeds limit of 1024.`);
      }
      if (bytes.length > 25 * 1024 * 1024) throw new Error(`KV PUT failed: 413 Value length of ${bytes.length} exceeds limit of ${25 * 1024 * 1024}.`);
      await op((id) => N.kvPut(id, this._ns, key, bytes, expiration, metadata));
    }
    async delete(key) {
      key = kvKey(key, 'DELETE');
      await op((id) => N.kvDelete(id, this._ns, key));
    }
    async list(options = {}) {
      options = options || {};
      const limit = options.limit === undefined ? 1000 : Number(options.limit);
      if (!(limit >= 1 && limit <= 1000)) throw new Error(`KV LIST failed: 400 Invalid key_count_limit of ${options.limit}. Please specify an integer between 1 and 1000.`);
      const json = await op((id) => N.kvList(id, this._ns, String(options.prefix || ''), limit, String(options.cursor || '')));
      return JSON.parse(json);
    }
  }

  // ---------------------------------------------------------------- D1
  // Errors as D1 words them: `D1_ERROR: <SQLite's message>: SQLITE_…`,
  // with that message as the cause.
  function d1Error(kind, message) {
    return new Error(`${kind}: ${message}`, { cause: new Error(message) });
  }
  // A bound value as D1 keeps it: numbers, strings, null; booleans as 1/0;
  // bytes (ArrayBuffer, views, arrays of byte values) as an array of bytes.
  function d1Value(v) {
    const t = typeof v;
    if (t === 'number' || t === 'string') return v;
    if (t === 'boolean') return v ? 1 : 0;
    if (t === 'object') {
      if (v === null) return null;
      if (Array.isArray(v) && v.every((b) => typeof b === 'number' && b >= 0 && b < 256)) return v;
      if (v instanceof ArrayBuffer) return Array.from(new Uint8Array(v));
      if (ArrayBuffer.isView(v)) return Array.from(v);
    }
    const shown = t === 'symbol' ? v.toString() : `${v}`;
    throw new Error(`D1_TYPE_ERROR: Type '${t}' not supported for value '${shown}'`, {
      cause: new Error(`Type '${t}' not supported for value '${shown}'`),
    });
  }
  // Runs statements (one transaction) as [{ columns, rows, meta }].
  async function d1Query(db, statements) {
    const sqls = statements.map((s) => s.statement);
    const params = statements.map((s) => s.params.map((v) => (Array.isArray(v) ? new Uint8Array(v) : v)));
    let json;
    try {
      json = await op((id) => N.d1Query(id, db, sqls, params));
    } catch (e) {
      throw d1Error('D1_ERROR', e.message);
    }
    return JSON.parse(json);
  }
  function d1Row(columns, row) {
    const o = {};
    for (let i = 0; i < columns.length; i++) o[columns[i]] = row[i];
    return o;
  }
  function d1Result(r) {
    return { success: true, meta: r.meta, results: r.rows.map((row) => d1Row(r.columns, row)) };
  }
  class D1PreparedStatement {
    constructor(db, statement, params) {
      this._db = db;
      this.statement = statement;
      this.params = params;
    }
    bind(...values) { return new D1PreparedStatement(this._db, this.statement, values.map(d1Value)); }
    async first(column) {
      const [r] = await d1Query(this._db, [this]);
      if (r.rows.length === 0) return null;
      const row = d1Row(r.columns, r.rows[0]);
      if (column === undefined) return row;
      if (row[column] === undefined) {
        throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`, { cause: new Error('Column not found') });
      }
      return row[column];
    }
    async all() { return d1Result((await d1Query(this._db, [this]))[0]); }
    // As wrangler dev answers it: the rows too (none for a write).
    async run() { return d1Result((await d1Query(this._db, [this]))[0]); }
    async raw(options) {
      const [r] = await d1Query(this._db, [this]);
      return options && options.columnNames ? [r.columns, ...r.rows] : r.rows;
    }
  }
  class D1Database {
    constructor(db) { this._db = db; }
    prepare(query) { return new D1PreparedStatement(this._db, String(query), []); }
    async batch(statements) {
      if (!Array.isArray(statements) || !statements.every((s) => s instanceof D1PreparedStatement)) {
        throw new TypeError('batch() takes an array of prepared statements (D1PreparedStatement).');
      }
      return (await d1Query(this._db, statements)).map(d1Result);
    }
    async exec(query) {
      // As D1: each line is a query; the first that fails is named.
      const lines = String(query).trim().split('\n');
      let json;
      try {
        json = await op((id) => N.d1Exec(id, this._db, lines));
      } catch (e) {
        throw d1Error('D1_EXEC_ERROR', e.message);
      }
      const r = JSON.parse(json);
      if (r.error !== undefined) {
        throw d1Error('D1_EXEC_ERROR', `Error in line ${r.line + 1}: ${lines[r.line]}: ${r.error}`);
      }
      return { count: r.count, duration: r.duration };
    }
    // Sessions (read replication): one local database serves them all.
    withSession() {
      const db = this;
      return { prepare: (q) => db.prepare(q), batch: (s) => db.batch(s), getBookmark: () => null };
    }
  }

  // ---------------------------------------------------------------- R2
  const r2HttpFields = [
    ['contentType', 'content-type'], ['contentLanguage', 'content-language'],
    ['contentDisposition', 'content-disposition'], ['contentEncoding', 'content-encoding'],
    ['cacheControl', 'cache-control'], ['cacheExpiry', 'expires'],
  ];
  function r2Key(key, action) {
    key = String(key);
    if (enc(key).length > 1024) throw new Error(`${action}: The specified object name is not valid. (10020)`);
    return key;
  }
  // httpMetadata (an object or Headers) as stored: strings, cacheExpiry in ms.
  function r2HttpMetadata(m) {
    const out = {};
    if (m === undefined || m === null) return out;
    const isHeaders = m instanceof Headers;
    for (const [field, header] of r2HttpFields) {
      const v = isHeaders ? m.get(header) : m[field];
      if (v === undefined || v === null) continue;
      if (field === 'cacheExpiry') {
        const t = new Date(v).getTime();
        if (!Number.isNaN(t)) out[field] = t;
      } else out[field] = String(v);
    }
    return out;
  }
  function r2Etags(v) {
    if (v === undefined || v === null) return null;
    const list = Array.isArray(v) ? v : String(v).split(',');
    return list.map((e) => {
      e = String(e).trim();
      const weak = e.startsWith('W/');
      if (weak) e = e.slice(2);
      if (e.length >= 2 && e.startsWith('"') && e.endsWith('"')) e = e.slice(1, -1);
      return (weak ? 'W/' : '') + e;
    }).filter((e) => e !== '' && e !== 'W/');
  }
  function r2Time(v) {
    if (v === undefined || v === null) return null;
    const t = new Date(v).getTime();
    return Number.isNaN(t) ? null : t;
  }
  // onlyIf (an R2Conditional or Headers) as the host takes it.
  function r2Conditions(c) {
    if (c === undefined || c === null) return null;
    if (c instanceof Headers) {
      return {
        etagMatches: r2Etags(c.get('if-match')),
        etagDoesNotMatch: r2Etags(c.get('if-none-match')),
        uploadedBefore: r2Time(c.get('if-unmodified-since')),
        uploadedAfter: r2Time(c.get('if-modified-since')),
        secondsGranularity: true,
      };
    }
    return {
      etagMatches: r2Etags(c.etagMatches),
      etagDoesNotMatch: r2Etags(c.etagDoesNotMatch),
      uploadedBefore: r2Time(c.uploadedBefore),
      uploadedAfter: r2Time(c.uploadedAfter),
      secondsGranularity: !!c.secondsGranularity,
    };
  }
  function r2Range(r) {
    if (r === undefined || r === null) return null;
    if (r instanceof Headers) {
      const h = r.get('range');
      return h === null ? null : { header: h };
    }
    const num = (v) => (v === undefined || v === null ? null : Number(v));
    return { offset: num(r.offset), length: num(r.length), suffix: num(r.suffix) };
  }
  function hexBytes(hex) {
    const out = new Uint8Array(hex.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out.buffer;
  }
  class R2Checksums {
    constructor(md5) { this.md5 = hexBytes(md5); }
    toJSON() { return { md5: Array.from(new Uint8Array(this.md5), (b) => b.toString(16).padStart(2, '0')).join('') }; }
  }
  // Not globals, as in workerd; own properties in workerd's order (its
  // lazily defined instance properties), so JSON.stringify gives the same.
  class R2Object {
    constructor(m) {
      this.ssecKeyMd5 = undefined;
      this.storageClass = 'Standard';
      this.range = m.range;
      this.customMetadata = m.customMetadata;
      const http = Object.assign({}, m.httpMetadata);
      if (http.cacheExpiry !== undefined) http.cacheExpiry = new Date(http.cacheExpiry);
      this.httpMetadata = http;
      this.uploaded = new Date(m.uploaded);
      this.checksums = new R2Checksums(m.etag);
      this.httpEtag = `"${m.etag}"`;
      this.etag = m.etag;
      this.size = m.size;
      this.version = m.version;
      this.key = m.key;
    }
    writeHttpMetadata(headers) {
      for (const [field, header] of r2HttpFields) {
        const v = this.httpMetadata[field];
        if (v === undefined) continue;
        headers.set(header, field === 'cacheExpiry' ? v.toUTCString() : v);
      }
    }
  }
  class R2ObjectBody extends R2Object {
    constructor(m, bytes) {
      super(m);
      Object.defineProperty(this, '_bytes', { value: bytes, writable: true, enumerable: false });
      Object.defineProperty(this, '_stream', { value: null, writable: true, enumerable: false });
      Object.defineProperty(this, '_used', { value: false, writable: true, enumerable: false });
    }
    get body() {
      if (!this._stream) {
        this._stream = streamOfBytes(this._used ? new Uint8Array(0) : this._bytes);
        this._bytes = null;
      }
      return this._stream;
    }
    get bodyUsed() { return this._used || (this._stream !== null && this._stream._disturbed); }
    async _consume() {
      if (this.bodyUsed) throw new TypeError(bodyUsedMessage);
      this._used = true;
      if (this._stream) {
        if (this._stream.locked) throw new TypeError('This ReadableStream is currently locked to a reader.');
        return readAll(this._stream);
      }
      const b = this._bytes;
      this._bytes = null;
      return b;
    }
    async arrayBuffer() { return toArrayBuffer(await this._consume()); }
    async bytes() { return this._consume(); }
    async text() { return dec(await this._consume()); }
    async json() { return JSON.parse(await this.text()); }
    async blob() { return new Blob([await this._consume()], { type: this.httpMetadata.contentType || '' }); }
  }
  const r2PutTypes = "Failed to execute 'put' on 'R2Bucket': parameter 2 is not of type 'ReadableStream or ArrayBuffer or ArrayBufferView or string or Blob'.";
  class R2Bucket {
    constructor(bucket) { this._bucket = bucket; }
    async head(key) {
      key = r2Key(key, 'head');
      const r = await op((id) => N.r2Get(id, this._bucket, key, null, null, false));
      return r === null ? null : new R2Object(JSON.parse(r));
    }
    async get(key, options) {
      key = r2Key(key, 'get');
      options = options || {};
      const range = r2Range(options.range);
      const onlyIf = r2Conditions(options.onlyIf);
      const r = await op((id) => N.r2Get(id, this._bucket, key,
        range && JSON.stringify(range), onlyIf && JSON.stringify(onlyIf), true));
      if (r === null) return null;
      // onlyIf did not hold: the object, without its body.
      if (typeof r === 'string') return new R2Object(JSON.parse(r));
      return new R2ObjectBody(JSON.parse(r[1]), r[0]);
    }
    async put(key, value, options) {
      key = r2Key(key, 'put');
      options = options || {};
      let bytes;
      if (value === null || value === undefined) bytes = new Uint8Array(0);
      else if (typeof value === 'string') bytes = enc(value);
      else if (isBufferSource(value)) bytes = copy(value);
      else if (value instanceof Blob) bytes = value._bytes;
      else if (value instanceof ReadableStream) {
        if (typeof value._length !== 'number') {
          throw new TypeError('Provided readable stream must have a known length (request/response body or readable half of FixedLengthStream)');
        }
        bytes = await readAll(value);
      } else throw new TypeError(r2PutTypes);
      const customMetadata = {};
      let metadataSize = 0;
      if (options.customMetadata !== undefined && options.customMetadata !== null) {
        for (const k of Object.keys(options.customMetadata)) {
          const v = String(options.customMetadata[k]);
          customMetadata[k] = v;
          metadataSize += enc(k).length + enc(v).length;
        }
      }
      if (metadataSize > 2048) throw new Error('put: Your metadata headers exceed the maximum allowed metadata size. (10012)');
      let md5 = null;
      if (options.md5 !== undefined && options.md5 !== null) {
        md5 = typeof options.md5 === 'string' ? options.md5
          : Array.from(view(options.md5), (b) => b.toString(16).padStart(2, '0')).join('');
      }
      const put = {
        httpMetadata: r2HttpMetadata(options.httpMetadata),
        customMetadata,
        onlyIf: r2Conditions(options.onlyIf),
        md5,
      };
      const r = await op((id) => N.r2Put(id, this._bucket, key, bytes, JSON.stringify(put)));
      return r === null ? null : new R2Object(JSON.parse(r));
    }
    async delete(keys) {
      const list = (Array.isArray(keys) ? keys : [keys]).map((k) => r2Key(k, 'delete'));
      await op((id) => N.r2Delete(id, this._bucket, list));
    }
    async list(options) {
      options = options || {};
      const limit = options.limit === undefined ? 1000 : Number(options.limit);
      if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) {
        throw new Error('list: MaxKeys params must be positive integer <= 1000. (10022)');
      }
      const include = Array.isArray(options.include) ? options.include : [];
      const query = {
        prefix: options.prefix === undefined || options.prefix === null ? '' : String(options.prefix),
        delimiter: options.delimiter === undefined || options.delimiter === null ? '' : String(options.delimiter),
        cursor: options.cursor === undefined || options.cursor === null ? '' : String(options.cursor),
        startAfter: options.startAfter === undefined || options.startAfter === null ? '' : String(options.startAfter),
        limit,
      };
      const r = JSON.parse(await op((id) => N.r2List(id, this._bucket, JSON.stringify(query))));
      // Metadata only when asked for, as R2 lists.
      const objects = r.objects.map((m) => {
        const o = new R2Object(m);
        if (!include.includes('httpMetadata')) o.httpMetadata = {};
        if (!include.includes('customMetadata')) o.customMetadata = {};
        return o;
      });
      const out = { objects, truncated: r.truncated };
      if (r.truncated) out.cursor = r.cursor;
      out.delimitedPrefixes = r.delimitedPrefixes;
      return out;
    }
  }

  // ---------------------------------------------------------------- the worker
  let worker = null;
  let mainModule = null;
  let env = null;
  let route = '';
  class ExecutionContext {
    constructor(id) { this._id = id; this._passThrough = false; }
    // The request lives on (its timers and I/O too) until every promise
    // given here has settled.
    waitUntil(p) {
      const id = this._id;
      N.waitUntil(id, 1);
      Promise.resolve(p)
        .catch((e) => N.log(3, 'Uncaught (in promise) ' + errorText(e)))
        .then(() => N.waitUntil(id, -1));
    }
    passThroughOnException() { this._passThrough = true; }
  }
  function setup(mod, bindings) {
    worker = mod.default;
    mainModule = mod;
    env = {};
    for (const k of Object.keys(bindings.vars)) env[k] = bindings.vars[k];
    for (const k of Object.keys(bindings.kv)) env[k] = new KVNamespace(bindings.kv[k]);
    for (const k of Object.keys(bindings.services)) env[k] = serviceStub(...bindings.services[k]);
    for (const k of Object.keys(bindings.d1)) env[k] = new D1Database(bindings.d1[k]);
    for (const k of Object.keys(bindings.r2)) env[k] = new R2Bucket(bindings.r2[k]);
    objectClasses = [];
    objectSqlite = [];
    for (const k of Object.keys(bindings.objects)) {
      const { index, className, sqlite } = bindings.objects[k];
      objectClasses[index] = className;
      objectSqlite[index] = sqlite;
      env[k] = new DurableObjectNamespace(index);
    }
    if (cloudflareWorkers.setEnv) cloudflareWorkers.setEnv(env);
    if (typeof mod.default === 'undefined') {
      throw new TypeError('The worker has no default export: FlexiLib runs module workers (export default { fetch(request, env, ctx) { … } })');
    }
    // A class (`export default class extends WorkerEntrypoint`) handles each
    // request with an instance of its own.
    const handlers = typeof worker === 'function' ? worker.prototype : worker;
    if (!handlers || (typeof handlers.fetch !== 'function' && typeof handlers.scheduled !== 'function')) {
      throw new TypeError('The default export has no fetch() or scheduled() handler');
    }
  }

  function toChunk(value) {
    if (value instanceof Uint8Array) return value;
    if (isBufferSource(value)) return view(value);
    throw new TypeError('This ReadableStream did not return bytes.');
  }
  async function pump(id, stream) {
    let reader;
    try {
      reader = stream.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const chunk = toChunk(value);
        if (chunk.byteLength === 0) continue;
        let r = N.write(id, chunk);
        while (r === 1) {
          await op((opId) => N.onWritable(opId, id));
          r = N.write(id, chunk);
        }
        if (r === 2) {
          reader.cancel(new Error('the client went away')).catch(() => {});
          N.end(id, false);
          return;
        }
      }
      N.end(id, true);
    } catch (e) {
      N.log(3, 'Uncaught (in response) ' + errorText(e));
      N.end(id, false);
      if (reader) reader.cancel(e).catch(() => {});
    }
  }
  function respond(id, res) {
    if (!(res instanceof Response)) {
      throw new TypeError("Incorrect type for Promise: the Promise did not resolve to 'Response'.");
    }
    if (res.type === 'error') throw new TypeError('Return value from serve handler must not be an error response (like Response.error()).');
    const status = res._status;
    const flat = flatHeaders(res._headers);
    if (res._webSocket) {
      const key = upgradeKeys.get(id);
      upgradeKeys.delete(id);
      if (status !== 101) throw new TypeError('A Response with a webSocket must have status 101.');
      if (!key) throw new TypeError('Worker tried to return a WebSocket in a response to a request which did not contain the header "Upgrade: websocket".');
      const server = res._webSocket._peer;
      if (!server || server._socket) throw new TypeError('This WebSocket was already returned in a response.');
      server._attach(N.respondWebSocket(id, flat, key));
      return;
    }
    if (res._stream) {
      if (res.bodyUsed) throw new TypeError(bodyUsedMessage);
      N.respondStream(id, status, res._statusText, flat);
      pump(id, res._stream);
    } else {
      N.respond(id, status, res._statusText, flat, res._bytes);
    }
  }
  const incomingCf = Object.freeze({ colo: 'LOCAL', country: 'XX', httpProtocol: 'HTTP/1.1', clientTcpRtt: 0, asn: 0 });
  function incoming(method, url, flat, body) {
    const req = Object.create(Request.prototype);
    req._url = url;
    req._method = method;
    req._headers = headersFromFlat(flat, true);
    req._redirect = 'follow';
    req._signal = null;
    req._cf = incomingCf;
    req._bytes = body;
    req._stream = null;
    req._used = false;
    return req;
  }
  function answer(id, res) {
    try {
      respond(id, res);
    } catch (e) {
      N.fail(id, errorText(e));
    } finally {
      upgradeKeys.delete(id);
    }
  }
  // The Sec-WebSocket-Key of requests that ask for a WebSocket, by request.
  const upgradeKeys = new Map();
  function handle(id, method, url, flat, body) {
    const req = incoming(method, url, flat, body);
    if ((req._headers.get('upgrade') || '').toLowerCase() === 'websocket' && req._headers.get('sec-websocket-key')) {
      upgradeKeys.set(id, req._headers.get('sec-websocket-key'));
    }
    const ctx = new ExecutionContext(id);
    let res;
    try {
      const target = typeof worker === 'function' ? new worker(ctx, env) : worker;
      if (typeof target.fetch !== 'function') throw new Error('Handler does not export a fetch() function.');
      res = target.fetch(req, env, ctx);
    } catch (e) {
      upgradeKeys.delete(id);
      N.fail(id, errorText(e));
      return;
    }
    if (res !== null && typeof res === 'object' && typeof res.then === 'function') {
      Promise.resolve(res).then((r) => answer(id, r), (e) => { upgradeKeys.delete(id); N.fail(id, errorText(e)); });
    } else answer(id, res);
  }
  // A call through a service binding to a named entrypoint's `fetch`, or
  // to an RPC method (`which`: [entrypoint or '', method or '']).
  function rpcEntry(id, which, method, url, flat, body) {
    const [entrypoint, rpc] = which;
    const Target = entrypoint ? mainModule[entrypoint] : worker;
    const ctx = new ExecutionContext(id);
    if (!rpc) {
      let res;
      try {
        if (!Target) throw new TypeError(`The worker has no export named "${entrypoint}" (its [[services]] entrypoint)`);
        const target = typeof Target === 'function' ? new Target(ctx, env) : Target;
        if (typeof target.fetch !== 'function') throw new Error('Handler does not export a fetch() function.');
        res = target.fetch(incoming(method, url, flat, body), env, ctx);
      } catch (e) {
        N.fail(id, errorText(e));
        return;
      }
      Promise.resolve(res).then((r) => answer(id, r), (e) => N.fail(id, errorText(e)));
      return;
    }
    rpcAnswer(() => {
      const [name, call, args] = rpcRequest(rpc, body);
      if (!Target) throw new TypeError(`The worker has no export named "${entrypoint}" (its [[services]] entrypoint)`);
      if (typeof Target === 'function' && Target.prototype instanceof DurableObject) throw new TypeError(`The export "${entrypoint}" is a Durable Object class, not a WorkerEntrypoint`);
      if (typeof Target === 'function') return rpcInvoke(new Target(ctx, env), name, call, args);
      // An object's handlers take one argument, then env and ctx.
      const f = Object.prototype.hasOwnProperty.call(Target, name) ? Target[name] : undefined;
      if (typeof f !== 'function' || !call) throw new TypeError(`The RPC receiver does not implement the method "${name}".`);
      if (args.length !== 1) throw new TypeError(`Attempted to call RPC function "${name}" with the wrong number of arguments. When calling a top-level handler function that is not declared as part of a class, you must always send exactly one argument. In order to support variable numbers of arguments, the server must use class-based syntax (extending WorkerEntrypoint) instead.`);
      return f.call(Target, args[0], env, ctx);
    }).then((text) => N.respond(id, 200, '', ['content-type', 'application/json'], enc(text)));
  }
  async function scheduled(id, cron) {
    const ctx = new ExecutionContext(id);
    const waits = [];
    ctx.waitUntil = (p) => waits.push(Promise.resolve(p));
    const event = { type: 'scheduled', cron, scheduledTime: Date.now(), noRetry() {} };
    try {
      const target = typeof worker === 'function' ? new worker(ctx, env) : worker;
      if (typeof target.scheduled !== 'function') throw new Error('Handler does not export a scheduled() function');
      await target.scheduled(event, env, ctx);
      await Promise.all(waits);
      N.respond(id, 200, '', ['content-type', 'text/plain;charset=UTF-8'], enc('ok'));
    } catch (e) {
      N.log(3, 'Uncaught ' + errorText(e));
      N.respond(id, 500, '', ['content-type', 'text/plain;charset=UTF-8'], enc('exception'));
    }
  }
  function settle(id, ok, a, b) {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (ok) p[0](a);
    else {
      const E = { TypeError, RangeError, Error }[b] || Error;
      p[1](b === 'AbortError' || b === 'TimeoutError' ? new DOMException(a, b) : new E(a));
    }
  }
  // Timers and ops of an ended request: they will never fire or settle.
  function forget(timerIds, opIds) {
    for (const t of timerIds) timerFns.delete(t);
    for (const o of opIds) pending.delete(o);
  }
  return { setup, handle, object: objectEntry, rpc: rpcEntry, scheduled, fire: fireTimer, settle, forget, errorText, socket: socketEvent };
});
