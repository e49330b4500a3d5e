//! `Content-Type` by file extension: the types a web site serves, in a
//! `match` (compiled to code: no table of pointers for the loader to
//! relocate at every start, which `mime_guess`'s 1,300-entry table cost in
//! resident memory: +92 KB of relocations, see `docs/PERFORMANCE.md`).
//! Text types say `charset=utf-8`; an unknown extension is
//! `application/octet-stream`.

use std::path::Path;

/// The type of the file `name`.
pub fn of(name: &Path) -> &'static str {
    let Some(extension) = name.extension().and_then(|e| e.to_str()) else {
        return "application/octet-stream";
    };
    if extension.len() > 12 {
        return "application/octet-stream";
    }
    let mut lower = [0u8; 12];
    for (to, from) in lower.iter_mut().zip(extension.bytes()) {
        *to = from.to_ascii_lowercase();
    }
    match &lower[..extension.len()] {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" | b"cjs" => "text/javascript; charset=utf-8",
        b"json" | b"map" => "application/json",
        b"jsonld" => "application/ld+json",
        b"webmanifest" => "application/manifest+json",
        b"txt" | b"text" | b"log" => "text/plain; charset=utf-8",
        b"md" | b"markdown" => "text/markdown; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"xml" => "application/xml",
        b"xhtml" => "application/xhtml+xml",
        b"rss" => "application/rss+xml",
        b"atom" => "application/atom+xml",
        b"svg" | b"svgz" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" | b"jpe" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"avif" => "image/avif",
        b"ico" => "image/x-icon",
        b"bmp" => "image/bmp",
        b"tif" | b"tiff" => "image/tiff",
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        b"ttf" => "font/ttf",
        b"otf" => "font/otf",
        b"eot" => "application/vnd.ms-fontobject",
        b"wasm" => "application/wasm",
        b"pdf" => "application/pdf",
        b"zip" => "application/zip",
        b"gz" | b"tgz" => "application/gzip",
        b"br" => "application/x-brotli",
        b"zst" => "application/zstd",
        b"tar" => "application/x-tar",
        b"mp4" | b"m4v" => "video/mp4",
        b"webm" => "video/webm",
        b"ogv" => "video/ogg",
        b"mp3" => "audio/mpeg",
        b"ogg" | b"oga" => "audio/ogg",
        b"wav" => "audio/wav",
        b"m4a" => "audio/mp4",
        b"flac" => "audio/flac",
        b"vtt" => "text/vtt; charset=utf-8",
        b"ics" => "text/calendar; charset=utf-8",
        b"yaml" | b"yml" => "application/yaml",
        b"toml" => "application/toml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension() {
        assert_eq!(of(Path::new("a/index.html")), "text/html; charset=utf-8");
        assert_eq!(of(Path::new("INDEX.HTM")), "text/html; charset=utf-8");
        assert_eq!(of(Path::new("app.js")), "text/javascript; charset=utf-8");
        assert_eq!(of(Path::new("logo.png")), "image/png");
        assert_eq!(of(Path::new("font.woff2")), "font/woff2");
        assert_eq!(
            of(Path::new("site.webmanifest")),
            "application/manifest+json"
        );
        assert_eq!(of(Path::new("blob")), "application/octet-stream");
        assert_eq!(
            of(Path::new("x.averylongextension")),
            "application/octet-stream"
        );
        assert_eq!(of(Path::new(".hidden")), "application/octet-stream");
    }
}
