//! Value parsers shared by the subcommands' flags.

/// Hex bytes, with surrounding whitespace and an optional `0x` prefix allowed.
pub fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

/// Exactly `N` hex-encoded bytes.
pub fn hex_array<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let bytes = hex_bytes(s)?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes, expected {N} ({} hex digits)", bytes.len(), 2 * N))
}

/// The 64 bytes of an enclave's report data: up to 64 bytes given, zero-padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportData(pub [u8; 64]);

pub fn report_data(s: &str) -> Result<ReportData, String> {
    let bytes = hex_bytes(s)?;
    if bytes.len() > 64 {
        return Err(format!(
            "{} bytes; report data holds at most 64",
            bytes.len()
        ));
    }
    let mut out = [0u8; 64];
    out[..bytes.len()].copy_from_slice(&bytes);
    Ok(ReportData(out))
}

/// A 32-byte measurement (MRENCLAVE, MRSIGNER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hash(pub [u8; 32]);

pub fn hash(s: &str) -> Result<Hash, String> {
    hex_array::<32>(s).map(Hash)
}

/// Parses a subcommand's flags alone, as `confcom <subcommand> ARGS` would.
#[cfg(test)]
pub fn parse<A: clap::Args + clap::FromArgMatches>(args: &[&str]) -> Result<A, clap::Error> {
    #[derive(clap::Parser)]
    struct Cli<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    <Cli<A> as clap::Parser>::try_parse_from(std::iter::once("confcom").chain(args.iter().copied()))
        .map(|c| c.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_values() {
        assert_eq!(hex_bytes(" 0x0102 ").unwrap(), vec![1, 2]);
        assert!(hex_bytes("0g").is_err());
        assert_eq!(hex_array::<2>("0A0b").unwrap(), [10, 11]);
        assert!(hex_array::<2>("0a").is_err());
        let rd = report_data("01").unwrap();
        assert_eq!(rd.0[0], 1);
        assert!(rd.0[1..].iter().all(|&b| b == 0));
        assert!(report_data(&"00".repeat(65)).is_err());
        assert_eq!(hash(&"11".repeat(32)).unwrap(), Hash([0x11; 32]));
    }
}
