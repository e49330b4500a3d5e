//! What is checked of a library file before `dlopen`: that it is a 64-bit
//! little-endian ELF file (from its first bytes, before anything is copied)
//! and that it is complete (from its headers, after it is copied).
//!
//! Only the headers are read, never the whole file.

/// Bytes of an ELF64 file header.
pub const HEADER_BYTES: usize = 64;
/// Bytes of one ELF64 program header.
const PROGRAM_HEADER_BYTES: u64 = 56;
/// Program header type of a loadable segment.
const PT_LOAD: u32 = 1;

/// Why a file cannot be loaded as a library.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfProblem {
    /// The file does not start with the ELF magic number.
    #[error("not an ELF file")]
    NotElf,
    /// ELF, but not for this machine's word size and byte order.
    #[error("not a 64-bit little-endian ELF file")]
    WrongClass,
    /// Shorter than the headers it starts with.
    #[error("file too short ({size} bytes)")]
    TooShort {
        /// The file's size.
        size: u64,
    },
    /// The headers are not those of any linker's output.
    #[error("malformed ELF headers: {0}")]
    Malformed(&'static str),
    /// Something the headers describe lies past the end of the file (a file
    /// still being written).
    #[error("incomplete ({size} bytes): the {what} ends at byte {end}")]
    Incomplete {
        /// What is cut off: a table or a segment.
        what: &'static str,
        /// Where it ends.
        end: u64,
        /// The file's size.
        size: u64,
    },
}

/// Checks the first bytes of a file: the ELF magic number, 64-bit,
/// little-endian.
pub fn check_header(first: &[u8]) -> Result<(), ElfProblem> {
    if first.get(..4) != Some(&b"\x7fELF"[..]) {
        return Err(ElfProblem::NotElf);
    }
    if first.get(4) != Some(&2) || first.get(5) != Some(&1) {
        return Err(ElfProblem::WrongClass);
    }
    Ok(())
}

/// Checks that a file of `size` bytes holds every loadable segment and the
/// section header table (which linkers write last) its headers describe.
/// `read_at(offset, buffer)` fills `buffer` from the file at `offset`, and
/// fails if the file ends first.
pub fn check_complete(
    size: u64,
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<(), ElfProblem> {
    let too_short = ElfProblem::TooShort { size };
    let mut header = [0u8; HEADER_BYTES];
    if size < HEADER_BYTES as u64 || read_at(0, &mut header).is_err() {
        return Err(too_short);
    }
    check_header(&header)?;
    let program_headers = u64_at(&header, 0x20);
    let section_headers = u64_at(&header, 0x28);
    let program_header_size = u64::from(u16_at(&header, 0x36));
    let program_header_count = u64::from(u16_at(&header, 0x38));
    let section_header_size = u64::from(u16_at(&header, 0x3A));
    let section_header_count = u64::from(u16_at(&header, 0x3C));
    let sections_end =
        section_headers.saturating_add(section_header_size.saturating_mul(section_header_count));
    if sections_end > size {
        return Err(ElfProblem::Incomplete {
            what: "section header table",
            end: sections_end,
            size,
        });
    }
    if program_header_count == 0 {
        return Ok(());
    }
    if program_header_size != PROGRAM_HEADER_BYTES {
        return Err(ElfProblem::Malformed("program header size"));
    }
    let table_end =
        program_headers.saturating_add(program_header_size.saturating_mul(program_header_count));
    if table_end > size {
        return Err(ElfProblem::Incomplete {
            what: "program header table",
            end: table_end,
            size,
        });
    }
    // At most 65535 headers of 56 bytes: 3.6 MB.
    let mut table = vec![0u8; (program_header_size * program_header_count) as usize];
    read_at(program_headers, &mut table).map_err(|_| too_short)?;
    for entry in table.chunks_exact(PROGRAM_HEADER_BYTES as usize) {
        if u32_at(entry, 0) != PT_LOAD {
            continue;
        }
        let end = u64_at(entry, 8).saturating_add(u64_at(entry, 32));
        if end > size {
            return Err(ElfProblem::Incomplete {
                what: "loadable segment",
                end,
                size,
            });
        }
    }
    Ok(())
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut value = [0u8; 4];
    value.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(value)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut value = [0u8; 8];
    value.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bytes(bytes: &[u8]) -> Result<(), ElfProblem> {
        check_complete(bytes.len() as u64, |offset, buffer| {
            let start = usize::try_from(offset).map_err(std::io::Error::other)?;
            let part = start
                .checked_add(buffer.len())
                .and_then(|end| bytes.get(start..end))
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            buffer.copy_from_slice(part);
            Ok(())
        })
    }

    #[test]
    fn truncated_libraries_are_refused() {
        let whole = std::fs::read(std::env::current_exe().expect("test binary")).expect("read");
        assert_eq!(check_bytes(&whole), Ok(()));
        for cut in [10, 100, whole.len() / 3, whole.len() - 1] {
            assert!(check_bytes(&whole[..cut]).is_err(), "cut at {cut} accepted");
        }
        assert_eq!(
            check_bytes(&whole[..10]),
            Err(ElfProblem::TooShort { size: 10 })
        );
        assert_eq!(
            check_bytes(b"#!/bin/sh\n"),
            Err(ElfProblem::TooShort { size: 10 })
        );
    }

    #[test]
    fn headers_are_checked_from_the_first_bytes() {
        assert_eq!(check_header(b"#!/bin/sh\n"), Err(ElfProblem::NotElf));
        assert_eq!(check_header(b""), Err(ElfProblem::NotElf));
        assert_eq!(
            check_header(b"\x7fELF\x01\x01"),
            Err(ElfProblem::WrongClass)
        );
        assert_eq!(
            check_header(b"\x7fELF\x02\x02"),
            Err(ElfProblem::WrongClass)
        );
        assert_eq!(check_header(b"\x7fELF\x02\x01"), Ok(()));
    }
}
