//! HTTP ↔ Lambda, as a Function URL (API Gateway HTTP API, payload format
//! 2.0) does it: the request becomes an event, the function's result
//! becomes the response.

use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use hyper::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE,
    TRANSFER_ENCODING, USER_AGENT,
};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Response, StatusCode, Version};
use serde_json::{Map, Value};

use super::ids;
use crate::respond::ReplyBody;

/// The account id events carry (AWS's documentation example).
pub const ACCOUNT_ID: &str = "123456789012";

/// Why a function's result cannot be an HTTP response (a Function URL
/// answers 502).
#[derive(Debug, thiserror::Error)]
pub enum MalformedResult {
    /// Not JSON at all.
    #[error("the result is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// `statusCode` is not a valid status.
    #[error("invalid statusCode {0}")]
    Status(String),
    /// A header name or value HTTP does not allow.
    #[error("invalid header {0:?}")]
    Header(String),
    /// `isBase64Encoded` is true but `body` is not base64.
    #[error("body is not valid base64")]
    Base64,
    /// The streaming prelude is not a JSON object.
    #[error("invalid streaming prelude: {0}")]
    Prelude(String),
    /// More header fields than a response may carry.
    #[error("more than {MAX_RESULT_FIELDS} header fields")]
    TooManyFields,
}

/// Most header fields (cookies included) a result may set. API Gateway
/// and Function URLs cap a response head at a few KiB; past this bound a
/// result is malformed (502), not a head the server would choke on.
pub const MAX_RESULT_FIELDS: usize = 1000;

/// Appends one field, within [`MAX_RESULT_FIELDS`].
pub(crate) fn append(
    headers: &mut HeaderMap,
    name: HeaderName,
    value: HeaderValue,
) -> Result<(), MalformedResult> {
    if headers.len() >= MAX_RESULT_FIELDS {
        return Err(MalformedResult::TooManyFields);
    }
    headers
        .try_append(name, value)
        .map(drop)
        .map_err(|_| MalformedResult::TooManyFields)
}

/// The payload 2.0 event for a request, written directly as JSON (building
/// a `serde_json::Value` first cost more than the rest of an invocation's
/// bookkeeping in the server).
pub fn request_event(
    parts: &Parts,
    body: &[u8],
    peer_ip: &str,
    secure: bool,
    now: SystemTime,
) -> Vec<u8> {
    let route = RouteContext {
        route_key: "$default",
        raw_path: parts.uri.path(),
        stage: "$default",
        path_parameters: &[],
        secure,
    };
    routed_request_event(parts, body, peer_ip, now, &route)
}

/// What an API Gateway route adds to a payload 2.0 event (a Function URL
/// has `$default` and no parameters).
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    /// `routeKey` (`GET /items/{id}`, `$default`).
    pub route_key: &'a str,
    /// `rawPath` and `requestContext.http.path`.
    pub raw_path: &'a str,
    /// `requestContext.stage`.
    pub stage: &'a str,
    /// `pathParameters` (absent when empty).
    pub path_parameters: &'a [(String, String)],
    /// The client came over TLS: `x-forwarded-proto: https`.
    pub secure: bool,
}

