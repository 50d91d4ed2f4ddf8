//! Framing: a 4-byte little-endian length prefix followed by that many bytes of protobuf.
//!
//! Intel's transport writes the native `uint32_t` (little-endian on x86-64) and allocates whatever the
//! prefix announces; the readers here check the prefix against a caller-given maximum *before*
//! allocating anything (and let an allowed body grow only as its bytes arrive), and tell a clean close before the first byte (`Ok(None)`, e.g. a client's
//! connectivity probe) apart from a close in the middle of a frame (an error).

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::FrameError;

/// Size of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// A sensible default for [`read_frame`]'s maximum: the biggest legitimate request is about 1.7 KB,
/// and a `GetQuoteEx` response carries at most the requested quote buffer plus 960 bytes.
pub const DEFAULT_MAX_FRAME: u32 = 64 * 1024;

/// Prepends the length prefix to `body`.
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len = u32::try_from(body.len()).map_err(|_| FrameError::FrameTooLarge {
        len: body.len() as u64,
        max: u32::MAX,
    })?;
    let mut out = Vec::with_capacity(LEN_PREFIX + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Splits a buffer that holds exactly one frame into its body.
pub fn parse_frame(bytes: &[u8], max: u32) -> Result<&[u8], FrameError> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<LEN_PREFIX>() else {
        return Err(FrameError::TruncatedPrefix { got: bytes.len() });
    };
    let len = check_len(*prefix, max)?;
    let len_usize = len as usize;
    if rest.len() < len_usize {
        return Err(FrameError::TruncatedBody {
            expected: len,
            got: rest.len(),
        });
    }
    let (body, trailing) = rest.split_at(len_usize);
    if !trailing.is_empty() {
        return Err(FrameError::TrailingBytes {
            extra: trailing.len(),
        });
    }
    Ok(body)
}

/// Looks for one whole frame at the start of `bytes`, the first bytes read from a stream: its body
/// if it has fully arrived (bytes after it are left alone, as the stream readers leave them
/// unread), `None` if more bytes are needed. A prefix over `max` is an error as soon as its four
/// bytes are there.
pub fn complete_frame(bytes: &[u8], max: u32) -> Result<Option<&[u8]>, FrameError> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let len = check_len(*prefix, max)? as usize;
    Ok(rest.get(..len))
}

fn check_len(prefix: [u8; LEN_PREFIX], max: u32) -> Result<u32, FrameError> {
    let len = u32::from_le_bytes(prefix);
    if len > max {
        return Err(FrameError::FrameTooLarge {
            len: u64::from(len),
            max,
        });
    }
    Ok(len)
}

/// Reads one frame. `Ok(None)` means the peer closed the stream before sending any byte.
pub fn read_frame<R: Read>(reader: &mut R, max: u32) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let got = read_full(reader, &mut prefix)?;
    if got == 0 {
        return Ok(None);
    }
    if got < LEN_PREFIX {
        return Err(FrameError::TruncatedPrefix { got });
    }
    let len = check_len(prefix, max)?;
    let mut body = Vec::with_capacity(initial_capacity(len));
    reader
        .by_ref()
        .take(u64::from(len))
        .read_to_end(&mut body)?;
    if body.len() < len as usize {
        return Err(FrameError::TruncatedBody {
            expected: len,
            got: body.len(),
        });
    }
    Ok(Some(body))
}

/// Writes one frame (prefix and body in a single buffer).
pub fn write_frame<W: Write>(writer: &mut W, body: &[u8]) -> Result<(), FrameError> {
    let frame = encode_frame(body)?;
    writer.write_all(&frame)?;
    writer.flush()?;
    Ok(())
}

/// Async version of [`read_frame`].
pub async fn read_frame_async<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let got = read_full_async(reader, &mut prefix).await?;
    if got == 0 {
        return Ok(None);
    }
    if got < LEN_PREFIX {
        return Err(FrameError::TruncatedPrefix { got });
    }
    let len = check_len(prefix, max)?;
    let mut body = Vec::with_capacity(initial_capacity(len));
    (&mut *reader)
        .take(u64::from(len))
        .read_to_end(&mut body)
        .await?;
    if body.len() < len as usize {
        return Err(FrameError::TruncatedBody {
            expected: len,
            got: body.len(),
        });
    }
    Ok(Some(body))
}

