//! The request body a target reads, and the chunked decoder.
//!
//! A body that arrived with its head (most small requests) is handed over
//! whole. Otherwise the connection reads it as the target asks for it: the
//! target's [`RequestBody`] and the connection's [`BodyFeed`] share one
//! slot, and the connection reads the next piece from the socket only when
//! the slot is empty and the target is waiting (so `Expect: 100-continue`
//! is answered only if the target reads the body at all).

use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::HeaderMap;

use crate::respond::BodyError;

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most bytes of chunk extensions in one body (hyper's limit too): a body
/// of tiny chunks with long extensions would otherwise make the server
/// read far more than it passes on.
const MAX_EXTENSION_BYTES: usize = 16 * 1024;
/// Most bytes of trailer fields accepted.
const MAX_TRAILERS: usize = 16 * 1024;
/// Most trailer fields accepted.
const MAX_TRAILER_FIELDS: usize = 100;

/// A request body.
pub struct RequestBody {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Bytes),
    Streamed {
        shared: Arc<Shared>,
        hint: SizeHint,
    },
    /// Read by another protocol's connection (an HTTP/2 stream's body).
    Foreign(Pin<Box<dyn Body<Data = Bytes, Error = BodyError> + Send + Sync>>),
}

/// The slot between the connection and the target.
#[derive(Default)]
struct Shared {
    state: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    frame: Option<Frame<Bytes>>,
    /// The connection delivered the last frame (or failed: `error`).
    done: bool,
    error: Option<BodyReadError>,
    /// The target is waiting for a frame.
    wanted: bool,
    /// The target dropped its body.
    dropped: bool,
    reader: Option<Waker>,
    feeder: Option<Waker>,
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    /// A body that is all here.
    pub fn full(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            return Self::empty();
        }
        Self {
            kind: Kind::Full(bytes),
        }
    }

    /// The whole body if it is all here (no await needed); otherwise the
    /// body back.
    pub fn into_whole(mut self) -> Result<Bytes, Self> {
        match std::mem::replace(&mut self.kind, Kind::Empty) {
            Kind::Empty => Ok(Bytes::new()),
            Kind::Full(bytes) => Ok(bytes),
            other @ (Kind::Streamed { .. } | Kind::Foreign(_)) => {
                self.kind = other;
                Err(self)
            }
        }
    }

    /// A body another protocol's connection reads (an HTTP/2 stream's).
    pub fn from_body(
        body: impl Body<Data = Bytes, Error = BodyError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind: Kind::Foreign(Box::pin(body)),
        }
    }

    /// A body the connection will feed; `length` if known.
    pub fn streamed(length: Option<u64>) -> (Self, BodyFeed) {
        let shared = Arc::new(Shared::default());
        let hint = length.map_or_else(SizeHint::default, SizeHint::with_exact);
        (
            Self {
                kind: Kind::Streamed {
                    shared: Arc::clone(&shared),
                    hint,
                },
            },
            BodyFeed { shared },
        )
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Foreign(body) => body.as_mut().poll_frame(cx),
            Kind::Full(bytes) => {
                let bytes = std::mem::take(bytes);
                this.kind = Kind::Empty;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Kind::Streamed { shared, hint } => {
                let mut slot = shared.state.lock();
                if let Some(frame) = slot.frame.take() {
                    if let Some(data) = frame.data_ref() {
                        let left = hint.lower().saturating_sub(data.len() as u64);
                        if hint.exact().is_some() {
                            hint.set_exact(left);
                        }
                    }
                    if let Some(feeder) = slot.feeder.take() {
                        feeder.wake();
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(error) = &slot.error {
                    return Poll::Ready(Some(Err(error.clone().into())));
                }
                if slot.done {
                    return Poll::Ready(None);
                }
                slot.wanted = true;
                slot.reader = Some(cx.waker().clone());
                if let Some(feeder) = slot.feeder.take() {
                    feeder.wake();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Foreign(body) => body.is_end_stream(),
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Foreign(body) => body.size_hint(),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Streamed { hint, .. } => *hint,
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let Kind::Streamed { shared, .. } = &self.kind {
            let mut slot = shared.state.lock();
            slot.dropped = true;
            if let Some(feeder) = slot.feeder.take() {
                feeder.wake();
            }
        }
    }
}

/// The connection's end of a streamed body.
pub struct BodyFeed {
    shared: Arc<Shared>,
}

/// What the target wants from the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Demand {
    /// The next frame.
    Frame,
    /// Nothing more: it dropped the body.
    Gone,
}

impl BodyFeed {
    /// Ready when the target waits for a frame and the slot is empty, or
    /// when the target dropped the body.
    pub fn poll_demand(&self, cx: &mut Context<'_>) -> Poll<Demand> {
        let mut slot = self.shared.state.lock();
        if slot.dropped {
            return Poll::Ready(Demand::Gone);
        }
        if slot.wanted && slot.frame.is_none() {
            return Poll::Ready(Demand::Frame);
        }
        slot.feeder = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Hands over a frame (the target asked for one).
    pub fn send(&self, frame: Frame<Bytes>) {
        self.update(|slot| {
            slot.frame = Some(frame);
            slot.wanted = false;
        });
    }

    /// The body is complete.
    pub fn finish(&self) {
        self.update(|slot| slot.done = true);
    }

    /// The body cannot be read to its end.
    pub fn fail(&self, why: BodyReadError) {
        self.update(|slot| {
            slot.done = true;
            slot.error = Some(why);
        });
    }

    fn update(&self, change: impl FnOnce(&mut Slot)) {
        let mut slot = self.shared.state.lock();
        change(&mut slot);
        if let Some(reader) = slot.reader.take() {
            reader.wake();
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyFramingError {
    /// A malformed chunk-size line, chunk end or trailer section.
    #[error("malformed chunked body: {0}")]
    Malformed(&'static str),
    /// More chunk-extension bytes than [`MAX_EXTENSION_BYTES`] in one body,
    /// a chunk-size line over [`MAX_CHUNK_LINE`], or trailers over
    /// [`MAX_TRAILERS`] bytes or [`MAX_TRAILER_FIELDS`] fields.
    #[error("chunked body over a limit: {0}")]
    OverLimit(&'static str),
}

/// Why a streamed request body could not be read to its end: the error a
/// target's `poll_frame` returns (boxed as a [`BodyError`]; a target can
/// downcast it to tell the client's fault from its own).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyReadError {
    /// The bytes are not a valid body.
    #[error(transparent)]
    Framing(#[from] BodyFramingError),
    /// The client closed the connection before the body ended.
    #[error("the client closed the connection before the body ended")]
    Closed,
    /// Reading the socket failed.
    #[error("reading the request body failed: {0}")]
    Io(std::io::ErrorKind),
}

/// What the decoder found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields (the body is complete after them).
    Trailers(HeaderMap),
    /// The end of the body.
    End,
    /// More bytes are needed.
    NeedMore,
}

/// Decodes a body delimited by length or by chunks, taking bytes from the
/// front of the connection's read buffer.
#[derive(Debug)]
pub enum Decoder {
    /// This many bytes are left.
    Length(u64),
    /// Chunked (RFC 9112 §7.1), in this state.
    Chunked(Chunked),
    /// Finished.
    Done,
}

/// A chunked decoder's state and what it counts across the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    /// Chunk-extension bytes seen so far in this body.
    extension_bytes: usize,
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
}

/// A complete chunk-size line at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
struct SizeLine {
    size: u64,
    /// Bytes of the line, CRLF included.
    len: usize,
    /// Bytes of its extensions (from the first `;` to the CR).
    extension: usize,
}

impl Decoder {
    /// A decoder for a chunked body.
    pub fn chunked() -> Self {
        Self::Chunked(Chunked {
            state: ChunkState::Size,
            extension_bytes: 0,
        })
    }

    /// The next piece of the body from `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyFramingError> {
        loop {
            match self {
                Self::Done => return Ok(Decoded::End),
                Self::Length(0) => {
                    *self = Self::Done;
                    return Ok(Decoded::End);
                }
                Self::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= take as u64;
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                Self::Chunked(chunked) => match chunked.state {
                    ChunkState::Size => {
                        let Some(line) = size_line(buf)? else {
                            return Ok(Decoded::NeedMore);
                        };
                        chunked.extension_bytes += line.extension;
                        if chunked.extension_bytes > MAX_EXTENSION_BYTES {
                            return Err(BodyFramingError::OverLimit("chunk extensions"));
                        }
                        buf.advance(line.len);
                        chunked.state = if line.size == 0 {
                            ChunkState::Trailers
                        } else {
                            ChunkState::Data(line.size)
                        };
                    }
                    ChunkState::Data(left) => {
                        if buf.is_empty() {
                            return Ok(Decoded::NeedMore);
                        }
                        let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                        let left = left - take as u64;
                        chunked.state = if left == 0 {
                            ChunkState::DataEnd
                        } else {
                            ChunkState::Data(left)
                        };
                        return Ok(Decoded::Data(buf.split_to(take).freeze()));
                    }
                    ChunkState::DataEnd => {
                        match buf.first() {
                            None => return Ok(Decoded::NeedMore),
                            Some(b'\r') => {}
                            Some(_) => {
                                return Err(BodyFramingError::Malformed(
                                    "chunk data not followed by CRLF",
                                ))
                            }
                        }
                        match buf.get(1) {
                            None => return Ok(Decoded::NeedMore),
                            Some(b'\n') => {}
                            Some(_) => {
                                return Err(BodyFramingError::Malformed(
                                    "chunk data not followed by CRLF",
                                ))
                            }
                        }
                        buf.advance(2);
                        chunked.state = ChunkState::Size;
                    }
                    ChunkState::Trailers => {
                        let Some(end) = trailer_section(buf)? else {
                            return Ok(Decoded::NeedMore);
                        };
                        let block = buf.split_to(end).freeze();
                        *self = Self::Done;
                        return match parse_trailers(&block)? {
                            Some(trailers) => Ok(Decoded::Trailers(trailers)),
                            None => Ok(Decoded::End),
                        };
                    }
                },
            }
        }
    }

    /// True once the body was read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done | Self::Length(0))
    }
}

/// The value of a hexadecimal digit.
fn hex_value(byte: u8) -> Option<u64> {
    (byte as char).to_digit(16).map(u64::from)
}

/// Parses the chunk-size line at the front of `buf` (RFC 9112 §7.1):
/// `1*HEXDIG [ BWS ";" chunk-ext ] CRLF`. `Ok(None)`: incomplete.
///
/// Refused: anything before the digits (whitespace, a sign, `0x`), white
/// space after them that does not lead to an extension, a line ending
/// other than CRLF, and in an extension any control character but HTAB
/// (NUL, a bare CR or LF, DEL), since a peer that ends the line at a bare
/// LF would read the bytes after it as data. A size that does not fit in
/// 64 bits is refused too.
fn size_line(buf: &[u8]) -> Result<Option<SizeLine>, BodyFramingError> {
    let incomplete = || {
        if buf.len() > MAX_CHUNK_LINE {
            Err(BodyFramingError::OverLimit("chunk-size line"))
        } else {
            Ok(None)
        }
    };
    let mut size: u64 = 0;
    let mut at = 0;
    while let Some(digit) = buf.get(at).copied().and_then(hex_value) {
        size = size
            .checked_mul(16)
            .and_then(|size| size.checked_add(digit))
            .ok_or(BodyFramingError::OverLimit("chunk size"))?;
        at += 1;
    }
    if at == 0 {
        return match buf.first() {
            None => Ok(None),
            Some(_) => Err(BodyFramingError::Malformed("no chunk size")),
        };
    }
    let digits_end = at;
    while matches!(buf.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    let extension_start = at;
    match buf.get(at) {
        None => return incomplete(),
        Some(b';') => {
            at += 1;
            loop {
                match buf.get(at) {
                    None => return incomplete(),
                    Some(b'\r') => break,
                    Some(b'\n') => {
                        return Err(BodyFramingError::Malformed("bare LF in a chunk extension"))
                    }
                    Some(&byte) if (byte < 0x20 && byte != b'\t') || byte == 0x7f => {
                        return Err(BodyFramingError::Malformed(
                            "control character in a chunk extension",
                        ))
                    }
                    Some(_) => at += 1,
                }
                if at > MAX_CHUNK_LINE {
                    return Err(BodyFramingError::OverLimit("chunk-size line"));
                }
            }
        }
        Some(b'\r') if at == digits_end => {}
        Some(b'\r') => {
            return Err(BodyFramingError::Malformed(
                "white space after the chunk size",
            ))
        }
        Some(_) => return Err(BodyFramingError::Malformed("invalid chunk size")),
    }
    // `buf[at]` is the CR.
    match buf.get(at + 1) {
        None => incomplete(),
        Some(b'\n') => Ok(Some(SizeLine {
            size,
            len: at + 2,
            extension: at - extension_start,
        })),
        Some(_) => Err(BodyFramingError::Malformed("bare CR in a chunk-size line")),
    }
}

/// The length of the trailer section at the front of `buf` (through its
/// empty line), if it is all here. Every line must end in CRLF.
fn trailer_section(buf: &[u8]) -> Result<Option<usize>, BodyFramingError> {
    let mut at = 0;
    let mut fields = 0;
    loop {
        let rest = &buf[at..];
        let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            return if buf.len() > MAX_TRAILERS {
                Err(BodyFramingError::OverLimit("trailer section"))
            } else {
                Ok(None)
            };
        };
        if rest[end] == b'\n' {
            return Err(BodyFramingError::Malformed(
                "bare LF in the trailer section",
            ));
        }
        match rest.get(end + 1) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => {
                return Err(BodyFramingError::Malformed(
                    "bare CR in the trailer section",
                ))
            }
        }
        at += end + 2;
        if end == 0 {
            return Ok(Some(at));
        }
        fields += 1;
        if fields > MAX_TRAILER_FIELDS {
            return Err(BodyFramingError::OverLimit("trailer fields"));
        }
        if at > MAX_TRAILERS {
            return Err(BodyFramingError::OverLimit("trailer section"));
        }
    }
}

/// The fields of a trailer section found by [`trailer_section`].
fn parse_trailers(block: &Bytes) -> Result<Option<HeaderMap>, BodyFramingError> {
    let mut trailers = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(BodyFramingError::Malformed("folded trailer line"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(BodyFramingError::Malformed("trailer without a colon"))?;
        let name = HeaderName::from_bytes(&line[..colon])
            .map_err(|_| BodyFramingError::Malformed("invalid trailer name"))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| BodyFramingError::Malformed("invalid trailer value"))?;
        trailers.append(name, value);
    }
    Ok((!trailers.is_empty()).then_some(trailers))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What decoding a whole input gave.
    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        /// The body ended: its data, and its trailers if any.
        Complete(Vec<u8>, Option<HeaderMap>),
        /// The input ended before the body did.
        Incomplete(Vec<u8>),
        /// Refused.
        Refused(BodyFramingError),
    }

    /// Decodes `input` given at once, and again given one byte at a time:
    /// both must agree.
    fn decode(input: &[u8]) -> Outcome {
        let whole = decode_in_pieces(input, input.len().max(1));
        let bytewise = decode_in_pieces(input, 1);
        assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(input));
        whole
    }

    fn decode_in_pieces(input: &[u8], piece: usize) -> Outcome {
        let mut decoder = Decoder::chunked();
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut pieces = input.chunks(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(bytes)) => data.extend_from_slice(&bytes),
                Ok(Decoded::Trailers(trailers)) => return Outcome::Complete(data, Some(trailers)),
                Ok(Decoded::End) => return Outcome::Complete(data, None),
                Ok(Decoded::NeedMore) => match pieces.next() {
                    Some(next) => buf.extend_from_slice(next),
                    None => return Outcome::Incomplete(data),
                },
                Err(error) => return Outcome::Refused(error),
            }
        }
    }

    fn refused(input: &[u8]) -> bool {
        matches!(decode(input), Outcome::Refused(_))
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let Outcome::Complete(data, Some(trailers)) =
            decode(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Error: boom\r\n\r\n")
        else {
            panic!("not complete with trailers");
        };
        assert_eq!(data, b"hello world");
        assert_eq!(trailers.get("x-error").unwrap(), "boom");
    }

    #[test]
    fn chunked_in_pieces_and_errors() {
        let mut decoder = Decoder::chunked();
        let mut buf = BytesMut::from(&b"a\r\n01234"[..]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"01234"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::NeedMore);
        buf.extend_from_slice(b"56789\r\n0\r\n\r\nNEXT");
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"56789"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::End);
        assert!(decoder.is_done());
        // What follows the body stays for the next request.
        assert_eq!(&buf[..], b"NEXT");
        assert!(refused(b"zz\r\n"));
        assert!(refused(b"1\r\naXX"));
    }

    /// Sizes and extensions that are accepted.
    #[test]
    fn valid_chunk_size_lines() {
        let size = |line: &str| size_line(line.as_bytes()).unwrap().unwrap().size;
        assert_eq!(size("1\r\n"), 1);
        assert_eq!(size("01\r\n"), 1);
        assert_eq!(size("0\r\n"), 0);
        assert_eq!(size("00\r\n"), 0);
        assert_eq!(size("A\r\n"), 10);
        assert_eq!(size("a\r\n"), 10);
        assert_eq!(size("Ff\r\n"), 255);
        assert_eq!(size("0000000000000000000001\r\n"), 1);
        assert_eq!(size("ffffffffffffffff\r\n"), u64::MAX);
        // Extensions, however odd, do not change the size.
        assert_eq!(size("1;extension\r\n"), 1);
        assert_eq!(size("a;ext name=value\r\n"), 10);
        assert_eq!(size("1;extension;extension2\r\n"), 1);
        assert_eq!(size("1;;;  ;\r\n"), 1);
        assert_eq!(size("2; extension...\r\n"), 2);
        assert_eq!(size("2;a=\"quoted; \\\" value\"\r\n"), 2);
        assert_eq!(size("2;tab\there\r\n"), 2);
        // RFC 9112 allows white space (BWS) before the `;` of an extension.
        assert_eq!(size("3   ; extension=123\r\n"), 3);
        assert_eq!(size("3\t;\r\n"), 3);
        assert_eq!(size("3   ;   \r\n"), 3);
        let line = size_line(b"3 ;ab\r\nrest").unwrap().unwrap();
        assert_eq!((line.len, line.extension), (7, 3));
    }

    /// The negative cases of hyper's chunked decoder tests (`proto/h1/decode.rs`),
    /// and the cases it accepts that are refused here: every one is a 400.
    #[test]
    fn malformed_chunk_size_lines_are_refused() {
        for bad in [
            // A bare CR (the line does not end in CRLF).
            &b"F\rF"[..],
            b"5\r\r\nhello\r\n0\r\n\r\n",
            // No digit.
            b"\r\n\r\n",
            b"\r\n",
            b";ext\r\n",
            // Not a hexadecimal digit, or a sign or prefix.
            b"X\r\n",
            b"1X\r\n",
            b"-\r\n",
            b"-1\r\n",
            b"+1\r\n",
            b"0x5\r\n",
            // White space before or after the size (not before a `;`).
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"\t5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\t\r\nhello\r\n0\r\n\r\n",
            b"Ff   \r\n",
            // Text after white space that is not an extension.
            b"1 invalid extension\r\n",
            b"1 A\r\n",
            // A bare LF ends no line.
            b"5\nhello\r\n0\r\n\r\n",
            b"1;reject\nnewlines\r\n",
            // Controls in an extension: NUL, bare CR, DEL, others.
            b"5;a\0b\r\nhello\r\n0\r\n\r\n",
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            b"5;a\x7fb\r\nhello\r\n0\r\n\r\n",
            b"5;a\x1bb\r\nhello\r\n0\r\n\r\n",
            b"0;a\rb\r\n\r\n",
            // A size that overflows 64 bits.
            b"f0000000000000003\r\n",
            b"10000000000000000\r\n",
        ] {
            assert!(refused(bad), "accepted {:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn chunk_ends_and_missing_last_chunk_are_refused() {
        for bad in [
            // After a valid chunk, the last chunk's zero is missing.
            &b"1\r\nZ\r\n\r\n\r\n"[..],
            // Chunk data longer than its size, or not ending in CRLF.
            b"1\r\nab\r\n0\r\n\r\n",
            b"1\r\na\n0\r\n\r\n",
            b"1\r\na\r0\r\n\r\n",
        ] {
            assert!(refused(bad), "accepted {:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_body_cut_short_is_incomplete_not_refused() {
        assert_eq!(
            decode(b"9\r\nfoo bar"),
            Outcome::Incomplete(b"foo bar".to_vec())
        );
        assert_eq!(decode(b"1;no CRLF"), Outcome::Incomplete(Vec::new()));
        assert_eq!(decode(b"1\r\na\r"), Outcome::Incomplete(b"a".to_vec()));
        assert_eq!(decode(b"0\r\nX: 1\r\n"), Outcome::Incomplete(Vec::new()));
    }

    #[test]
    fn chunk_extensions_are_capped_per_body() {
        // Each line is fine on its own; together they pass the cap.
        let per_line = MAX_EXTENSION_BYTES * 2 / 3;
        let mut body = Vec::new();
        for _ in 0..2 {
            body.extend_from_slice(b"1;");
            body.extend(std::iter::repeat_n(b'x', per_line.min(MAX_CHUNK_LINE - 8)));
            body.extend_from_slice(b"\r\nA\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        // Lines are capped too, so more lines are needed to pass the body cap.
        let lines = MAX_EXTENSION_BYTES / (MAX_CHUNK_LINE - 8) + 1;
        let mut over = Vec::new();
        for _ in 0..lines {
            over.extend_from_slice(b"1;");
            over.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE - 8));
            over.extend_from_slice(b"\r\nA\r\n");
        }
        over.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(
            decode(&over),
            Outcome::Refused(BodyFramingError::OverLimit("chunk extensions"))
        );
        // One line longer than the line cap.
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE + 1));
        long.extend_from_slice(b"\r\nA\r\n0\r\n\r\n");
        assert_eq!(
            decode(&long),
            Outcome::Refused(BodyFramingError::OverLimit("chunk-size line"))
        );
        // Below the caps, accepted.
        assert!(matches!(decode(&body), Outcome::Complete(..)));
    }

    #[test]
    fn malformed_trailers_are_refused() {
        for bad in [
            // A trailer line whose CR is not followed by LF.
            &b"10\r\n1234567890abcdef\r\n0\r\nbad\r\r\n"[..],
            // Bare LF line ends.
            b"0\r\nX-A: 1\nX-B: 2\r\n\r\n",
            b"0\r\nX-A: 1\r\n\n",
            // A field without a colon, a bad name, folding, a control.
            b"0\r\nno colon\r\n\r\n",
            b"0\r\nX A: 1\r\n\r\n",
            b"0\r\nX-A : 1\r\n\r\n",
            b"0\r\nX-A: 1\r\n folded\r\n\r\n",
            b"0\r\nX-A: a\0b\r\n\r\n",
        ] {
            assert!(refused(bad), "accepted {:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn trailers_are_capped_in_count_and_size() {
        let with_fields = |count: usize, value_len: usize| {
            let mut body = b"10\r\n1234567890abcdef\r\n0\r\n".to_vec();
            for i in 0..count {
                body.extend_from_slice(format!("t{i}: {}\r\n", "x".repeat(value_len)).as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body
        };
        let Outcome::Complete(_, Some(trailers)) = decode(&with_fields(MAX_TRAILER_FIELDS, 1))
        else {
            panic!("trailers at the limit refused");
        };
        assert_eq!(trailers.len(), MAX_TRAILER_FIELDS);
        assert_eq!(
            decode(&with_fields(MAX_TRAILER_FIELDS + 1, 1)),
            Outcome::Refused(BodyFramingError::OverLimit("trailer fields"))
        );
        assert_eq!(
            decode(&with_fields(1, MAX_TRAILERS)),
            Outcome::Refused(BodyFramingError::OverLimit("trailer section"))
        );
        assert_eq!(
            decode(&with_fields(
                MAX_TRAILER_FIELDS,
                MAX_TRAILERS / MAX_TRAILER_FIELDS
            )),
            Outcome::Refused(BodyFramingError::OverLimit("trailer section"))
        );
    }

    #[test]
    fn length_delimited() {
        let mut decoder = Decoder::Length(4);
        let mut buf = BytesMut::from(&b"abcdefg"[..]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"abcd"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::End);
        assert_eq!(&buf[..], b"efg");
    }
}
