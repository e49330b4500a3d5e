//! Cloudflare Workers emulation, R2: `[[r2_buckets]]` in `wrangler.toml`
//! gives `env.FILES`, a bucket on the file system under the route's state
//! directory — `put` (strings, bytes, Blobs, known-length streams, HTTP and
//! custom metadata, `onlyIf`, `md5`), `get` (`R2ObjectBody`: body stream,
//! `text`/`json`/`arrayBuffer`, ranges, `onlyIf`), `head`, `list` (prefix,
//! delimiter, cursor, limit, startAfter, include), `delete` of one or many
//! keys; R2's object shape and error messages; keys that try to leave the
//! bucket's directory stay inside; the data kept across a restart.
//!
//! The expected messages are workerd's (`put: … (10012)`, `get: The
//! requested range is not satisfiable (10039)`: the operation, R2's
//! message, its v4 code) and its `TypeError` for a stream of unknown
//! length. Compared with miniflare 3.20250718.3 on Node 20 (this file's
//! worker run by `new Miniflare({ modules: true, r2Buckets: { FILES } })`):
//! `/shapes`, `/ranges`, `/conditions`, `/errors` and `/list` answer the
//! same JSON (objects' own properties in the same order, `head` with the
//! whole range) but for `storageClass`, `""` there and `"Standard"` here
//! as in production. `/upload` fails there because miniflare's
//! `dispatchFetch` hands the worker a body of unknown length; a request
//! with a `Content-Length`, as here, has a known one.

mod common;

use common::{worker_dir, ServerBuilder};
use serde_json::{json, Value};

const WRANGLER: &str = r#"
name = "r2-app"
main = "src/index.js"
compatibility_date = "2025-01-01"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"
"#;

const WORKER: &str = r#"
const caught = (e) => `${e.name}: ${e.message}`;
async function attempt(f) {
  try {
    return await f();
  } catch (e) {
    return caught(e);
  }
}
const plain = (o) => (o === null ? null : JSON.parse(JSON.stringify(o)));