/// Async version of [`write_frame`].
pub async fn write_frame_async<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> Result<(), FrameError> {
    let frame = encode_frame(body)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Up-front allocation for a body of `len` bytes. Larger bodies grow as their bytes arrive, so a
/// peer that announces a big (but allowed) frame and sends nothing costs no more than this.
fn initial_capacity(len: u32) -> usize {
    (len as usize).min(64 * 1024)
}

/// Fills `buf` as far as the stream allows; returns how many bytes were read (short only at EOF).
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(dest) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(dest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

async fn read_full_async<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(dest) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(dest).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A reader that fails the test if more than `limit` bytes are ever requested at once, which
    /// would mean a buffer of that size was allocated.
    struct NoBigReads<'a> {
        inner: Cursor<&'a [u8]>,
        limit: usize,
    }

    impl Read for NoBigReads<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(buf.len() <= self.limit, "asked for {} bytes", buf.len());
            Read::read(&mut self.inner, buf)
        }
    }

    #[test]
    fn round_trip() {
        let frame = encode_frame(b"hello").unwrap();
        assert_eq!(frame, [5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o']);
        let mut cursor = Cursor::new(frame.as_slice());
        assert_eq!(read_frame(&mut cursor, 16).unwrap().unwrap(), b"hello");
        assert_eq!(parse_frame(&frame, 16).unwrap(), b"hello");
        let mut out = Vec::new();
        write_frame(&mut out, b"hello").unwrap();
        assert_eq!(out, frame);
    }

    #[test]
    fn prefix_is_little_endian() {
        let body = vec![0xAB; 0x0102];
        let frame = encode_frame(&body).unwrap();
        assert_eq!(&frame[..4], &[0x02, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn clean_close_before_any_byte_is_none() {
        let mut empty = Cursor::new(&[][..]);
        assert!(read_frame(&mut empty, 16).unwrap().is_none());
    }

    #[test]
    fn empty_body_is_a_frame() {
        let mut cursor = Cursor::new(&[0u8, 0, 0, 0][..]);
        assert_eq!(read_frame(&mut cursor, 16).unwrap(), Some(Vec::new()));
    }

    #[test]
    fn half_sent_prefix_is_an_error() {
        for got in 1..4 {
            let bytes = [9u8, 0, 0, 0];
            let mut cursor = Cursor::new(&bytes[..got]);
            match read_frame(&mut cursor, 16) {
                Err(FrameError::TruncatedPrefix { got: g }) => assert_eq!(g, got),
                other => panic!("unexpected {other:?}"),
            }
            assert!(matches!(
                parse_frame(&bytes[..got], 16),
                Err(FrameError::TruncatedPrefix { .. })
            ));
        }
    }

    #[test]
    fn truncated_body_is_an_error() {
        let bytes = [5u8, 0, 0, 0, 1, 2];
        let mut cursor = Cursor::new(&bytes[..]);
        match read_frame(&mut cursor, 16) {
            Err(FrameError::TruncatedBody { expected, got }) => {
                assert_eq!((expected, got), (5, 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_frame(&bytes, 16),
            Err(FrameError::TruncatedBody {
                expected: 5,
                got: 2
            })
        ));
    }

    #[test]
    fn oversized_prefix_rejected_before_allocating() {
        // 4 GiB - 1 announced; the reader panics if anything larger than the prefix is requested.
        let bytes = [0xFFu8, 0xFF, 0xFF, 0xFF, 0, 0];
        let mut reader = NoBigReads {
            inner: Cursor::new(&bytes[..]),
            limit: LEN_PREFIX,
        };
        match read_frame(&mut reader, DEFAULT_MAX_FRAME) {
            Err(FrameError::FrameTooLarge { len, max }) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, DEFAULT_MAX_FRAME);
            }
            other => panic!("unexpected {other:?}"),
        }
        // One above the maximum is rejected, the maximum itself is accepted.
        let over = (17u32).to_le_bytes();
        assert!(matches!(
            read_frame(&mut Cursor::new(&over[..]), 16),
            Err(FrameError::FrameTooLarge { len: 17, max: 16 })
        ));
        let mut exact = 16u32.to_le_bytes().to_vec();
        exact.extend_from_slice(&[7; 16]);
        assert_eq!(
            read_frame(&mut Cursor::new(&exact[..]), 16)
                .unwrap()
                .unwrap()
                .len(),
            16
        );
    }

    #[test]
    fn allowed_but_unsent_body_is_not_allocated_up_front() {
        // The caller allows anything; the peer announces 4 GiB - 1 and sends 3 bytes.
        let bytes = [0xFFu8, 0xFF, 0xFF, 0xFF, 1, 2, 3];
        let mut reader = NoBigReads {
            inner: Cursor::new(&bytes[..]),
            limit: 64 * 1024,
        };
        match read_frame(&mut reader, u32::MAX) {
            Err(FrameError::TruncatedBody { expected, got }) => {
                assert_eq!((expected, got), (u32::MAX, 3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bodies_larger_than_the_initial_capacity_are_read_whole() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let frame = encode_frame(&body).unwrap();
        let got = read_frame(&mut Cursor::new(frame.as_slice()), u32::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(got, body);
    }

    #[test]
    fn trailing_bytes_rejected_by_parse_frame_only() {
        let bytes = [1u8, 0, 0, 0, 42, 43];
        assert!(matches!(
            parse_frame(&bytes, 16),
            Err(FrameError::TrailingBytes { extra: 1 })
        ));
        // A stream reader takes exactly one frame and leaves the rest unread.
        let mut cursor = Cursor::new(&bytes[..]);
        assert_eq!(read_frame(&mut cursor, 16).unwrap().unwrap(), [42]);
        assert_eq!(cursor.position(), 5);
    }

    #[test]
    fn complete_frame_needs_the_whole_body_and_ignores_what_follows() {
        let frame = encode_frame(&[1, 2, 3]).unwrap();
        for cut in 0..frame.len() {
            assert_eq!(complete_frame(&frame[..cut], 16).unwrap(), None, "{cut}");
        }
        assert_eq!(complete_frame(&frame, 16).unwrap(), Some(&[1u8, 2, 3][..]));
        let mut longer = frame.clone();
        longer.extend_from_slice(&[9, 9]);
        assert_eq!(complete_frame(&longer, 16).unwrap(), Some(&[1u8, 2, 3][..]));
        assert_eq!(complete_frame(&[0, 0, 0, 0], 16).unwrap(), Some(&[][..]));
        assert!(matches!(
            complete_frame(&[17, 0, 0, 0], 16),
            Err(FrameError::FrameTooLarge { len: 17, max: 16 })
        ));
    }

    #[test]
    fn one_byte_at_a_time_reader() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match (self.0.split_first(), buf.first_mut()) {
                    (Some((b, rest)), Some(slot)) => {
                        *slot = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let frame = encode_frame(&[1, 2, 3, 4, 5, 6, 7]).unwrap();
        let got = read_frame(&mut Trickle(&frame), 16).unwrap().unwrap();
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[tokio::test]
    async fn async_variants_behave_like_sync() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_frame_async(&mut a, b"abc").await.unwrap();
        drop(a);
        assert_eq!(read_frame_async(&mut b, 16).await.unwrap().unwrap(), b"abc");
        assert!(read_frame_async(&mut b, 16).await.unwrap().is_none());

        let mut too_big: &[u8] = &[0xFF, 0xFF, 0xFF, 0x7F];
        assert!(matches!(
            read_frame_async(&mut too_big, 1024).await,
            Err(FrameError::FrameTooLarge { .. })
        ));
        let mut half_prefix: &[u8] = &[3, 0];
        assert!(matches!(
            read_frame_async(&mut half_prefix, 1024).await,
            Err(FrameError::TruncatedPrefix { got: 2 })
        ));
        let mut half_body: &[u8] = &[3, 0, 0, 0, 1];
        assert!(matches!(
            read_frame_async(&mut half_body, 1024).await,
            Err(FrameError::TruncatedBody {
                expected: 3,
                got: 1
            })
        ));
    }
}
