//! The request body a target reads, and the chunked decoder.
//!
//! A body that arrived with its head (most small requests) is handed over
//! whole. Otherwise the connection reads it as the target asks for it: the
//! target's [`RequestBody`] and the connection's [`BodyFeed`] share one
//! slot, and the connection reads the next piece from the socket only when
//! the slot is empty and the target is waiting (so `Expect: 100-continue`
//! is answered only if the target reads the body at all).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::HeaderMap;

use crate::respond::BodyError;

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most bytes of trailer fields accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// A request body.
pub struct RequestBody {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Bytes),
    Streamed { shared: Arc<Shared>, hint: SizeHint },
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
    error: Option<String>,
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
            streamed @ Kind::Streamed { .. } => {
                self.kind = streamed;
                Err(self)
            }
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
            Kind::Full(bytes) => {
                let bytes = std::mem::take(bytes);
                this.kind = Kind::Empty;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Kind::Streamed { shared, hint } => {
                let mut slot = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
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
        matches!(self.kind, Kind::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Streamed { hint, .. } => *hint,
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let Kind::Streamed { shared, .. } = &self.kind {
            let mut slot = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
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
        let mut slot = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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
    pub fn fail(&self, why: &str) {
        self.update(|slot| {
            slot.done = true;
            slot.error = Some(why.to_string());
        });
    }

    fn update(&self, change: impl FnOnce(&mut Slot)) {
        let mut slot = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut slot);
        if let Some(reader) = slot.reader.take() {
            reader.wake();
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyFramingError {
    /// A malformed chunk size line, chunk end or trailer.
    #[error("malformed chunked body: {0}")]
    Malformed(&'static str),
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
    /// Chunked, in this state.
    Chunked(ChunkState),
    /// Finished.
    Done,
}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
}

impl Decoder {
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
                Self::Chunked(state) => match *state {
                    ChunkState::Size => {
                        let Some(line_end) = find_crlf(buf, MAX_CHUNK_LINE)? else {
                            return Ok(Decoded::NeedMore);
                        };
                        let size = chunk_size(&buf[..line_end])?;
                        buf.advance(line_end + 2);
                        *state = if size == 0 {
                            ChunkState::Trailers
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    ChunkState::Data(left) => {
                        if buf.is_empty() {
                            return Ok(Decoded::NeedMore);
                        }
                        let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                        let left = left - take as u64;
                        *state = if left == 0 {
                            ChunkState::DataEnd
                        } else {
                            ChunkState::Data(left)
                        };
                        return Ok(Decoded::Data(buf.split_to(take).freeze()));
                    }
                    ChunkState::DataEnd => {
                        if buf.len() < 2 {
                            return Ok(Decoded::NeedMore);
                        }
                        if &buf[..2] != b"\r\n" {
                            return Err(BodyFramingError::Malformed("chunk not followed by CRLF"));
                        }
                        buf.advance(2);
                        *state = ChunkState::Size;
                    }
                    ChunkState::Trailers => {
                        let Some(end) = find_blank_line(buf)? else {
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

fn find_crlf(buf: &[u8], limit: usize) -> Result<Option<usize>, BodyFramingError> {
    match buf.windows(2).position(|pair| pair == b"\r\n") {
        Some(at) => Ok(Some(at)),
        None if buf.len() > limit => Err(BodyFramingError::Malformed("chunk size line too long")),
        None => Ok(None),
    }
}

/// The end of the trailer section (after its empty line), if it is all here.
fn find_blank_line(buf: &[u8]) -> Result<Option<usize>, BodyFramingError> {
    if buf.starts_with(b"\r\n") {
        return Ok(Some(2));
    }
    match buf.windows(4).position(|quad| quad == b"\r\n\r\n") {
        Some(at) => Ok(Some(at + 4)),
        None if buf.len() > MAX_TRAILERS => Err(BodyFramingError::Malformed("trailers too long")),
        None => Ok(None),
    }
}

fn chunk_size(line: &[u8]) -> Result<u64, BodyFramingError> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(BodyFramingError::Malformed("invalid chunk size"));
    }
    digits.iter().try_fold(0u64, |acc, &digit| {
        let value = (digit as char)
            .to_digit(16)
            .ok_or(BodyFramingError::Malformed("invalid chunk size"))?;
        Ok(acc * 16 + u64::from(value))
    })
}

fn parse_trailers(block: &Bytes) -> Result<Option<HeaderMap>, BodyFramingError> {
    let mut trailers = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
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

    fn decode_all(decoder: &mut Decoder, input: &[u8]) -> (Vec<u8>, Option<HeaderMap>, bool) {
        let mut buf = BytesMut::from(input);
        let mut data = Vec::new();
        let mut trailers = None;
        loop {
            match decoder.decode(&mut buf).unwrap() {
                Decoded::Data(bytes) => data.extend_from_slice(&bytes),
                Decoded::Trailers(map) => trailers = Some(map),
                Decoded::End => return (data, trailers, true),
                Decoded::NeedMore => return (data, trailers, false),
            }
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let mut decoder = Decoder::Chunked(ChunkState::Size);
        let (data, trailers, done) = decode_all(
            &mut decoder,
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Error: boom\r\n\r\n",
        );
        assert_eq!(data, b"hello world");
        assert!(done);
        assert_eq!(trailers.unwrap().get("x-error").unwrap(), "boom");
    }

    #[test]
    fn chunked_in_pieces_and_errors() {
        let mut decoder = Decoder::Chunked(ChunkState::Size);
        let (data, _, done) = decode_all(&mut decoder, b"a\r\n01234");
        assert_eq!(data, b"01234");
        assert!(!done);
        let (data, _, done) = decode_all(&mut decoder, b"56789\r\n0\r\n\r\n");
        assert_eq!(data, b"56789");
        assert!(done);
        let mut bad = Decoder::Chunked(ChunkState::Size);
        assert!(bad.decode(&mut BytesMut::from(&b"zz\r\n"[..])).is_err());
        let mut bad = Decoder::Chunked(ChunkState::Size);
        let mut buf = BytesMut::from(&b"1\r\naXX"[..]);
        assert_eq!(
            bad.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"a"))
        );
        assert!(bad.decode(&mut buf).is_err());
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