export default {
  async fetch(request, env) {
    const b = env.FILES;
    const url = new URL(request.url);
    const q = (k) => url.searchParams.get(k);
    const out = {};
    switch (url.pathname) {
      case '/shapes': {
        const put = await b.put('docs/a.txt', 'hello world', {
          httpMetadata: { contentType: 'text/plain', cacheControl: 'max-age=60', cacheExpiry: new Date(Date.UTC(2030, 0, 1)) },
          customMetadata: { owner: 'ann' },
        });
        out.put = plain(put);
        // R2Object and R2ObjectBody are not globals in workerd.
        out.putClass = [typeof R2Object, 'body' in put, typeof put.text, typeof put.writeHttpMetadata];
        out.uploadedIsDate = put.uploaded instanceof Date;
        out.md5Bytes = put.checksums.md5.byteLength;
        const got = await b.get('docs/a.txt');
        out.get = plain(got);
        out.getClass = ['body' in got, typeof got.text, typeof got.arrayBuffer, typeof got.json, typeof got.blob];
        out.order = Object.keys(got);
        out.text = await got.text();
        out.bodyUsed = got.bodyUsed;
        out.again = await attempt(() => got.text());
        out.stream = await new Response((await b.get('docs/a.txt')).body).text();
        out.head = plain(await b.head('docs/a.txt'));
        out.missing = await b.get('nope');
        out.headMissing = await b.head('nope');
        const headers = new Headers();
        got.writeHttpMetadata(headers);
        out.headers = [...headers];
        await b.put('j.json', '{"a":1}');
        out.json = await (await b.get('j.json')).json();
        await b.put('bin', new Uint8Array([0, 1, 2, 255]));
        out.bytes = [...new Uint8Array(await (await b.get('bin')).arrayBuffer())];
        out.blob = (await b.put('blob', new Blob(['ab']))).size;
        out.empty = (await b.put('empty', null)).size;
        return Response.json(out);
      }
      case '/ranges': {
        await b.put('r', 'hello world');
        const part = async (range) => {
          const o = await b.get('r', { range });
          return { text: await o.text(), range: o.range, size: o.size };
        };
        out.offset = await part({ offset: 6, length: 5 });
        out.offsetOnly = await part({ offset: 6 });
        out.lengthOnly = await part({ length: 5 });
        out.suffix = await part({ suffix: 5 });
        out.clamped = await part({ offset: 9, length: 50 });
        out.header = await part(new Headers({ range: 'bytes=0-4' }));
        out.whole = (await b.get('r')).range;
        out.outside = await attempt(() => b.get('r', { range: { offset: 50 } }));
        out.zero = await attempt(() => b.get('r', { range: { length: 0 } }));
        return Response.json(out);
      }
      case '/conditions': {
        const { etag, uploaded } = await b.put('c', 'v1');
        const body = async (onlyIf) => {
          const o = await b.get('c', { onlyIf });
          return o === null ? null : 'body' in o ? await o.text() : `no body (${o.key})`;
        };
        out.match = await body({ etagMatches: etag });
        out.matchFails = await body({ etagMatches: 'other' });
        out.noneMatch = await body({ etagDoesNotMatch: etag });
        out.noneMatchOther = await body({ etagDoesNotMatch: 'other' });
        out.headerNoneMatch = await body(new Headers({ 'if-none-match': `"${etag}"` }));
        out.headerMatch = await body(new Headers({ 'if-match': `"${etag}"` }));
        out.before = await body({ uploadedBefore: new Date(uploaded.getTime() - 1000) });
        out.after = await body({ uploadedAfter: new Date(uploaded.getTime() - 1000) });
        out.putFails = await b.put('c', 'v2', { onlyIf: { etagMatches: 'other' } });
        out.kept = await (await b.get('c')).text();
        out.putHolds = (await b.put('c', 'v3', { onlyIf: { etagMatches: etag } })) !== null;
        out.replaced = await (await b.get('c')).text();
        out.putNew = (await b.put('fresh', 'x', { onlyIf: { etagDoesNotMatch: '*' } })) !== null;
        return Response.json(out);
      }
      case '/errors': {
        out.unknownLength = await attempt(() => b.put('s', new ReadableStream({
          start(c) { c.enqueue(new Uint8Array([1])); c.close(); },
        })));
        const { readable, writable } = new FixedLengthStream(3);
        const w = writable.getWriter();
        w.write(new Uint8Array([1, 2, 3]));
        w.close();
        out.fixedLength = (await b.put('fixed', readable)).size;
        out.md5 = await attempt(() => b.put('m', 'x', { md5: '00'.repeat(16) }));
        out.md5Right = (await b.put('m', 'hello world', { md5: '5eb63bbbe01eeed093cb22bb8f5acdc3' })).etag;
        out.metadata = await attempt(() => b.put('big', 'x', { customMetadata: { k: 'x'.repeat(3000) } }));
        out.longKey = await attempt(() => b.put('k'.repeat(1025), 'x'));
        out.badValue = await attempt(() => b.put('n', 42));
        out.limit = await attempt(() => b.list({ limit: 0 }));
        return Response.json(out);
      }
      case '/upload': {
        // A request body has a known length: R2 takes it as a stream.
        const o = await b.put(q('key'), request.body, { httpMetadata: request.headers });
        return Response.json(plain(o));
      }
      case '/list': {
        for (const k of ['a/1', 'a/2', 'a/b/3', 'b/1', 'c']) {
          await b.put(k, k, { customMetadata: { k }, httpMetadata: { contentType: 'text/plain' } });
        }
        const keys = (r) => ({
          keys: r.objects.map((o) => o.key),
          prefixes: r.delimitedPrefixes,
          truncated: r.truncated,
          cursor: typeof r.cursor,
        });
        out.all = keys(await b.list());
        out.prefix = keys(await b.list({ prefix: 'a/' }));
        out.delimiter = keys(await b.list({ delimiter: '/' }));
        out.both = keys(await b.list({ prefix: 'a/', delimiter: '/' }));
        out.startAfter = keys(await b.list({ startAfter: 'a/b/3' }));
        const pages = async (options) => {
          const seen = [];
          let cursor;
          for (let i = 0; i < 10; i++) {
            const r = await b.list({ ...options, cursor });
            seen.push(keys(r));
            if (!r.truncated) break;
            cursor = r.cursor;
          }
          return seen;
        };
        out.paged = await pages({ limit: 2 });
        out.pagedDelimited = await pages({ limit: 1, delimiter: '/' });
        const plainList = (await b.list({ prefix: 'c' })).objects[0];
        out.withoutInclude = { http: plainList.httpMetadata, custom: plainList.customMetadata };
        const included = (await b.list({ prefix: 'c', include: ['httpMetadata', 'customMetadata'] })).objects[0];
        out.withInclude = { http: included.httpMetadata, custom: included.customMetadata };
        await b.delete('a/1');
        await b.delete(['a/2', 'b/1', 'never-there']);
        out.afterDelete = keys(await b.list());
        out.deletedGet = await b.get('a/1');
        return Response.json(out);
      }
      case '/put':
        return Response.json(plain(await b.put(q('key'), q('value'), { customMetadata: { v: q('value') } })));
      case '/get': {
        const o = await b.get(q('key'));
        return Response.json(o && { text: await o.text(), custom: o.customMetadata, etag: o.etag });
      }
    }
    return new Response('not here', { status: 404 });
  },
};
"#;

