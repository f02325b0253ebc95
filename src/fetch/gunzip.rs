//! Gzip bodies, inflated whole once they have arrived.
//!
//! Why not the HTTP client's streaming decoder: a page arrives whole before
//! it is read anyway, and inflating a whole buffer into one of the right
//! size is about a third of the instructions of inflating it 4 KiB at a
//! time (libdeflate, which only works on whole buffers, against zlib-rs
//! behind the stream; 50 of the benchmark's pages, 3.4 times less CPU).
//! On the harness's first cycle inflating had been 7 % of the CPU.
//!
//! The gzip trailer gives the size to expect (its last four bytes, the
//! size modulo 2^32 of the last member). A body that libdeflate cannot take
//! as exactly one member of exactly that size (several members, a size
//! that wrapped or lies, bytes after the member, bad data) is inflated
//! again by flate2's streaming multi-member decoder under the same cap,
//! which also words the error when the data is bad. So the fast path never
//! decides anything the slow one would decide otherwise.

use std::io::Read;

/// Why a gzip body gave no page.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum GunzipError {
    /// Inflated, it is larger than the cap.
    TooLarge,
    /// It is not valid gzip data.
    Corrupt(String),
}

/// `gz` inflated: the body of a response sent with `Content-Encoding: gzip`,
/// refused if it inflates to more than `limit` bytes.
pub(super) fn gunzip(gz: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    if let Some(body) = one_member(gz, limit)? {
        return Ok(body);
    }
    let mut body = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| GunzipError::Corrupt(e.to_string()))?;
    if body.len() > limit {
        return Err(GunzipError::TooLarge);
    }
    Ok(body)
}

/// The first `max` bytes that `gz` inflates to, or as many as it holds
/// before it ends or breaks off: for robots.txt, of which only a prefix is
/// read, and which may arrive cut off at a compressed prefix. An error only
/// when nothing at all can be inflated.
pub(super) fn gunzip_prefix(gz: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut decoder = flate2::read::MultiGzDecoder::new(gz).take(max as u64);
    let mut body = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match decoder.read(&mut buffer) {
            Ok(0) => return Ok(body),
            Ok(n) => body.extend_from_slice(&buffer[..n]),
            Err(e) if body.is_empty() => return Err(e.to_string()),
            Err(_) => return Ok(body),
        }
    }
}

/// `gz` inflated by libdeflate when it is exactly one gzip member whose
/// trailer's size is right and within `limit`; `None` for anything else.
fn one_member(gz: &[u8], limit: usize) -> Result<Option<Vec<u8>>, GunzipError> {
    use libdeflate_sys::*;
    let Some(trailer) = gz.len().checked_sub(4).and_then(|at| gz.get(at..)) else {
        return Ok(None);
    };
    let size = u32::from_le_bytes(trailer.try_into().expect("four bytes")) as usize;
    if size > limit {
        // Only the last member's size, and modulo 2^32: the streaming
        // decoder, under the cap, says whether the body really is too large.
        return Ok(None);
    }
    let mut body = vec![0u8; size];
    let (mut read, mut written) = (0usize, 0usize);
    // SAFETY: the decompressor is allocated, checked for null, used only
    // here and freed once. libdeflate reads at most `gz.len()` bytes from
    // `gz` and writes at most `body.len()` bytes into `body`, both live and
    // not otherwise borrowed during the call, and writes the two counts
    // through pointers to these locals.
    let result = unsafe {
        let decompressor = libdeflate_alloc_decompressor();
        if decompressor.is_null() {
            return Ok(None);
        }
        let result = libdeflate_gzip_decompress_ex(
            decompressor,
            gz.as_ptr().cast(),
            gz.len(),
            body.as_mut_ptr().cast(),
            body.len(),
            &raw mut read,
            &raw mut written,
        );
        libdeflate_free_decompressor(decompressor);
        result
    };
    let whole =
        result == libdeflate_result_LIBDEFLATE_SUCCESS && read == gz.len() && written == size;
    Ok(whole.then_some(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        encoder.write_all(data).expect("in memory");
        encoder.finish().expect("in memory")
    }

    fn page(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("<p>Paragraph {i} of the page.</p>\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn one_member_is_inflated_by_the_fast_path() {
        let body = page(500);
        let gz = gzip(&body);
        assert_eq!(one_member(&gz, 1 << 20), Ok(Some(body.clone())));
        assert_eq!(gunzip(&gz, 1 << 20), Ok(body));
    }

    #[test]
    fn several_members_are_inflated_whole() {
        // Two identical members: the trailer's size and checksum are those
        // of the first alone, so only the input count shows the second.
        let body = page(50);
        let gz = [gzip(&body), gzip(&body)].concat();
        assert_eq!(one_member(&gz, 1 << 20), Ok(None));
        assert_eq!(gunzip(&gz, 1 << 20), Ok([&body[..], &body[..]].concat()));
        let gz = [gzip(b"<p>one</p>"), gzip(b""), gzip(b"<p>two</p>")].concat();
        assert_eq!(gunzip(&gz, 1 << 20), Ok(b"<p>one</p><p>two</p>".to_vec()));
    }

    #[test]
    fn the_cap_holds_whatever_the_trailer_says() {
        let body = page(500);
        let gz = gzip(&body);
        assert_eq!(gunzip(&gz, body.len()), Ok(body.clone()));
        assert_eq!(gunzip(&gz, body.len() - 1), Err(GunzipError::TooLarge));
        // A trailer that claims less than the member holds.
        let mut lying = gz.clone();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            gunzip(&lying, 1 << 20),
            Err(GunzipError::Corrupt(_))
        ));
        assert!(matches!(
            gunzip(&lying, 1_000),
            Err(GunzipError::TooLarge | GunzipError::Corrupt(_))
        ));
    }

    #[test]
    fn a_prefix_is_read_even_from_cut_off_data() {
        let body = page(2_000);
        let gz = gzip(&body);
        assert_eq!(gunzip_prefix(&gz, 100).unwrap(), &body[..100]);
        assert_eq!(gunzip_prefix(&gz, usize::MAX).unwrap(), body);
        let cut = gunzip_prefix(&gz[..gz.len() / 2], usize::MAX).unwrap();
        assert!(!cut.is_empty() && body.starts_with(&cut), "{}", cut.len());
        assert!(gunzip_prefix(b"not gzip", 100).is_err());
    }

    #[test]
    fn bad_data_is_an_error_that_says_so() {
        let gz = gzip(&page(100));
        for broken in [
            &gz[..gz.len() / 2],
            &gz[..3],
            b"not gzip at all".as_slice(),
            &[gz.as_slice(), b"trailing bytes"].concat(),
        ] {
            match gunzip(broken, 1 << 20) {
                Err(GunzipError::Corrupt(detail)) => assert!(!detail.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        let mut flipped = gz.clone();
        flipped[gz.len() / 2] ^= 0x55;
        assert!(gunzip(&flipped, 1 << 20).is_err());
    }
}
