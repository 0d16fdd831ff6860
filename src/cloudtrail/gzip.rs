//! The one place that decompresses gzip. Every CloudTrail file is gzip; some are
//! concatenations of several gzip members, and a hostile one could expand without bound.
//! Decoding goes through here, with a cap, and never through a raw flate2 decoder (clippy.toml
//! forbids them elsewhere).

use std::io::Read;

/// Why a gzip body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GunzipError {
    #[error("not valid gzip: {0}")]
    Corrupt(#[source] std::io::Error),
    #[error("expands to more than {cap} bytes, the limit for one file")]
    TooLarge { cap: u64 },
}

/// A reader of the decompressed bytes of every gzip member in `compressed`, which fails
/// (rather than stopping short) once the output passes `cap` bytes.
#[allow(clippy::disallowed_types)]
pub fn reader<R: Read>(compressed: R, cap: u64) -> impl Read {
    Capped {
        inner: flate2::read::MultiGzDecoder::new(compressed),
        left: cap,
        cap,
    }
}

struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Ask for one byte more than allowed, so that reaching the cap exactly is not an error.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(GunzipError::TooLarge {
                cap: self.cap,
            }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Decompresses every gzip member of `compressed`, refusing output beyond `cap` bytes.
#[allow(clippy::disallowed_types)]
pub fn gunzip(compressed: &[u8], cap: u64) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(GunzipError::Corrupt)?;
    if out.len() as u64 > cap {
        return Err(GunzipError::TooLarge { cap });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_every_member() {
        let mut two = gz(b"{\"Records\":[");
        two.extend(gz(b"]}"));
        assert_eq!(gunzip(&two, 1024).unwrap(), b"{\"Records\":[]}");
    }

    #[test]
    fn refuses_more_than_the_cap() {
        let bomb = gz(&vec![0u8; 10_000]);
        assert!(matches!(
            gunzip(&bomb, 9_999),
            Err(GunzipError::TooLarge { cap: 9_999 })
        ));
        assert_eq!(gunzip(&bomb, 10_000).unwrap().len(), 10_000);
    }

    #[test]
    fn the_reader_fails_past_the_cap_instead_of_stopping_short() {
        let bomb = gz(&vec![b'x'; 10_000]);
        let mut out = Vec::new();
        let err = reader(&bomb[..], 9_999).read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("more than 9999 bytes"), "{err}");
        out.clear();
        reader(&bomb[..], 10_000).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn refuses_corrupt_input() {
        let mut bad = gz(b"hello hello hello");
        let n = bad.len();
        bad[n - 6] ^= 0xff; // the CRC32
        assert!(matches!(gunzip(&bad, 1024), Err(GunzipError::Corrupt(_))));
        assert!(matches!(
            gunzip(b"plain text", 1024),
            Err(GunzipError::Corrupt(_))
        ));
    }
}