fn setup(tag: &str) -> (common::TempDir, std::path::PathBuf) {
    worker_dir(
        tag,
        &[
            ("app/wrangler.toml", WRANGLER),
            ("app/src/index.js", WORKER),
        ],
        "/ = worker:app/wrangler.toml\n",
    )
}

fn json_of(server: &common::Server, path: &str) -> Value {
    let response = server.get(path, &[]);
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{path}: {e}: {}", response.text()))
}

/// md5("hello world"), R2's etag for it.
const HELLO_ETAG: &str = "5eb63bbbe01eeed093cb22bb8f5acdc3";

/// `object` without what changes between runs (version, upload time),
/// which are checked for their form.
fn stable(object: &Value) -> Value {
    let mut object = object.clone();
    let map = object.as_object_mut().expect("an object");
    let version = map.remove("version").expect("a version");
    assert!(
        version
            .as_str()
            .is_some_and(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())),
        "{version}"
    );
    let uploaded = map.remove("uploaded").expect("an upload time");
    assert!(
        uploaded
            .as_str()
            .is_some_and(|t| t.len() == 24 && t.ends_with('Z')),
        "{uploaded}"
    );
    object
}

#[test]
fn r2_objects_have_r2s_shape() {
    let (_dir, config) = setup("workers-r2-shapes");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/shapes");
    let object = json!({
        "key": "docs/a.txt",
        "size": 11,
        "etag": HELLO_ETAG,
        "httpEtag": format!("\"{HELLO_ETAG}\""),
        "checksums": { "md5": HELLO_ETAG },
        "httpMetadata": {
            "contentType": "text/plain",
            "cacheControl": "max-age=60",
            "cacheExpiry": "2030-01-01T00:00:00.000Z",
        },
        "customMetadata": { "owner": "ann" },
        "storageClass": "Standard",
    });
    assert_eq!(stable(&out["put"]), object);
    assert_eq!(
        out["putClass"],
        json!(["undefined", false, "undefined", "function"])
    );
    assert_eq!(out["uploadedIsDate"], true);
    assert_eq!(out["md5Bytes"], 16);
    let mut with_range = object.clone();
    with_range["range"] = json!({ "offset": 0, "length": 11 });
    assert_eq!(stable(&out["get"]), with_range);
    assert_eq!(out["get"]["version"], out["put"]["version"]);
    assert_eq!(
        out["getClass"],
        json!([true, "function", "function", "function", "function"])
    );
    // workerd's own properties, in its order (which JSON.stringify keeps).
    assert_eq!(
        out["order"],
        json!([
            "ssecKeyMd5",
            "storageClass",
            "range",
            "customMetadata",
            "httpMetadata",
            "uploaded",
            "checksums",
            "httpEtag",
            "etag",
            "size",
            "version",
            "key"
        ])
    );
    assert_eq!(out["text"], "hello world");
    assert_eq!(out["bodyUsed"], true);
    assert_eq!(
        out["again"],
        "TypeError: Body has already been used. It can only be used once. Use tee() first if you need to read it twice."
    );
    assert_eq!(out["stream"], "hello world");
    assert_eq!(stable(&out["head"]), with_range);
    assert_eq!(out["missing"], Value::Null);
    assert_eq!(out["headMissing"], Value::Null);
    assert_eq!(
        out["headers"],
        json!([
            ["cache-control", "max-age=60"],
            ["content-type", "text/plain"],
            ["expires", "Tue, 01 Jan 2030 00:00:00 GMT"],
        ])
    );
    assert_eq!(out["json"], json!({ "a": 1 }));
    assert_eq!(out["bytes"], json!([0, 1, 2, 255]));
    assert_eq!(out["blob"], 2);
    assert_eq!(out["empty"], 0);
}

