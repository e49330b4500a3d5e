//! The three encoders behind one interface, each writing into a `Vec` that
//! [`Encoder::take`] empties: gzip (`flate2`, level 5), brotli (quality 4,
//! as servers use it on the fly) and zstd (level 3, its default).

use std::io::{self, Write as _};

use super::negotiate::Coding;

/// A compressor for one response body.
pub enum Encoder {
    /// `gzip`.
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    /// `br` (boxed: its state is large).
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    /// `zstd`.
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// A fresh encoder for `coding`.
    pub fn new(coding: Coding) -> io::Result<Self> {
        Ok(match coding {
            Coding::Gzip => Self::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(5),
            )),
            Coding::Brotli => Self::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                16 * 1024,
                4,
                22,
            ))),
            Coding::Zstd => Self::Zstd(zstd::stream::write::Encoder::new(Vec::new(), 3)?),
        })
    }

    /// Compresses `data` (output may stay inside until more comes).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Gzip(encoder) => encoder.write_all(data),
            Self::Brotli(encoder) => encoder.write_all(data),
            Self::Zstd(encoder) => encoder.write_all(data),
        }
    }

    /// Pushes out everything written so far, decodable as it is (a client
    /// reading a stream sees what the target has sent).
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Gzip(encoder) => encoder.flush(),
            Self::Brotli(encoder) => encoder.flush(),
            Self::Zstd(encoder) => encoder.flush(),
        }
    }

    /// The compressed bytes produced so far.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            Self::Gzip(encoder) => encoder.get_mut(),
            Self::Brotli(encoder) => encoder.get_mut(),
            Self::Zstd(encoder) => encoder.get_mut(),
        })
    }

    /// Ends the stream: the last bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Self::Gzip(encoder) => encoder.finish(),
            Self::Brotli(encoder) => Ok(encoder.into_inner()),
            Self::Zstd(encoder) => encoder.finish(),
        }
    }
}
