//! Protocol-level structures that travel inside the messages: sizes, and the attestation-key-id
//! list of `SelectAttKeyID` (`sgx_ql_att_key_id_list_header_t` followed by N ×
//! `sgx_att_key_id_ext_t`). Key ids and reports themselves stay opaque byte arrays here.

use sgx_types::reader::Reader;

use crate::codes::AesmCode;

/// `sizeof(sgx_att_key_id_t)` = `sizeof(sgx_att_key_id_ext_t)`.
pub const ATT_KEY_ID_SIZE: usize = 256;
/// `sizeof(sgx_ql_att_key_id_t)`: the base that key-id matching compares.
pub const ATT_KEY_ID_BASE_SIZE: usize = 158;
/// `sizeof(sgx_target_info_t)`.
pub const TARGET_INFO_SIZE: usize = 512;
/// `sizeof(sgx_report_t)`.
pub const REPORT_SIZE: usize = 432;
/// `sizeof(sgx_ql_qe_report_info_t)`: nonce (16) ‖ app target info (512) ‖ QE report (432).
pub const QE_REPORT_INFO_SIZE: usize = 960;
/// Offset of the QE report inside `sgx_ql_qe_report_info_t`.
pub const QE_REPORT_INFO_REPORT_OFFSET: usize = 528;
/// `sizeof(sgx_ql_att_key_id_list_header_t)`.
pub const ATT_KEY_ID_LIST_HEADER_SIZE: usize = 8;
/// `SGX_MAX_ATT_KEY_IDS`: the most key ids a `SelectAttKeyID` list may carry.
pub const MAX_ATT_KEY_IDS: u32 = 10;
/// Public key id size of the ECDSA quoting enclave (SHA-256).
pub const ECDSA_PUB_KEY_ID_SIZE: u64 = 32;

/// What a `SelectAttKeyID` request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttKeyIdSelection {
    /// No list, or an empty one: choose among all available key ids.
    AllAvailable,
    /// Choose among these key ids (1 ..= [`MAX_ATT_KEY_IDS`]), in the caller's order.
    Listed(Vec<[u8; ATT_KEY_ID_SIZE]>),
}

/// Parses a `SelectAttKeyID` list with aesmd's checks; any violation is `AESM_PARAMETER_ERROR`:
/// the list holds at least one key id (`size ≥ 8 + 256`), header `id` and `version` are 0,
/// `num_att_ids ≤ 10`, and `size == 8 + 256 · num_att_ids`.
pub fn parse_att_key_id_list(list: Option<&[u8]>) -> Result<AttKeyIdSelection, AesmCode> {
    let list = match list {
        None => return Ok(AttKeyIdSelection::AllAvailable),
        Some([]) => return Ok(AttKeyIdSelection::AllAvailable),
        Some(list) => list,
    };
    let bad = |_| AesmCode::ParameterError;
    if list.len() < ATT_KEY_ID_LIST_HEADER_SIZE + ATT_KEY_ID_SIZE {
        return Err(AesmCode::ParameterError);
    }
    let mut reader = Reader::new(list);
    let id = reader.u16_le("att_key_id_list.header.id").map_err(bad)?;
    let version = reader
        .u16_le("att_key_id_list.header.version")
        .map_err(bad)?;
    let num = reader
        .u32_le("att_key_id_list.header.num_att_ids")
        .map_err(bad)?;
    if id != 0 || version != 0 || num > MAX_ATT_KEY_IDS {
        return Err(AesmCode::ParameterError);
    }
    let expected = ATT_KEY_ID_LIST_HEADER_SIZE as u64 + ATT_KEY_ID_SIZE as u64 * u64::from(num);
    if list.len() as u64 != expected {
        return Err(AesmCode::ParameterError);
    }
    let mut ids = Vec::with_capacity(num as usize);
    for _ in 0..num {
        ids.push(
            reader
                .array::<ATT_KEY_ID_SIZE>("att_key_id_list.ext_id")
                .map_err(bad)?,
        );
    }
    reader.finish("att_key_id_list").map_err(bad)?;
    Ok(AttKeyIdSelection::Listed(ids))
}

