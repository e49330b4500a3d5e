// Spliced into the prelude (at its `@include sql.js` line): `ctx.storage.sql`
// over the `doSql*` natives (see sql.rs).
  // `ctx.storage.sql` of a SQLite-backed class: queries run at once, on this
  // thread, in the object's own database (see sql.rs).
  class SqlStorage {
    constructor(index, id) { this._index = index; this._id = id; }
    exec(query, ...bindings) {
      const params = bindings.map((b) => {
        if (b === null || b === undefined || typeof b === 'string' || typeof b === 'number') return b ?? null;
        if (typeof b === 'boolean') return String(b);
        if (b instanceof ArrayBuffer) return new Uint8Array(b);
        if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
        throw new TypeError(`Unsupported type for SQL binding: ${typeof b === 'object' ? b.constructor.name : typeof b}`);
      });
      const [columns, rows, rowsRead, rowsWritten] = N.doSql(this._index, this._id, String(query), params);
      return new SqlStorageCursor(columns, rows, rowsRead, rowsWritten);
    }
    get databaseSize() { return N.doSqlSize(this._index, this._id); }
    get Cursor() { return SqlStorageCursor; }
    get Statement() { return undefined; }
  }
  class SqlStorageCursor {
    constructor(columns, rows, rowsRead, rowsWritten) {
      this._columns = columns; this._rows = rows; this._at = 0;
      this._read = rowsRead; this._written = rowsWritten;
    }
    get columnNames() { return this._columns.slice(); }
    get rowsRead() { return this._read; }
    get rowsWritten() { return this._written; }
    _object(row) { const o = {}; this._columns.forEach((c, i) => put(o, c, row[i])); return o; }
    next() {
      if (this._at >= this._rows.length) return { done: true };
      return { done: false, value: this._object(this._rows[this._at++]) };
    }
    toArray() { const out = []; for (let r = this.next(); !r.done; r = this.next()) out.push(r.value); return out; }
    one() {
      const left = this._rows.length - this._at;
      if (left === 0) throw new Error('Expected exactly one result from SQL query, but got no results.');
      if (left > 1) throw new Error('Expected exactly one result from SQL query, but got multiple results.');
      return this.next().value;
    }
    raw() {
      const self = this;
      return {
        next() { return self._at >= self._rows.length ? { done: true } : { done: false, value: self._rows[self._at++].slice() }; },
        toArray() { const out = []; for (let r = this.next(); !r.done; r = this.next()) out.push(r.value); return out; },
        [Symbol.iterator]() { return this; },
      };
    }
    [Symbol.iterator]() { return this; }
  }
