//! Cloudflare Workers emulation, the Web API surface: a probe script's
//! answers compared with real workerd's (recorded in
//! `tests/workers/probe.workerd.json` from `@cloudflare/workerd-linux-64`,
//! compatibility date 2024-09-01), body round trips (string, JSON,
//! binary, urlencoded and multipart forms), the defaults and header lines
//! the client sees, and crypto against published vectors.

mod common;

use common::{worker_dir, workspace, ServerBuilder};

fn probe_server() -> (common::TempDir, common::Server) {
    let probe = std::fs::read_to_string(workspace().join("crates/flexilib/tests/workers/probe.js"))
        .expect("probe fixture");
    let (dir, config) = worker_dir(
        "workers-api",
        &[("probe.js", &probe)],
        "/ = worker:probe.js\n",
    );
    let server = ServerBuilder::new(&config).start();
    (dir, server)
}

/// Minimal JSON canonicalisation (the probe's output and the recording
/// are both `JSON.stringify` output; compare them as parsed values).
fn normalize(json: &str) -> String {
    // Re-serialize through a tiny tokenizer: drop insignificant whitespace.
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_probe_answers_exactly_as_workerd_does() {
    let (_dir, server) = probe_server();
    let response = server.get(
        "/probe?q=1",
        &[("accept", "*/*"), ("user-agent", "curl/7.88.1")],
    );
    assert_eq!(response.status, 200);
    let recorded = std::fs::read_to_string(
        workspace().join("crates/flexilib/tests/workers/probe.workerd.json"),
    )
    .expect("recording");
    let ours = normalize(&response.text());
    let theirs = normalize(&recorded);
    if ours != theirs {
        // Name the first differing entry for a readable failure.
        let ours_parts: Vec<&str> = ours.split(",\"").collect();
        let theirs_parts: Vec<&str> = theirs.split(",\"").collect();
        let first = ours_parts
            .iter()
            .zip(&theirs_parts)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("ours: {a}\nworkerd: {b}"))
            .unwrap_or_else(|| "lengths differ".into());
        panic!("the probe differs from workerd's answers:\n{first}");
    }
}

#[test]
fn bodies_round_trip_with_workerd_s_defaults() {
    let (_dir, server) = probe_server();
    let mut client = server.client();

    let json = client.request(
        "POST",
        "/roundtrip",
        &[("content-type", "application/json")],
        "{\"a\":[1,\"é\"]}".as_bytes(),
    );
    assert_eq!(json.text(), "{\"got\":{\"a\":[1,\"é\"]}}");
    assert_eq!(json.header("content-type"), Some("application/json"));

    let text = client.request(
        "POST",
        "/roundtrip",
        &[("content-type", "text/plain")],
        "héllo".as_bytes(),
    );
    assert_eq!(text.text(), "héllo");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(text.header("content-length"), Some("6"));

    // Every byte value survives, and a binary body gets no content type.
    let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let binary = client.request(
        "POST",
        "/roundtrip",
        &[("content-type", "application/octet-stream")],
        &bytes,
    );
    assert_eq!(binary.body, bytes);
    assert_eq!(binary.header("content-type"), None, "{:?}", binary.headers);

    let form = client.request(
        "POST",
        "/roundtrip",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"a=1&b=%20x",
    );
    assert_eq!(form.text(), r#"[["a","1"],["b"," x"]]"#);

    // multipart with a binary file, as curl -F sends it.
    let mut multipart = Vec::new();
    multipart.extend_from_slice(
        b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--BOUNDARY\r\nContent-Disposition: form-data; name=\"f\"; filename=\"true\"\r\nContent-Type: application/x-thing\r\n\r\n",
    );
    let file: Vec<u8> = [0x7f, b'E', b'L', b'F']
        .into_iter()
        .chain((0..1000u32).map(|i| (i % 251) as u8))
        .collect();
    multipart.extend_from_slice(&file);
    multipart.extend_from_slice(b"\r\n--BOUNDARY--\r\n");
    let parts = client.request(
        "POST",
        "/roundtrip",
        &[("content-type", "multipart/form-data; boundary=BOUNDARY")],
        &multipart,
    );
    assert_eq!(
        parts.text(),
        format!(
            r#"[["a","1"],["f",["true","application/x-thing",{},[127,69,76,70]]]]"#,
            file.len()
        )
    );
}

#[test]
fn headers_go_out_as_the_worker_set_them() {
    let (_dir, server) = probe_server();
    let two = server.get("/two", &[]);
    let values = |name: &str| -> Vec<&str> {
        two.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    // Headers.append twice: two header lines; Set-Cookie never folded.
    assert_eq!(values("x-a"), ["1", "2"]);
    assert_eq!(values("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(values("content-type"), ["text/plain;charset=UTF-8"]);

    let empty = server.get("/204", &[]);
    assert_eq!(empty.status, 204);
    assert_eq!(empty.header("content-type"), None);
}

const CRYPTO: &str = r#"
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
const bytes = (s) => new TextEncoder().encode(s);
export default {
  async fetch() {
    const out = {};
    for (const alg of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) {
      out['digest ' + alg] = hex(await crypto.subtle.digest(alg, bytes('abc')));
      const key = await crypto.subtle.importKey('raw', bytes('Jefe'), { name: 'HMAC', hash: { name: alg } }, true, ['sign', 'verify']);
      const mac = await crypto.subtle.sign('HMAC', key, bytes('what do ya want for nothing?'));
      out['hmac ' + alg] = hex(mac);
      out['verify ' + alg] = await crypto.subtle.verify('HMAC', key, mac, bytes('what do ya want for nothing?'));
      out['verify tampered ' + alg] = await crypto.subtle.verify('HMAC', key, mac, bytes('what do ya want for nothing!'));
      out['export ' + alg] = hex(await crypto.subtle.exportKey('raw', key));
    }
    const a = crypto.getRandomValues(new Uint8Array(32));
    const b = crypto.getRandomValues(new Uint32Array(8));
    out.random = a.length === 32 && b.length === 8 && hex(a) !== hex(crypto.getRandomValues(new Uint8Array(32)));
    const uuids = new Set(Array.from({ length: 100 }, () => crypto.randomUUID()));
    out.uuids = uuids.size === 100 && [...uuids].every((u) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u));
    return Response.json(out);
  },
};
"#;

#[test]
fn crypto_matches_published_vectors() {
    let (_dir, config) = worker_dir("workers-crypto", &[("c.js", CRYPTO)], "/ = worker:c.js\n");
    let server = ServerBuilder::new(&config).start();
    let text = server.get("/", &[]).text();
    let expect = [
        // FIPS 180-2 "abc".
        ("digest SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("digest SHA-256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("digest SHA-384", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        ("digest SHA-512", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        // RFC 2202 / RFC 4231 test case 2.
        ("hmac SHA-1", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        ("hmac SHA-256", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ("hmac SHA-384", "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
        ("hmac SHA-512", "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        ("export SHA-256", "4a656665"),
    ];
    for (name, value) in expect {
        assert!(
            text.contains(&format!("\"{name}\":\"{value}\"")),
            "{name} should be {value}: {text}"
        );
    }
    for alg in ["SHA-1", "SHA-256", "SHA-384", "SHA-512"] {
        assert!(text.contains(&format!("\"verify {alg}\":true")), "{text}");
        assert!(
            text.contains(&format!("\"verify tampered {alg}\":false")),
            "{text}"
        );
    }
    assert!(text.contains("\"random\":true"), "{text}");
    assert!(text.contains("\"uuids\":true"), "{text}");
}
