// The `nodejs_compat` subset (compatibility flag `nodejs_compat`):
// `node:buffer`, `node:events`, `node:util`, `node:crypto`,
// `node:async_hooks`, `node:process`, and the globals `Buffer` and
// `process`. Evaluated once per JS thread, after the prelude, as a function
// taking the natives `N` and the `process.env` entries; it returns the
// modules, each as `{ default, named }` (the loader makes `node:X` modules
// of them). Written for this runtime (not Node's code): the essentials
// popular packages use, checked against workerd (tests/workers/node).
(function (N, envEntries) {
  'use strict';
  const G = globalThis;
  const enc = (s) => N.utf8Encode(String(s));
  const dec = (b) => N.utf8Decode(b, false);

  // ---------------------------------------------------------------- util.inspect
  const customInspect = Symbol.for('nodejs.util.inspect.custom');
  const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  function quote(s) {
    if (!s.includes("'")) return `'${s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}'`;
    if (!s.includes('"')) return `"${s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}"`;
    if (!s.includes('`')) return `\`${s.replace(/\\/g, '\\\\')}\``;
    return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  }
  function inspect(value, options) {
    const ctx = { depth: 2, breakLength: 80, compact: 3, maxArrayLength: 100, seen: [], indentationLvl: 0, currentDepth: 0 };
    if (options && typeof options === 'object') Object.assign(ctx, options);
    if (ctx.depth === null) ctx.depth = Infinity;
    return formatValue(ctx, value, 0);
  }
  inspect.custom = customInspect;
  inspect.defaultOptions = { depth: 2, breakLength: 80, compact: 3, maxArrayLength: 100 };
  function formatPrimitive(v) {
    switch (typeof v) {
      case 'string': return quote(v);
      case 'bigint': return `${v}n`;
      case 'symbol': return v.toString();
      case 'number': return Object.is(v, -0) ? '-0' : String(v);
      default: return String(v);
    }
  }
  function formatValue(ctx, v, depth) {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return formatPrimitive(v);
    if (typeof v[customInspect] === 'function' && v[customInspect] !== inspect) {
      const out = v[customInspect](ctx.depth - depth, { ...ctx }, inspect);
      return typeof out === 'string' ? out : formatValue(ctx, out, depth);
    }
    if (ctx.seen.includes(v)) return '[Circular *1]';
    return formatObject(ctx, v, depth);
  }
  function constructorName(v) {
    const proto = Object.getPrototypeOf(v);
    if (proto === null) return null;
    const c = proto.constructor;
    return typeof c === 'function' && c.name ? c.name : '';
  }
  function keyText(k) {
    if (typeof k === 'symbol') return `[${k.toString()}]`;
    return identifier.test(k) ? k : quote(k);
  }
  function formatObject(ctx, v, depth) {
    const name = constructorName(v);
    let braces;
    let base = '';
    let output = [];
    const keys = Object.keys(v);
    if (typeof v === 'function') {
      base = `[${v.constructor && v.constructor.name !== 'Function' ? v.constructor.name : 'Function'}: ${v.name || '(anonymous)'}]`;
      if (String(v).startsWith('class ')) base = `[class ${v.name || '(anonymous)'}]`;
      if (keys.length === 0) return base;
      braces = ['{', '}'];
    } else if (v instanceof Error) {
      base = v.stack ? String(v.stack) : `${v.name}: ${v.message}`;
      if (!base.startsWith(`${v.name}`)) base = `${v.name}: ${v.message}\n${base}`;
      base = base.trimEnd();
      const own = keys.filter((k) => k !== 'stack' && k !== 'message');
      if (own.length === 0) return base;
      braces = ['{', '}'];
    } else if (v instanceof Date) {
      return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
    } else if (v instanceof RegExp) {
      return String(v);
    } else if (v instanceof Promise) {
      return 'Promise { <pending> }';
    }
    if (depth > ctx.depth) {
      if (Array.isArray(v)) return '[Array]';
      return `[${name || 'Object'}]`;
    }
    ctx.seen.push(v);
    ctx.currentDepth = depth;
    // Nested values are formatted two columns in, as Node indents them.
    const inner = (x) => {
      ctx.indentationLvl += 2;
      try { return formatValue(ctx, x, depth + 1); } finally { ctx.indentationLvl -= 2; }
    };
    const more = (n) => `... ${n} more item${n > 1 ? 's' : ''}`;
    let arrayLike = false;
    const entry = (k) => `${keyText(k)}: ${inner(v[k])}`;
    try {
      if (braces) {
        output = keys.filter((k) => !(v instanceof Error && (k === 'stack' || k === 'message'))).map(entry);
      } else if (Array.isArray(v)) {
        braces = [name === 'Array' ? '[' : `${name}(${v.length}) [`, ']'];
        arrayLike = true;
        let holes = 0;
        let shown = 0;
        let i = 0;
        for (; i < v.length && shown < ctx.maxArrayLength; i++) {
          if (!(i in v)) { holes++; continue; }
          if (holes) { output.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`); holes = 0; shown++; }
          output.push(inner(v[i]));
          shown++;
        }
        if (holes) output.push(`<${holes} empty item${holes > 1 ? 's' : ''}>`);
        if (i < v.length) output.push(more(v.length - i));
        for (const k of keys) if (!/^\d+$/.test(k)) output.push(entry(k));
      } else if (v instanceof Map) {
        braces = [`${name}(${v.size}) {`, '}'];
        for (const [k, x] of v) {
          if (output.length >= ctx.maxArrayLength) { output.push(more(v.size - output.length)); break; }
          output.push(`${inner(k)} => ${inner(x)}`);
        }
      } else if (v instanceof Set) {
        braces = [`${name}(${v.size}) {`, '}'];
        for (const x of v) {
          if (output.length >= ctx.maxArrayLength) { output.push(more(v.size - output.length)); break; }
          output.push(inner(x));
        }
      } else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
        if (typeof v.inspect === 'function' && v._isBuffer) return v.inspect();
        braces = [`${name}(${v.length}) [`, ']'];
        arrayLike = true;
        const n = Math.min(v.length, ctx.maxArrayLength);
        for (let i = 0; i < n; i++) output.push(formatPrimitive(v[i]));
        if (n < v.length) output.push(more(v.length - n));
      } else if (v instanceof ArrayBuffer) {
        braces = ['ArrayBuffer {', '}'];
        const bytes = [...new Uint8Array(v)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
        output.push(`[Uint8Contents]: <${bytes}>`, `byteLength: ${v.byteLength}`);
      } else {
        const prefix = name === 'Object' ? '' : name === null ? '[Object: null prototype] ' : `${name} `;
        braces = [`${prefix}{`, '}'];
        output = keys.map(entry);
        for (const s of Object.getOwnPropertySymbols(v)) {
          if (Object.getOwnPropertyDescriptor(v, s).enumerable) output.push(`${keyText(s)}: ${inner(v[s])}`);
        }
        if (output.length === 0) return `${prefix}{}`;
      }
    } finally {
      ctx.seen.pop();
    }
    if (output.length === 0 && !base) return `${braces[0]}${braces[1]}`.replace(/\s+\}$/, '}').replace(' [ ]', ' []').replace('[]', '[]');
    return reduceToSingleString(ctx, output, base, braces, depth, arrayLike ? v : undefined);
  }
  // Node's rule: one line when it fits in breakLength and the object holds
  // fewer than `compact` levels of nesting; otherwise one entry per line,
  // arrays of more than six entries grouped in columns.
  function reduceToSingleString(ctx, output, base, braces, depth, array) {
    const entries = output.length;
    if (array !== undefined && entries > 6) output = groupArrayElements(ctx, output, array);
    if (ctx.currentDepth - depth < ctx.compact && entries === output.length) {
      const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
      let total = output.length + start;
      let fits = total + output.length <= ctx.breakLength;
      for (let i = 0; fits && i < output.length; i++) {
        total += output[i].length;
        if (total > ctx.breakLength) fits = false;
      }
      if (fits && !base.includes('\n')) {
        const joined = output.join(', ');
        if (!joined.includes('\n')) return `${base ? `${base} ` : ''}${braces[0]} ${joined} ${braces[1]}`;
      }
    }
    const indentation = `\n${' '.repeat(ctx.indentationLvl)}`;
    return `${base ? `${base} ` : ''}${braces[0]}${indentation}  ${output.join(`,${indentation}  `)}${indentation}${braces[1]}`;
  }
  // Node's columns for long arrays of short entries (its algorithm).
  function groupArrayElements(ctx, output, value) {
    let totalLength = 0;
    let maxLength = 0;
    let outputLength = output.length;
    if (ctx.maxArrayLength < output.length) outputLength--;
    const separatorSpace = 2;
    const dataLen = new Array(outputLength);
    for (let i = 0; i < outputLength; i++) {
      const len = output[i].length;
      dataLen[i] = len;
      totalLength += len + separatorSpace;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength && (totalLength / actualMax > 5 || maxLength <= 6)) {
      const averageBias = Math.sqrt(actualMax - totalLength / output.length);
      const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
      const columns = Math.min(
        Math.round(Math.sqrt(2.5 * biasedMax * outputLength) / biasedMax),
        Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
        ctx.compact * 4,
        15,
      );
      if (columns <= 1) return output;
      const tmp = [];
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineLength = 0;
        for (let j = i; j < output.length; j += columns) if (dataLen[j] > lineLength) lineLength = dataLen[j];
        maxLineLength.push(lineLength + separatorSpace);
      }
      let padStart = true;
      for (let i = 0; i < output.length; i++) {
        if (typeof value[i] !== 'number' && typeof value[i] !== 'bigint') { padStart = false; break; }
      }
      for (let i = 0; i < outputLength; i += columns) {
        const max = Math.min(i + columns, outputLength);
        let str = '';
        let j = i;
        for (; j < max - 1; j++) {
          const cell = `${output[j]}, `;
          str += padStart ? cell.padStart(maxLineLength[j - i], ' ') : cell.padEnd(maxLineLength[j - i], ' ');
        }
        str += padStart ? output[j].padStart(maxLineLength[j - i] - separatorSpace, ' ') : output[j];
        tmp.push(str);
      }
      if (outputLength < output.length) tmp.push(output[outputLength]);
      return tmp;
    }
    return output;
  }

  function format(...args) {
    const first = args[0];
    if (typeof first !== 'string') return args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ');
    let i = 1;
    let out = first.replace(/%[sdifjoOc%]/g, (m) => {
      if (m === '%%') return '%';
      if (i >= args.length) return m;
      const a = args[i++];
      switch (m) {
        case '%s': return typeof a === 'string' ? a : typeof a === 'bigint' ? `${a}n` : typeof a === 'object' && a !== null ? inspect(a, { depth: 1 }) : String(a);
        case '%d': return typeof a === 'bigint' ? `${a}n` : typeof a === 'object' && a !== null ? 'NaN' : String(Number(a));
        case '%i': return typeof a === 'bigint' ? `${a}n` : String(parseInt(a, 10));
        case '%f': return String(parseFloat(a));
        case '%j': try { return JSON.stringify(a); } catch (e) { return '[Circular]'; }
        case '%c': return '';
        default: return inspect(a);
      }
    });
    for (; i < args.length; i++) out += ' ' + (typeof args[i] === 'string' ? args[i] : inspect(args[i]));
    return out;
  }

  // ---------------------------------------------------------------- Buffer
  const ENCODINGS = ['utf8', 'utf-8', 'hex', 'base64', 'base64url', 'latin1', 'binary', 'ascii', 'utf16le', 'utf-16le', 'ucs2', 'ucs-2'];
  function encodingOf(e) {
    if (e === undefined || e === null) return 'utf8';
    const l = String(e).toLowerCase();
    if (!ENCODINGS.includes(l)) throw new TypeError(`Unknown encoding: ${e}`);
    if (l === 'utf-8') return 'utf8';
    if (l === 'binary') return 'latin1';
    if (l === 'utf-16le' || l === 'ucs2' || l === 'ucs-2') return 'utf16le';
    return l;
  }
  function base64Bytes(s) {
    const clean = String(s).replace(/[\s=]/g, '').replace(/\+/g, '-').replace(/\//g, '_');
    return N.base64UrlDecode(clean.slice(0, clean.length - (clean.length % 4 === 1 ? 1 : 0))) || new Uint8Array(0);
  }
  function stringBytes(s, encoding) {
    s = String(s);
    switch (encodingOf(encoding)) {
      case 'utf8': return enc(s);
      case 'hex': {
        const n = Math.floor(s.length / 2);
        const out = new Uint8Array(n);
        let i = 0;
        for (; i < n; i++) {
          const b = parseInt(s.substr(i * 2, 2), 16);
          if (Number.isNaN(b)) break;
          out[i] = b;
        }
        return out.subarray(0, i);
      }
      case 'base64': case 'base64url': return base64Bytes(s);
      case 'latin1': case 'ascii': {
        const out = new Uint8Array(s.length);
        for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
        return out;
      }
      case 'utf16le': {
        const out = new Uint8Array(s.length * 2);
        for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); out[i * 2] = c & 0xff; out[i * 2 + 1] = c >> 8; }
        return out;
      }
    }
  }
  function bytesString(b, encoding) {
    switch (encodingOf(encoding)) {
      case 'utf8': return dec(b);
      case 'hex': { let s = ''; for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0'); return s; }
      case 'base64': {
        const url = N.base64UrlEncode(b).replace(/-/g, '+').replace(/_/g, '/');
        return url + '='.repeat((4 - (url.length % 4)) % 4);
      }
      case 'base64url': return N.base64UrlEncode(b);
      case 'latin1': { let s = ''; for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode.apply(null, b.subarray(i, i + 4096)); return s; }
      case 'ascii': { let s = ''; for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i] & 0x7f); return s; }
      case 'utf16le': { let s = ''; for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode(b[i] | (b[i + 1] << 8)); return s; }
    }
  }
  const MAX_LENGTH = 2 ** 31 - 1;
  function checkSize(size) {
    if (typeof size !== 'number' || !(size >= 0) || size > MAX_LENGTH) {
      throw new RangeError(`The argument 'size' is invalid. Received ${size}`);
    }
    return size;
  }
  class Buffer extends Uint8Array {
    static from(value, encodingOrOffset, length) {
      if (typeof value === 'string') { const b = stringBytes(value, encodingOrOffset); return new Buffer(b.buffer, b.byteOffset, b.byteLength); }
      if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
        const offset = encodingOrOffset === undefined ? 0 : Number(encodingOrOffset);
        return new Buffer(value, offset, length === undefined ? value.byteLength - offset : Number(length));
      }
      if (ArrayBuffer.isView(value)) {
        const out = new Buffer(value.byteLength);
        out.set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
        return out;
      }
      if (value && typeof value === 'object') {
        if (value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data);
        if (typeof value.length === 'number' || Array.isArray(value)) {
          const out = new Buffer(value.length >>> 0);
          for (let i = 0; i < out.length; i++) out[i] = Number(value[i]) & 0xff;
          return out;
        }
        if (typeof value[Symbol.toPrimitive] === 'function' || typeof value.valueOf === 'function') {
          const prim = typeof value[Symbol.toPrimitive] === 'function' ? value[Symbol.toPrimitive]('string') : value.valueOf();
          if (prim !== value && (typeof prim === 'string' || typeof prim === 'object')) return Buffer.from(prim, encodingOrOffset, length);
        }
      }
      throw new TypeError(`The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. Received ${value === null ? 'null' : typeof value}`);
    }
    static alloc(size, fill, encoding) {
      const b = new Buffer(checkSize(size));
      if (fill !== undefined && fill !== 0) b.fill(fill, 0, b.length, encoding);
      return b;
    }
    static allocUnsafe(size) { return new Buffer(checkSize(size)); }
    static allocUnsafeSlow(size) { return new Buffer(checkSize(size)); }
    static isBuffer(b) { return b instanceof Buffer; }
    static isEncoding(e) { return typeof e === 'string' && ENCODINGS.includes(e.toLowerCase()); }
    static byteLength(s, encoding) {
      if (typeof s !== 'string') return s.byteLength;
      return stringBytes(s, encoding).length;
    }
    static concat(list, total) {
      if (!Array.isArray(list)) throw new TypeError('The "list" argument must be an instance of Array.');
      if (total === undefined) total = list.reduce((n, b) => n + b.length, 0);
      const out = Buffer.alloc(total);
      let at = 0;
      for (const b of list) {
        if (at >= total) break;
        const piece = b.length > total - at ? b.subarray(0, total - at) : b;
        out.set(piece, at);
        at += piece.length;
      }
      return out;
    }
    static compare(a, b) {
      const n = Math.min(a.length, b.length);
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
      return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
    }
    get _isBuffer() { return true; }
    toString(encoding, start, end) {
      start = start === undefined ? 0 : Math.max(0, start | 0);
      end = end === undefined ? this.length : Math.min(this.length, end | 0);
      if (end <= start) return '';
      return bytesString(this.subarray(start, end), encoding);
    }
    toJSON() { return { type: 'Buffer', data: Array.from(this) }; }
    equals(other) { return Buffer.compare(this, other) === 0; }
    compare(other) { return Buffer.compare(this, other); }
    slice(start, end) { return this.subarray(start, end); }
    subarray(start, end) {
      const u = Uint8Array.prototype.subarray.call(this, start, end);
      return new Buffer(u.buffer, u.byteOffset, u.byteLength);
    }
    copy(target, targetStart = 0, sourceStart = 0, sourceEnd = this.length) {
      const piece = this.subarray(sourceStart, Math.min(sourceEnd, sourceStart + target.length - targetStart));
      target.set(piece, targetStart);
      return piece.length;
    }
    write(string, offset, length, encoding) {
      if (typeof offset === 'string') { encoding = offset; offset = 0; length = undefined; } else if (typeof length === 'string') { encoding = length; length = undefined; }
      offset = offset === undefined ? 0 : offset >>> 0;
      const bytes = stringBytes(string, encoding);
      const n = Math.min(bytes.length, this.length - offset, length === undefined ? Infinity : length);
      this.set(bytes.subarray(0, n), offset);
      return n;
    }
    fill(value, offset = 0, end = this.length, encoding) {
      if (typeof offset === 'string') { encoding = offset; offset = 0; end = this.length; }
      if (typeof value === 'number') return Uint8Array.prototype.fill.call(this, value & 0xff, offset, end);
      const bytes = typeof value === 'string' ? stringBytes(value, encoding) : new Uint8Array(value.buffer ? value.buffer : value, value.byteOffset || 0, value.byteLength);
      if (bytes.length === 0) return Uint8Array.prototype.fill.call(this, 0, offset, end);
      for (let i = offset, j = 0; i < end; i++, j = (j + 1) % bytes.length) this[i] = bytes[j];
      return this;
    }
    indexOf(value, from = 0, encoding) {
      if (typeof value === 'number') return Uint8Array.prototype.indexOf.call(this, value & 0xff, from);
      const needle = typeof value === 'string' ? stringBytes(value, encoding) : value;
      if (from < 0) from = Math.max(0, this.length + from);
      outer: for (let i = from; i <= this.length - needle.length; i++) {
        for (let j = 0; j < needle.length; j++) if (this[i + j] !== needle[j]) continue outer;
        return i;
      }
      return -1;
    }
    includes(value, from, encoding) { return this.indexOf(value, from, encoding) !== -1; }
    inspect() {
      const shown = [...this.subarray(0, 50)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
      return `<Buffer${shown ? ' ' + shown : ''}${this.length > 50 ? ` ... ${this.length - 50} more bytes` : ''}>`;
    }
    [customInspect]() { return this.inspect(); }
    _view() { return new DataView(this.buffer, this.byteOffset, this.byteLength); }
  }
  // readUInt8 … writeDoubleBE, over a DataView.
  const numeric = [
    ['UInt8', 'Uint8', 1], ['Int8', 'Int8', 1],
    ['UInt16', 'Uint16', 2], ['Int16', 'Int16', 2],
    ['UInt32', 'Uint32', 4], ['Int32', 'Int32', 4],
    ['Float', 'Float32', 4], ['Double', 'Float64', 8],
    ['BigUInt64', 'BigUint64', 8], ['BigInt64', 'BigInt64', 8],
  ];
  const bounds = (b, offset, size) => {
    if (offset === undefined) offset = 0;
    if (typeof offset !== 'number' || offset !== Math.floor(offset)) throw new TypeError(`The "offset" argument must be an integer. Received ${offset}`);
    if (offset < 0 || offset + size > b.length) throw new RangeError(`The value of "offset" is out of range. It must be >= 0 and <= ${b.length - size}. Received ${offset}`);
    return offset;
  };
  for (const [name, view, size] of numeric) {
    const endians = size === 1 ? [['', false]] : [['LE', true], ['BE', false]];
    for (const [suffix, little] of endians) {
      Buffer.prototype[`read${name}${suffix}`] = function (offset) {
        return this._view()[`get${view}`](bounds(this, offset, size), little);
      };
      Buffer.prototype[`write${name}${suffix}`] = function (value, offset) {
        offset = bounds(this, offset, size);
        this._view()[`set${view}`](offset, view.startsWith('Big') ? BigInt(value) : Number(value), little);
        return offset + size;
      };
      if (name.startsWith('UInt')) {
        Buffer.prototype[`readUint${name.slice(4)}${suffix}`] = Buffer.prototype[`read${name}${suffix}`];
        Buffer.prototype[`writeUint${name.slice(4)}${suffix}`] = Buffer.prototype[`write${name}${suffix}`];
      }
    }
  }
  // Variable-width integers (1 to 6 bytes), byte swaps, lastIndexOf.
  const byteLength = (n) => {
    if (!(n >= 1 && n <= 6) || n !== Math.floor(n)) throw new RangeError(`The value of "byteLength" is out of range. It must be >= 1 and <= 6. Received ${n}`);
    return n;
  };
  Object.assign(Buffer.prototype, {
    readUIntBE(offset, n) { offset = bounds(this, offset, byteLength(n)); let v = 0; for (let i = 0; i < n; i++) v = v * 256 + this[offset + i]; return v; },
    readUIntLE(offset, n) { offset = bounds(this, offset, byteLength(n)); let v = 0; for (let i = n - 1; i >= 0; i--) v = v * 256 + this[offset + i]; return v; },
    readIntBE(offset, n) { const v = this.readUIntBE(offset, n); return v >= 2 ** (8 * n - 1) ? v - 2 ** (8 * n) : v; },
    readIntLE(offset, n) { const v = this.readUIntLE(offset, n); return v >= 2 ** (8 * n - 1) ? v - 2 ** (8 * n) : v; },
    writeUIntBE(value, offset, n) { offset = bounds(this, offset, byteLength(n)); let v = Number(value); for (let i = n - 1; i >= 0; i--) { this[offset + i] = v % 256; v = Math.floor(v / 256); } return offset + n; },
    writeUIntLE(value, offset, n) { offset = bounds(this, offset, byteLength(n)); let v = Number(value); for (let i = 0; i < n; i++) { this[offset + i] = v % 256; v = Math.floor(v / 256); } return offset + n; },
    writeIntBE(value, offset, n) { let v = Number(value); if (v < 0) v += 2 ** (8 * n); return this.writeUIntBE(v, offset, n); },
    writeIntLE(value, offset, n) { let v = Number(value); if (v < 0) v += 2 ** (8 * n); return this.writeUIntLE(v, offset, n); },
    lastIndexOf(value, from = this.length - 1, encoding) {
      const needle = typeof value === 'number' ? Uint8Array.of(value & 0xff) : typeof value === 'string' ? stringBytes(value, encoding) : value;
      if (from < 0) from += this.length;
      outer: for (let i = Math.min(from, this.length - needle.length); i >= 0; i--) {
        for (let j = 0; j < needle.length; j++) if (this[i + j] !== needle[j]) continue outer;
        return i;
      }
      return -1;
    },
    swap16() { return swap(this, 2); },
    swap32() { return swap(this, 4); },
    swap64() { return swap(this, 8); },
    toLocaleString(encoding, start, end) { return this.toString(encoding, start, end); },
  });
  Buffer.prototype.readUintBE = Buffer.prototype.readUIntBE;
  Buffer.prototype.readUintLE = Buffer.prototype.readUIntLE;
  Buffer.prototype.writeUintBE = Buffer.prototype.writeUIntBE;
  Buffer.prototype.writeUintLE = Buffer.prototype.writeUIntLE;
  function swap(b, size) {
    if (b.length % size !== 0) throw new RangeError(`Buffer size must be a multiple of ${size * 8}-bits`);
    for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
    return b;
  }
  Buffer.poolSize = 8192;
  const buffer = {
    Buffer,
    kMaxLength: MAX_LENGTH,
    constants: { MAX_LENGTH, MAX_STRING_LENGTH: 2 ** 29 - 24 },
    INSPECT_MAX_BYTES: 50,
    SlowBuffer: Buffer,
    Blob: G.Blob,
    File: G.File,
    atob: G.atob,
    btoa: G.btoa,
    isUtf8: (b) => N.utf8Decode(b instanceof Uint8Array ? b : new Uint8Array(b), true) !== null,
    isAscii: (b) => [...new Uint8Array(b.buffer || b, b.byteOffset || 0, b.byteLength)].every((x) => x < 128),
  };

  // ---------------------------------------------------------------- events
  class EventEmitter {
    constructor() { this._events = new Map(); this._maxListeners = undefined; }
    _list(name) { if (!this._events) this._events = new Map(); return this._events.get(name) || []; }
    _add(name, listener, once, prepend) {
      if (typeof listener !== 'function') throw new TypeError(`The "listener" argument must be of type function. Received ${listener === null ? 'null' : typeof listener}`);
      if (this._events && this._events.has('newListener')) this.emit('newListener', name, listener);
      const list = this._list(name).slice();
      const item = { listener, once };
      if (prepend) list.unshift(item); else list.push(item);
      this._events.set(name, list);
      return this;
    }
    on(name, listener) { return this._add(name, listener, false, false); }
    addListener(name, listener) { return this.on(name, listener); }
    prependListener(name, listener) { return this._add(name, listener, false, true); }
    once(name, listener) { return this._add(name, listener, true, false); }
    prependOnceListener(name, listener) { return this._add(name, listener, true, true); }
    off(name, listener) {
      const list = this._list(name);
      const i = list.findLastIndex((item) => item.listener === listener);
      if (i >= 0) {
        const next = list.slice();
        next.splice(i, 1);
        if (next.length) this._events.set(name, next); else this._events.delete(name);
        if (this._events.has('removeListener')) this.emit('removeListener', name, listener);
      }
      return this;
    }
    removeListener(name, listener) { return this.off(name, listener); }
    removeAllListeners(name) { if (name === undefined) this._events = new Map(); else this._list(name) && this._events.delete(name); return this; }
    emit(name, ...args) {
      const list = this._list(name);
      if (list.length === 0) {
        if (name === 'error') {
          const e = args[0];
          if (e instanceof Error) throw e;
          const err = new Error(`Unhandled error. (${inspect(e)})`);
          err.context = e;
          throw err;
        }
        return false;
      }
      for (const item of list) {
        if (item.once) this.off(name, item.listener);
        item.listener.apply(this, args);
      }
      return true;
    }
    listeners(name) { return this._list(name).map((i) => i.listener); }
    rawListeners(name) { return this.listeners(name); }
    listenerCount(name) { return this._list(name).length; }
    eventNames() { return this._events ? [...this._events.keys()] : []; }
    setMaxListeners(n) { this._maxListeners = n; return this; }
    getMaxListeners() { return this._maxListeners === undefined ? EventEmitter.defaultMaxListeners : this._maxListeners; }
  }
  EventEmitter.defaultMaxListeners = 10;
  EventEmitter.captureRejections = false;
  EventEmitter.errorMonitor = Symbol('events.errorMonitor');
  function once(emitter, name) {
    return new Promise((resolve, reject) => {
      const onError = (e) => { emitter.off(name, onEvent); reject(e); };
      const onEvent = (...args) => { if (name !== 'error') emitter.off('error', onError); resolve(args); };
      emitter.once(name, onEvent);
      if (name !== 'error') emitter.once('error', onError);
    });
  }
  EventEmitter.EventEmitter = EventEmitter;
  EventEmitter.once = once;
  EventEmitter.listenerCount = (emitter, name) => emitter.listenerCount(name);

  // ---------------------------------------------------------------- util
  const kCustomPromisify = Symbol.for('nodejs.util.promisify.custom');
  function promisify(fn) {
    if (typeof fn !== 'function') throw new TypeError('The "original" argument must be of type function');
    if (fn[kCustomPromisify]) return fn[kCustomPromisify];
    function promisified(...args) {
      return new Promise((resolve, reject) => {
        fn.call(this, ...args, (err, ...values) => (err ? reject(err) : resolve(values.length > 1 ? values : values[0])));
      });
    }
    Object.setPrototypeOf(promisified, Object.getPrototypeOf(fn));
    return Object.defineProperties(promisified, Object.getOwnPropertyDescriptors(fn));
  }
  promisify.custom = kCustomPromisify;
  function callbackify(fn) {
    return function (...args) {
      const cb = args.pop();
      fn.apply(this, args).then((v) => queueMicrotask(() => cb(null, v)), (e) => queueMicrotask(() => cb(e || new Error('Promise was rejected with a falsy value'))));
    };
  }
  const tag = (v) => Object.prototype.toString.call(v);
  const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
  const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor;
  const types = {
    isPromise: (v) => v instanceof Promise,
    isDate: (v) => v instanceof Date,
    isRegExp: (v) => v instanceof RegExp,
    isMap: (v) => v instanceof Map,
    isSet: (v) => v instanceof Set,
    isWeakMap: (v) => v instanceof WeakMap,
    isWeakSet: (v) => v instanceof WeakSet,
    isArrayBuffer: (v) => v instanceof ArrayBuffer,
    isAnyArrayBuffer: (v) => v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer),
    isSharedArrayBuffer: (v) => typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer,
    isArrayBufferView: (v) => ArrayBuffer.isView(v),
    isDataView: (v) => v instanceof DataView,
    isTypedArray: (v) => ArrayBuffer.isView(v) && !(v instanceof DataView),
    isUint8Array: (v) => v instanceof Uint8Array,
    isAsyncFunction: (v) => v instanceof AsyncFunction,
    isGeneratorFunction: (v) => v instanceof GeneratorFunction,
    isGeneratorObject: (v) => tag(v) === '[object Generator]',
    isNativeError: (v) => v instanceof Error,
    isBoxedPrimitive: (v) => v instanceof Number || v instanceof String || v instanceof Boolean || (typeof v === 'object' && v !== null && ['[object Symbol]', '[object BigInt]'].includes(tag(v))),
    isProxy: () => false,
  };
  for (const T of ['Int8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']) {
    types[`is${T}`] = (v) => v instanceof G[T];
  }
  function isDeepStrictEqual(a, b) {
    if (Object.is(a, b)) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (a instanceof Date) return a.getTime() === b.getTime();
    if (a instanceof Map || a instanceof Set) return a.size === b.size && isDeepStrictEqual([...a], [...b]);
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && isDeepStrictEqual(a[k], b[k]));
  }
  const util = {
    promisify,
    callbackify,
    inspect,
    format,
    formatWithOptions: (options, ...args) => format(...args),
    types,
    isDeepStrictEqual,
    inherits(ctor, superCtor) {
      Object.defineProperty(ctor, 'super_', { value: superCtor, writable: true, configurable: true });
      Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
    },
    deprecate(fn) { return fn; },
    debuglog() { const f = () => {}; f.enabled = false; return f; },
    isArray: Array.isArray,
    TextEncoder: G.TextEncoder,
    TextDecoder: G.TextDecoder,
    toUSVString: (s) => String(s).toWellFormed(),
    stripVTControlCharacters: (s) => String(s).replace(/\u001b\[[0-9;]*[A-Za-z]/g, ''),
  };

  // ---------------------------------------------------------------- crypto
  const HASHES = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512', md5: 'MD5' };
  function algorithm(name) {
    const a = HASHES[String(name).toLowerCase().replace(/^rsa-/, '').replace('sha-', 'sha')];
    if (!a) throw new Error('Digest method not supported');
    return a;
  }
  function dataBytes(data, encoding) {
    if (typeof data === 'string') return stringBytes(data, encoding);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    throw new TypeError(`The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${data === null ? 'null' : typeof data}`);
  }
  function digestOut(bytes, encoding) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return encoding === undefined || encoding === 'buffer' ? b : b.toString(encoding);
  }
  class Hash {
    constructor(name, key) { this._algorithm = algorithm(name); this._key = key; this._chunks = []; this._done = false; }
    update(data, encoding) {
      if (this._done) throw new Error('Digest already called');
      this._chunks.push(Uint8Array.from(dataBytes(data, encoding)));
      return this;
    }
    digest(encoding) {
      if (this._done) throw new Error('Digest already called');
      this._done = true;
      const data = Buffer.concat(this._chunks);
      const bytes = this._key ? N.hmac(this._algorithm, this._key, data) : N.digest(this._algorithm, data);
      return digestOut(bytes, encoding);
    }
    copy() { const h = new Hash('sha256'); h._algorithm = this._algorithm; h._key = this._key; h._chunks = this._chunks.slice(); return h; }
  }
  function randomBytes(size, callback) {
    size = checkSize(size);
    const out = new Buffer(size);
    for (let at = 0; at < size; at += 65536) {
      out.set(N.randomBytes(Math.min(65536, size - at)), at);
    }
    if (typeof callback === 'function') { queueMicrotask(() => callback(null, out)); return undefined; }
    return out;
  }
  const crypto = {
    createHash: (name) => new Hash(name),
    createHmac: (name, key) => new Hmac(name, key),
    getHashes: () => Object.keys(HASHES),
    randomBytes,
    randomFillSync(buf, offset = 0, size) {
      const view = new Uint8Array(buf.buffer || buf, (buf.byteOffset || 0) + offset, size === undefined ? (buf.byteLength - offset) : size);
      view.set(randomBytes(view.length));
      return buf;
    },
    randomUUID: () => G.crypto.randomUUID(),
    randomInt(min, max, callback) {
      if (max === undefined || typeof max === 'function') { callback = max; max = min; min = 0; }
      const range = max - min;
      if (!(range > 0) || range > 2 ** 48) throw new RangeError('The value of "max" is out of range.');
      const bytes = randomBytes(6);
      const n = min + Math.floor((bytes[0] * 2 ** 40 + bytes[1] * 2 ** 32 + bytes.readUInt32BE(2)) / 2 ** 48 * range);
      if (typeof callback === 'function') { queueMicrotask(() => callback(null, n)); return undefined; }
      return n;
    },
    timingSafeEqual(a, b) {
      if (a.byteLength !== b.byteLength) throw new RangeError('Input buffers must have the same byte length');
      return N.timingSafeEqual(dataBytes(a), dataBytes(b));
    },
    getRandomValues: (array) => G.crypto.getRandomValues(array),
    webcrypto: G.crypto,
    subtle: G.crypto.subtle,
  };
  class Hmac extends Hash {
    constructor(name, key) { super(name, Uint8Array.from(typeof key === 'string' ? enc(key) : dataBytes(key))); }
  }
  crypto.Hash = Hash;
  crypto.Hmac = Hmac;

  // ---------------------------------------------------------------- async_hooks
  // The store follows the request (the JS thread's current call: its
  // awaits, timers and I/O are its turns), not the async call graph, which
  // QuickJS does not expose: two `run`s of one storage interleaving within
  // one request see the latest store.
  // Every storage alive (weakly), for snapshot().
  const storages = new Set();
  class AsyncLocalStorage {
    constructor() {
      this._stacks = new Map();
      storages.add(typeof WeakRef === 'function' ? new WeakRef(this) : { deref: () => this });
    }
    _stack(create) {
      const call = N.currentCall();
      let stack = this._stacks.get(call);
      if (!stack && create) this._stacks.set(call, (stack = []));
      return [call, stack];
    }
    getStore() {
      const [, stack] = this._stack(false);
      return stack && stack.length ? stack[stack.length - 1].store : undefined;
    }
    run(store, fn, ...args) {
      const [call, stack] = this._stack(true);
      const frame = { store };
      stack.push(frame);
      const pop = () => {
        const i = stack.lastIndexOf(frame);
        if (i >= 0) stack.splice(i, 1);
        if (stack.length === 0 && this._stacks.get(call) === stack) this._stacks.delete(call);
      };
      let result;
      try {
        result = fn(...args);
      } catch (e) {
        pop();
        throw e;
      }
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        Promise.resolve(result).then(pop, pop);
      } else pop();
      return result;
    }
    exit(fn, ...args) { return this.run(undefined, fn, ...args); }
    enterWith(store) { const [, stack] = this._stack(true); stack.push({ store }); }
    disable() { this._stacks.clear(); }
    // A function running `fn` with the stores every storage has now.
    static snapshot() {
      const frames = [];
      for (const ref of storages) {
        const storage = ref.deref();
        if (storage === undefined) { storages.delete(ref); continue; }
        frames.push([storage, storage.getStore()]);
      }
      return (fn, ...args) => frames.reduceRight((inner, [storage, store]) => () => storage.run(store, inner), () => fn(...args))();
    }
    static bind(fn) {
      const snapshot = AsyncLocalStorage.snapshot();
      return function (...args) { return snapshot(() => fn.apply(this, args)); };
    }
  }
  class AsyncResource {
    constructor(type) { this.type = type; }
    runInAsyncScope(fn, thisArg, ...args) { return fn.apply(thisArg, args); }
    bind(fn) { return fn.bind(this); }
    static bind(fn) { return fn; }
    emitDestroy() { return this; }
    asyncId() { return 0; }
    triggerAsyncId() { return 0; }
  }
  const asyncHooks = { AsyncLocalStorage, AsyncResource };

  // ---------------------------------------------------------------- process
  const process = new EventEmitter();
  Object.assign(process, {
    env: Object.assign(Object.create(null), envEntries),
    argv: [],
    execArgv: [],
    platform: 'linux',
    arch: 'x64',
    pid: 1,
    title: 'workerd',
    versions: {},
    release: { name: 'node' },
    features: {},
    cwd: () => '/bundle',
    chdir() { throw new Error('process.chdir() is not supported'); },
    exit() { throw new Error('process.exit() is not supported'); },
    nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
    emitWarning: (w) => console.warn(typeof w === 'string' ? `Warning: ${w}` : w),
    hrtime: Object.assign((prev) => {
      const t = performance.now();
      const s = Math.floor(t / 1000);
      const ns = Math.floor((t % 1000) * 1e6);
      return prev ? [s - prev[0], ns - prev[1]] : [s, ns];
    }, { bigint: () => BigInt(Math.floor(performance.now() * 1e6)) }),
    uptime: () => performance.now() / 1000,
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
  });

  const define = (name, value) =>
    Object.defineProperty(G, name, { value, writable: true, configurable: true, enumerable: false });
  define('Buffer', Buffer);
  define('process', process);
  define('global', G);

  const module = (value, extra) => ({ default: value, named: Object.assign({}, value, extra) });
  return {
    buffer: module(buffer),
    events: { default: EventEmitter, named: { EventEmitter, once, defaultMaxListeners: 10, errorMonitor: EventEmitter.errorMonitor } },
    util: module(util),
    crypto: module(crypto),
    async_hooks: module(asyncHooks),
    process: { default: process, named: { env: process.env, nextTick: process.nextTick, platform: process.platform, cwd: process.cwd, argv: process.argv, versions: process.versions, hrtime: process.hrtime, emitWarning: process.emitWarning } },
  };
});