#[test]
fn r2_ranges() {
    let (_dir, config) = setup("workers-r2-ranges");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/ranges");
    let part = |text: &str, offset: u64, length: u64| json!({ "text": text, "range": { "offset": offset, "length": length }, "size": 11 });
    assert_eq!(out["offset"], part("world", 6, 5));
    assert_eq!(out["offsetOnly"], part("world", 6, 5));
    assert_eq!(out["lengthOnly"], part("hello", 0, 5));
    assert_eq!(out["suffix"], part("world", 6, 5));
    assert_eq!(out["clamped"], part("ld", 9, 2));
    assert_eq!(out["header"], part("hello", 0, 5));
    assert_eq!(out["whole"], json!({ "offset": 0, "length": 11 }));
    assert_eq!(
        out["outside"],
        "Error: get: The requested range is not satisfiable (10039)"
    );
    assert_eq!(
        out["zero"],
        "Error: get: The requested range is not satisfiable (10039)"
    );
}

#[test]
fn r2_conditional_operations() {
    let (_dir, config) = setup("workers-r2-conditions");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/conditions");
    assert_eq!(out["match"], "v1");
    assert_eq!(out["matchFails"], "no body (c)");
    assert_eq!(out["noneMatch"], "no body (c)");
    assert_eq!(out["noneMatchOther"], "v1");
    assert_eq!(out["headerNoneMatch"], "no body (c)");
    assert_eq!(out["headerMatch"], "v1");
    assert_eq!(out["before"], "no body (c)");
    assert_eq!(out["after"], "v1");
    assert_eq!(out["putFails"], Value::Null);
    assert_eq!(out["kept"], "v1");
    assert_eq!(out["putHolds"], true);
    assert_eq!(out["replaced"], "v3");
    assert_eq!(out["putNew"], true);
}

#[test]
fn r2_errors_read_as_r2_errors() {
    let (_dir, config) = setup("workers-r2-errors");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/errors");
    assert_eq!(
        out["unknownLength"],
        "TypeError: Provided readable stream must have a known length (request/response body or readable half of FixedLengthStream)"
    );
    assert_eq!(out["fixedLength"], 3);
    assert_eq!(
        out["md5"],
        "Error: put: The MD5 checksum you specified did not match what we received.\nYou provided a MD5 checksum with value: 00000000000000000000000000000000\nActual MD5 was: 9dd4e461268c8034f5c8564e155c67a6 (10037)"
    );
    assert_eq!(out["md5Right"], HELLO_ETAG);
    assert_eq!(
        out["metadata"],
        "Error: put: Your metadata headers exceed the maximum allowed metadata size. (10012)"
    );
    assert_eq!(
        out["longKey"],
        "Error: put: The specified object name is not valid. (10020)"
    );
    assert_eq!(
        out["badValue"],
        "TypeError: Failed to execute 'put' on 'R2Bucket': parameter 2 is not of type 'ReadableStream or ArrayBuffer or ArrayBufferView or string or Blob'."
    );
    assert_eq!(
        out["limit"],
        "Error: list: MaxKeys params must be positive integer <= 1000. (10022)"
    );
}