/// Builds a `SelectAttKeyID` list (header `id` = `version` = 0) from key ids.
pub fn encode_att_key_id_list(ids: &[[u8; ATT_KEY_ID_SIZE]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ATT_KEY_ID_LIST_HEADER_SIZE + ids.len() * ATT_KEY_ID_SIZE);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    // More than u32::MAX ids cannot be held in memory next to each other anyway; saturate.
    out.extend_from_slice(&u32::try_from(ids.len()).unwrap_or(u32::MAX).to_le_bytes());
    for id in ids {
        out.extend_from_slice(id);
    }
    out
}

/// The 158-byte base of a key id (what aesmd matches on), `None` if the key id is shorter.
pub fn att_key_id_base(att_key_id: &[u8]) -> Option<&[u8; ATT_KEY_ID_BASE_SIZE]> {
    att_key_id.first_chunk::<ATT_KEY_ID_BASE_SIZE>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tag: u8) -> [u8; ATT_KEY_ID_SIZE] {
        let mut k = [0u8; ATT_KEY_ID_SIZE];
        k[0] = tag;
        k[255] = tag;
        k
    }

    #[test]
    fn absent_or_empty_list_means_all_available() {
        assert_eq!(
            parse_att_key_id_list(None),
            Ok(AttKeyIdSelection::AllAvailable)
        );
        assert_eq!(
            parse_att_key_id_list(Some(&[])),
            Ok(AttKeyIdSelection::AllAvailable)
        );
    }

    #[test]
    fn round_trip_one_to_ten() {
        for n in 1..=10u8 {
            let ids: Vec<_> = (0..n).map(key).collect();
            let list = encode_att_key_id_list(&ids);
            assert_eq!(list.len(), 8 + 256 * usize::from(n));
            assert_eq!(&list[..8], &[0, 0, 0, 0, n, 0, 0, 0]);
            assert_eq!(
                parse_att_key_id_list(Some(&list)),
                Ok(AttKeyIdSelection::Listed(ids))
            );
        }
    }

    #[test]
    fn intel_checks_give_parameter_error() {
        let err = Err(AesmCode::ParameterError);
        // Too short to hold one key id (header only, header + 255).
        assert_eq!(
            parse_att_key_id_list(Some(&encode_att_key_id_list(&[]))),
            err
        );
        let mut short = encode_att_key_id_list(&[key(1)]);
        short.pop();
        assert_eq!(parse_att_key_id_list(Some(&short)), err);
        assert_eq!(parse_att_key_id_list(Some(&[0u8; 7])), err);
        // Header id / version not zero.
        let mut bad_id = encode_att_key_id_list(&[key(1)]);
        bad_id[0] = 1;
        assert_eq!(parse_att_key_id_list(Some(&bad_id)), err);
        let mut bad_version = encode_att_key_id_list(&[key(1)]);
        bad_version[3] = 1;
        assert_eq!(parse_att_key_id_list(Some(&bad_version)), err);
        // More than ten ids.
        let eleven: Vec<_> = (0..11).map(key).collect();
        assert_eq!(
            parse_att_key_id_list(Some(&encode_att_key_id_list(&eleven))),
            err
        );
        // Count disagreeing with the size, in both directions, and a huge count.
        let mut more = encode_att_key_id_list(&[key(1), key(2)]);
        more[4] = 1;
        assert_eq!(parse_att_key_id_list(Some(&more)), err);
        let mut fewer = encode_att_key_id_list(&[key(1)]);
        fewer[4] = 2;
        assert_eq!(parse_att_key_id_list(Some(&fewer)), err);
        let mut zero = encode_att_key_id_list(&[key(1)]);
        zero[4] = 0;
        assert_eq!(parse_att_key_id_list(Some(&zero)), err);
        let mut huge = encode_att_key_id_list(&[key(1)]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_att_key_id_list(Some(&huge)), err);
    }

    #[test]
    fn base_is_the_first_158_bytes() {
        let k = key(7);
        assert_eq!(att_key_id_base(&k).map(|b| b.len()), Some(158));
        assert_eq!(att_key_id_base(&k[..157]), None);
    }
}