/// [`request_event`] for a request an API route took.
pub fn routed_request_event(
    parts: &Parts,
    body: &[u8],
    peer_ip: &str,
    now: SystemTime,
    route: &RouteContext<'_>,
) -> Vec<u8> {
    let uri = &parts.uri;
    let headers = &parts.headers;
    let raw_query = uri.query().unwrap_or_default();
    let mut out = Vec::with_capacity(1024 + body.len() + body.len() / 3);
    out.extend_from_slice(br#"{"version":"2.0","routeKey":"#);
    push_str(&mut out, route.route_key);
    out.extend_from_slice(br#","rawPath":"#);
    push_str(&mut out, route.raw_path);
    out.extend_from_slice(br#","rawQueryString":"#);
    push_str(&mut out, raw_query);

    // Cookies: every `Cookie` header, split.
    let mut cookies = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .filter(|cookie| !cookie.is_empty())
        .peekable();
    if cookies.peek().is_some() {
        out.extend_from_slice(br#","cookies":["#);
        for (i, cookie) in cookies.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(&mut out, &String::from_utf8_lossy(cookie));
        }
        out.push(b']');
    }

    // Headers: lower-case names, repeated values joined by commas; the
    // forwarding headers a Function URL adds.
    out.extend_from_slice(br#","headers":{"#);
    let mut forwarded_for = None;
    let mut traced = false;
    for name in headers.keys() {
        if name == COOKIE || name == "x-forwarded-proto" {
            continue;
        }
        let joined = joined_values(headers, name);
        if name == "x-forwarded-for" {
            forwarded_for = Some(joined);
            continue;
        }
        traced |= name == "x-amzn-trace-id";
        push_str(&mut out, name.as_str());
        out.push(b':');
        push_str(&mut out, &joined);
        out.push(b',');
    }
    out.extend_from_slice(br#""x-forwarded-for":"#);
    match forwarded_for {
        Some(earlier) => push_str(&mut out, &format!("{earlier}, {peer_ip}")),
        None => push_str(&mut out, peer_ip),
    }
    out.extend_from_slice(if route.secure {
        br#","x-forwarded-proto":"https""#.as_slice()
    } else {
        br#","x-forwarded-proto":"http""#.as_slice()
    });
    if !traced {
        out.extend_from_slice(br#","x-amzn-trace-id":"#);
        push_str(&mut out, &ids::trace_id(now));
    }
    out.push(b'}');

    // Query parameters: decoded, repeated keys' values joined by commas.
    let mut query: Vec<(String, String)> = Vec::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (percent_decode(key), percent_decode(value));
        match query.iter_mut().find(|(seen, _)| *seen == key) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => query.push((key, value)),
        }
    }
    if !query.is_empty() {
        out.extend_from_slice(br#","queryStringParameters":{"#);
        for (i, (key, value)) in query.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(&mut out, key);
            out.push(b':');
            push_str(&mut out, value);
        }
        out.push(b'}');
    }

    if !route.path_parameters.is_empty() {
        out.extend_from_slice(br#","pathParameters":{"#);
        for (i, (key, value)) in route.path_parameters.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(&mut out, key);
            out.push(b':');
            push_str(&mut out, value);
        }
        out.push(b'}');
    }

    let domain = headers
        .get(HOST)
        .map(header_text)
        .unwrap_or_else(|| "localhost".into());
    let domain_prefix = domain.split('.').next().unwrap_or_default();
    out.extend_from_slice(br#","requestContext":{"accountId":""#);
    out.extend_from_slice(ACCOUNT_ID.as_bytes());
    out.extend_from_slice(br#"","apiId":"flexilib","domainName":"#);
    push_str(&mut out, &domain);
    out.extend_from_slice(br#","domainPrefix":"#);
    push_str(&mut out, domain_prefix);
    out.extend_from_slice(br#","requestId":""#);
    out.extend_from_slice(ids::request_id().as_bytes());
    out.extend_from_slice(br#"","routeKey":"#);
    push_str(&mut out, route.route_key);
    out.extend_from_slice(br#","stage":"#);
    push_str(&mut out, route.stage);
    out.extend_from_slice(br#","time":""#);
    out.extend_from_slice(ids::request_time(now).as_bytes());
    out.extend_from_slice(br#"","timeEpoch":"#);
    out.extend_from_slice(
        itoa::Buffer::new()
            .format(ids::epoch_millis(now))
            .as_bytes(),
    );
    out.extend_from_slice(br#","http":{"method":"#);
    push_str(&mut out, parts.method.as_str());
    out.extend_from_slice(br#","path":"#);
    push_str(&mut out, route.raw_path);
    out.extend_from_slice(br#","protocol":""#);
    out.extend_from_slice(protocol(parts.version).as_bytes());
    out.extend_from_slice(br#"","sourceIp":"#);
    push_str(&mut out, peer_ip);
    out.extend_from_slice(br#","userAgent":"#);
    let user_agent = headers.get(USER_AGENT).map(header_text).unwrap_or_default();
    push_str(&mut out, &user_agent);
    out.extend_from_slice(b"}}");

    // The body: text as it is, anything else in base64.
    let text = (!body.is_empty() && is_text(headers.get(CONTENT_TYPE)))
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    if let Some(text) = text {
        out.extend_from_slice(br#","body":"#);
        push_str(&mut out, text);
        out.extend_from_slice(br#","isBase64Encoded":false}"#);
    } else if body.is_empty() {
        out.extend_from_slice(br#","isBase64Encoded":false}"#);
    } else {
        out.extend_from_slice(br#","body":""#);
        let start = out.len();
        out.resize(
            start + base64::encoded_len(body.len(), true).unwrap_or(0),
            0,
        );
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(body, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
        out.extend_from_slice(br#"","isBase64Encoded":true}"#);
    }
    out
}

/// Every value of header `name`, joined by commas.
pub(crate) fn joined_values(headers: &HeaderMap, name: &HeaderName) -> String {
    let mut joined = String::new();
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
    joined
}

/// `text` as a JSON string (quoted and escaped).
pub(crate) fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escaped);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A body is passed as text when its content type is textual (or absent)
/// and it is valid UTF-8; otherwise it is base64-encoded.
pub(crate) fn is_text(content_type: Option<&HeaderValue>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let Ok(content_type) = content_type.to_str() else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
        )
}

pub(crate) fn header_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

pub(crate) fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// `%XX` decoded (invalid escapes kept as they are; invalid UTF-8 replaced).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP response for a function's (buffered) result.
pub fn result_response(payload: &[u8]) -> Result<Response<ReplyBody>, MalformedResult> {
    let value: Value = serde_json::from_slice(payload).map_err(MalformedResult::NotJson)?;
    let object = match value {
        Value::Object(object) if object.contains_key("statusCode") => object,
        // A JSON string is the body itself.
        Value::String(text) => return Ok(json_response(Bytes::from(text))),
        // Any other JSON without a statusCode is the body as returned.
        _ => return Ok(json_response(Bytes::copy_from_slice(payload))),
    };
    let status = status_of(object.get("statusCode"))?;
    let mut headers = HeaderMap::new();
    add_headers(&mut headers, object.get("headers"))?;
    if let Some(Value::Object(multi)) = object.get("multiValueHeaders") {
        for (name, values) in multi {
            let Value::Array(values) = values else {
                continue;
            };
            let name = header_name(name)?;
            if headers.contains_key(&name) || is_framing(&name) {
                continue;
            }
            for value in values {
                let value = header_value(&name, value)?;
                append(&mut headers, name.clone(), value)?;
            }
        }
    }
    add_cookies(&mut headers, object.get("cookies"))?;
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    let body = if object.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map(Bytes::from)
            .map_err(|_| MalformedResult::Base64)?
    } else {
        body
    };
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let mut response = Response::new(ReplyBody::Full(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The head of a streamed HTTP response, from the JSON prelude a function
/// sends before eight NUL bytes (`{statusCode, headers, cookies}`).
pub fn prelude_head(prelude: &[u8]) -> Result<(StatusCode, HeaderMap), MalformedResult> {
    let value: Value = if prelude.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(prelude).map_err(|e| MalformedResult::Prelude(e.to_string()))?
    };
    let Value::Object(object) = value else {
        return Err(MalformedResult::Prelude("not an object".into()));
    };
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => StatusCode::OK,
        code => status_of(code)?,
    };
    let mut headers = HeaderMap::new();
    add_headers(&mut headers, object.get("headers"))?;
    add_cookies(&mut headers, object.get("cookies"))?;
    Ok((status, headers))
}

fn json_response(body: Bytes) -> Response<ReplyBody> {
    let mut response = Response::new(ReplyBody::Full(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn status_of(value: Option<&Value>) -> Result<StatusCode, MalformedResult> {
    let code = match value {
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.parse().ok(),
        _ => None,
    };
    code.and_then(|code| u16::try_from(code).ok())
        // 1xx are interim responses, never a result: sent as the final
        // answer they would break the framing of the connection.
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| MalformedResult::Status(value.map(Value::to_string).unwrap_or_default()))
}

fn add_headers(headers: &mut HeaderMap, value: Option<&Value>) -> Result<(), MalformedResult> {
    let Some(Value::Object(map)) = value else {
        return Ok(());
    };
    for (name, value) in map {
        let name = header_name(name)?;
        if is_framing(&name) {
            continue;
        }
        let value = header_value(&name, value)?;
        append(headers, name, value)?;
    }
    Ok(())
}

fn add_cookies(headers: &mut HeaderMap, value: Option<&Value>) -> Result<(), MalformedResult> {
    let Some(Value::Array(cookies)) = value else {
        return Ok(());
    };
    for cookie in cookies {
        append(headers, SET_COOKIE, header_value(&SET_COOKIE, cookie)?)?;
    }
    Ok(())
}

/// Framing and connection management belong to the server.
pub(crate) fn is_framing(name: &HeaderName) -> bool {
    name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION
}

pub(crate) fn header_name(name: &str) -> Result<HeaderName, MalformedResult> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| MalformedResult::Header(name.into()))
}

pub(crate) fn header_value(
    name: &HeaderName,
    value: &Value,
) -> Result<HeaderValue, MalformedResult> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        _ => return Err(MalformedResult::Header(name.as_str().into())),
    };
    HeaderValue::from_str(&text).map_err(|_| MalformedResult::Header(name.as_str().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use serde_json::json;

    #[test]
    fn json_strings_are_escaped() {
        for text in [
            "plain",
            "q\"uote",
            "back\\slash",
            "tab\tnl\ncr\r",
            "ctl\u{1}\u{1f}",
            "ünï ✓",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, text);
            let back: Result<String, _> = serde_json::from_slice(&out);
            assert_eq!(
                back.ok().as_deref(),
                Some(text),
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
    }
    use hyper::Request;

    fn event_of(request: Request<()>, body: &[u8]) -> Value {
        let (parts, ()) = request.into_parts();
        let event = request_event(&parts, body, "10.1.2.3", false, SystemTime::UNIX_EPOCH);
        serde_json::from_slice(&event).unwrap_or_default()
    }

    async fn body_of(response: Response<ReplyBody>) -> Bytes {
        match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        }
    }

    #[test]
    fn request_to_event() {
        let request = Request::builder()
            .method("POST")
            .uri("/api/x%20y?a=1&b=2&a=3&c=%2F&flag")
            .header("Host", "fn.example.com")
            .header("X-Multi", "one")
            .header("X-Multi", "two")
            .header("Cookie", "s=1; t=2")
            .header("Cookie", "u=3")
            .header("User-Agent", "curl/8")
            .header("Content-Type", "application/json")
            .body(())
            .unwrap_or_default();
        let event = event_of(request, b"{\"k\":1}");
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "$default");
        assert_eq!(event["rawPath"], "/api/x%20y");
        assert_eq!(event["rawQueryString"], "a=1&b=2&a=3&c=%2F&flag");
        assert_eq!(event["cookies"], json!(["s=1", "t=2", "u=3"]));
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert_eq!(event["headers"]["x-forwarded-for"], "10.1.2.3");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(
            event["queryStringParameters"],
            json!({"a": "1,3", "b": "2", "c": "/", "flag": ""})
        );
        assert_eq!(event["body"], "{\"k\":1}");
        assert_eq!(event["isBase64Encoded"], false);
        let context = &event["requestContext"];
        assert_eq!(context["domainName"], "fn.example.com");
        assert_eq!(context["domainPrefix"], "fn");
        assert_eq!(context["stage"], "$default");
        assert_eq!(context["time"], "01/Jan/1970:00:00:00 +0000");
        assert_eq!(context["timeEpoch"], 0);
        assert_eq!(context["http"]["method"], "POST");
        assert_eq!(context["http"]["sourceIp"], "10.1.2.3");
        assert_eq!(context["http"]["userAgent"], "curl/8");
        assert_eq!(context["requestId"].as_str().map(str::len), Some(36));

        let binary = Request::builder()
            .uri("/b")
            .header("Content-Type", "application/octet-stream")
            .body(())
            .unwrap_or_default();
        let event = event_of(binary, &[0, 159, 146, 150]);
        assert_eq!(event["body"], "AJ+Slg==");
        assert_eq!(event["isBase64Encoded"], true);
        assert!(event.get("queryStringParameters").is_none());
        assert!(event.get("cookies").is_none());
    }

    #[tokio::test]
    async fn result_to_response() {
        let response = result_response(
            br#"{"statusCode":201,"headers":{"x-a":"1","content-length":"99"},"cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true}"#,
        );
        let Ok(response) = response else {
            panic!("{response:?}", response = response.err())
        };
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-a"], "1");
        assert!(response.headers().get(CONTENT_LENGTH).is_none());
        let cookies: Vec<_> = response.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(body_of(response).await, "hi");

        let plain = result_response(br#""just text""#).ok();
        let plain = plain.map(|r| (r.status(), r));
        let Some((status, response)) = plain else {
            panic!("plain string")
        };
        assert_eq!(status, 200);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(body_of(response).await, "just text");

        let Ok(object) = result_response(br#"{"answer": 42}"#) else {
            panic!("object")
        };
        assert_eq!(body_of(object).await, r#"{"answer": 42}"#);

        assert!(matches!(
            result_response(b"not json"),
            Err(MalformedResult::NotJson(_))
        ));
        assert!(matches!(
            result_response(br#"{"statusCode":"abc"}"#),
            Err(MalformedResult::Status(_))
        ));
        assert!(matches!(
            result_response(br#"{"statusCode":200,"body":"%%","isBase64Encoded":true}"#),
            Err(MalformedResult::Base64)
        ));
    }

    #[test]
    fn streaming_prelude() {
        let head = prelude_head(br#"{"statusCode":202,"headers":{"x":"y"},"cookies":["c=1"]}"#);
        let Ok((status, headers)) = head else {
            panic!("prelude")
        };
        assert_eq!(status, 202);
        assert_eq!(headers["x"], "y");
        assert_eq!(headers[SET_COOKIE], "c=1");
        assert!(prelude_head(b"[1]").is_err());
        assert!(matches!(prelude_head(b""), Ok((StatusCode::OK, _))));
    }
}