#[test]
fn r2_request_bodies_are_streams_of_known_length() {
    let (_dir, config) = setup("workers-r2-upload");
    let server = ServerBuilder::new(&config).start();
    let body = vec![7u8; 100_000];
    let response = server.client().request(
        "PUT",
        "/upload?key=up/load.bin",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let object: Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(object["size"], 100_000);
    assert_eq!(
        object["httpMetadata"],
        json!({ "contentType": "application/octet-stream" })
    );
}

#[test]
fn r2_list_prefix_delimiter_cursor_and_delete() {
    let (_dir, config) = setup("workers-r2-list");
    let server = ServerBuilder::new(&config).start();
    let out = json_of(&server, "/list");
    let page = |keys: &[&str], prefixes: &[&str], truncated: bool| {
        json!({
            "keys": keys,
            "prefixes": prefixes,
            "truncated": truncated,
            "cursor": if truncated { "string" } else { "undefined" },
        })
    };
    assert_eq!(
        out["all"],
        page(&["a/1", "a/2", "a/b/3", "b/1", "c"], &[], false)
    );
    assert_eq!(out["prefix"], page(&["a/1", "a/2", "a/b/3"], &[], false));
    assert_eq!(out["delimiter"], page(&["c"], &["a/", "b/"], false));
    assert_eq!(out["both"], page(&["a/1", "a/2"], &["a/b/"], false));
    assert_eq!(out["startAfter"], page(&["b/1", "c"], &[], false));
    assert_eq!(
        out["paged"],
        json!([
            page(&["a/1", "a/2"], &[], true),
            page(&["a/b/3", "b/1"], &[], true),
            page(&["c"], &[], false),
        ])
    );
    assert_eq!(
        out["pagedDelimited"],
        json!([
            page(&[], &["a/"], true),
            page(&[], &["b/"], true),
            page(&["c"], &[], false),
        ])
    );
    assert_eq!(out["withoutInclude"], json!({ "http": {}, "custom": {} }));
    assert_eq!(
        out["withInclude"],
        json!({ "http": { "contentType": "text/plain" }, "custom": { "k": "c" } })
    );
    assert_eq!(out["afterDelete"], page(&["a/b/3", "c"], &[], false));
    assert_eq!(out["deletedGet"], Value::Null);
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn r2_keys_cannot_leave_the_bucket_directory() {
    let (dir, config) = setup("workers-r2-escape");
    let server = ServerBuilder::new(&config).start();
    let keys = [
        "../escape",
        "../../../../../../tmp/flexilib-r2-escape",
        "/etc/passwd-copy",
        "a/../../../x",
        "..",
        ".",
        "..\\windows",
        "nul\u{0}byte",
    ];
    for key in keys {
        let encoded: String = key
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let put = json_of(&server, &format!("/put?key={encoded}&value=v"));
        assert_eq!(put["key"], key);
        let got = json_of(&server, &format!("/get?key={encoded}"));
        assert_eq!(got["text"], "v", "{key}");
    }
    // Everything written is inside the bucket's directory.
    let files = files_under(dir.path());
    for file in &files {
        assert!(
            file.starts_with("app/.wrangler/state/r2/files/")
                || ["proxy.ini", "app/wrangler.toml", "app/src/index.js"].contains(&file.as_str()),
            "{file} is outside the bucket: {files:#?}"
        );
    }
    let blobs = files
        .iter()
        .filter(|f| f.starts_with("app/.wrangler/state/r2/files/blobs/"))
        .count();
    assert_eq!(blobs, keys.len(), "{files:#?}");
    assert!(!std::path::Path::new("/tmp/flexilib-r2-escape").exists());
}

#[test]
fn r2_data_survives_a_restart() {
    let (_dir, config) = setup("workers-r2-restart");
    let server = ServerBuilder::new(&config).start();
    let put = json_of(&server, "/put?key=kept/file.txt&value=across");
    assert_eq!(put["size"], 6);
    let (status, _, stderr) = server.terminate();
    assert!(status.success(), "{status:?}: {:#?}", stderr.snapshot());
    let server = ServerBuilder::new(&config).start();
    assert_eq!(
        json_of(&server, "/get?key=kept/file.txt"),
        json!({ "text": "across", "custom": { "v": "across" }, "etag": put["etag"] })
    );
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("r2_buckets")),
        "no 'not emulated' warning: {:#?}",
        server.stderr.snapshot()
    );
}
