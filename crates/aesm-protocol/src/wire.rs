//! The protobuf messages of package `aesm.message` (proto2), as prost structs.
//!
//! Every field is an `Option` (or a message `Option`) so that presence stays visible: proto2 `required`
//! fields are checked by hand in [`crate::decode_request`] and [`crate::decode_response`], and
//! `errorCode` (proto2 default 1) is always emitted by the encoders of this crate.
//!
//! Field numbers follow Intel's `messages.proto` (see `aesm-protocol.md` §1.2–§1.4). Legacy request
//! bodies whose fields this crate does not interpret are decoded as [`Opaque`], which skips every
//! field while still validating the wire format.

/// A message whose fields are not interpreted (legacy requests only answered with an error code).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Opaque {}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// `InitQuoteRequest` (EPID, legacy).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InitQuoteRequest {
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// `GetQuoteRequest` (EPID, legacy). Required: `report`, `quote_type`, `spid`, `buf_size`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetQuoteRequest {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub report: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    pub quote_type: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub spid: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub nonce: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub sig_rl: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "6")]
    pub buf_size: Option<u32>,
    #[prost(bool, optional, tag = "7")]
    pub qe_report: Option<bool>,
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// `GetLaunchTokenRequest` (legacy). Required: `mr_enclave`, `mr_signer`, `se_attributes`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetLaunchTokenRequest {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub mr_enclave: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub mr_signer: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub se_attributes: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// `InitQuoteExRequest` (15). Required: `b_pub_key_id`. `buf_size` is optional (see §1.1).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InitQuoteExRequest {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub att_key_id: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3")]
    pub b_pub_key_id: Option<bool>,
    #[prost(uint64, optional, tag = "4")]
    pub buf_size: Option<u64>,
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// `GetQuoteSizeExRequest` (16).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetQuoteSizeExRequest {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub att_key_id: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// `GetQuoteExRequest` (17). Required: `report`, `buf_size`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetQuoteExRequest {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub report: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub att_key_id: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub qe_report_info: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "4")]
    pub buf_size: Option<u32>,
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// `SelectAttKeyIDRequest` (19). Note: `timeout` is field 2 here.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SelectAttKeyIdRequest {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub att_key_id_list: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    pub timeout: Option<u32>,
}

/// `GetSupportedAttKeyIDNumRequest` (21).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetSupportedAttKeyIdNumRequest {
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// `GetSupportedAttKeyIDsRequest` (22). Required: `buf_size`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetSupportedAttKeyIdsRequest {
    #[prost(uint32, optional, tag = "1")]
    pub buf_size: Option<u32>,
    #[prost(uint32, optional, tag = "9")]
    pub timeout: Option<u32>,
}

/// The top-level `Request` wrapper: exactly one sub-message is expected to be set.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Request {
    #[prost(message, optional, tag = "1")]
    pub init_quote_req: Option<InitQuoteRequest>,
    #[prost(message, optional, tag = "2")]
    pub get_quote_req: Option<GetQuoteRequest>,
    #[prost(message, optional, tag = "3")]
    pub get_lic_token_req: Option<GetLaunchTokenRequest>,
    #[prost(message, optional, tag = "4")]
    pub report_err_req: Option<Opaque>,
    #[prost(message, optional, tag = "10")]
    pub get_white_list_size_req: Option<Opaque>,
    #[prost(message, optional, tag = "11")]
    pub get_white_list_req: Option<Opaque>,
    #[prost(message, optional, tag = "12")]
    pub sgx_get_extended_epid_group_id_req: Option<Opaque>,
    #[prost(message, optional, tag = "13")]
    pub sgx_switch_extended_epid_group_req: Option<Opaque>,
    #[prost(message, optional, tag = "14")]
    pub sgx_register_req: Option<Opaque>,
    #[prost(message, optional, tag = "15")]
    pub init_quote_ex_req: Option<InitQuoteExRequest>,
    #[prost(message, optional, tag = "16")]
    pub get_quote_size_ex_req: Option<GetQuoteSizeExRequest>,
    #[prost(message, optional, tag = "17")]
    pub get_quote_ex_req: Option<GetQuoteExRequest>,
    #[prost(message, optional, tag = "18")]
    pub check_update_status_req: Option<Opaque>,
    #[prost(message, optional, tag = "19")]
    pub select_att_key_id_req: Option<SelectAttKeyIdRequest>,
    #[prost(message, optional, tag = "21")]
    pub get_supported_att_key_id_num_req: Option<GetSupportedAttKeyIdNumRequest>,
    #[prost(message, optional, tag = "22")]
    pub get_supported_att_key_ids_req: Option<GetSupportedAttKeyIdsRequest>,
}

// ---------------------------------------------------------------------------------------------
// Responses (field 1 of each is `required uint32 errorCode [default = 1]`)
// ---------------------------------------------------------------------------------------------

/// A response that carries only `errorCode` (legacy responses, `UnsupportedRequestResponse`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ErrorOnlyResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
}

/// `InitQuoteResponse` (EPID, legacy).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InitQuoteResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub target_info: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub gid: Option<Vec<u8>>,
}

/// `GetQuoteResponse` (EPID, legacy).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetQuoteResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub quote: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub qe_report: Option<Vec<u8>>,
}

/// `GetLaunchTokenResponse` (legacy).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetLaunchTokenResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub token: Option<Vec<u8>>,
}

/// `InitQuoteExResponse` (15).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InitQuoteExResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub target_info: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "3")]
    pub pub_key_id_size: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub pub_key_id: Option<Vec<u8>>,
}

/// `GetQuoteSizeExResponse` (16).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetQuoteSizeExResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub quote_size: Option<u32>,
}

/// `GetQuoteExResponse` (17).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetQuoteExResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub quote: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub qe_report_info: Option<Vec<u8>>,
}

/// `SelectAttKeyIDResponse` (19).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SelectAttKeyIdResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub selected_att_key_id: Option<Vec<u8>>,
}

/// `GetSupportedAttKeyIDNumResponse` (21).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetSupportedAttKeyIdNumResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub att_key_id_num: Option<u32>,
}

/// `GetSupportedAttKeyIDsResponse` (22).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetSupportedAttKeyIdsResponse {
    #[prost(uint32, optional, tag = "1")]
    pub error_code: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub att_key_ids: Option<Vec<u8>>,
}

/// The top-level `Response` wrapper.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Response {
    #[prost(message, optional, tag = "1")]
    pub init_quote_res: Option<InitQuoteResponse>,
    #[prost(message, optional, tag = "2")]
    pub get_quote_res: Option<GetQuoteResponse>,
    #[prost(message, optional, tag = "3")]
    pub get_lic_token_res: Option<GetLaunchTokenResponse>,
    #[prost(message, optional, tag = "4")]
    pub report_err_res: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "10")]
    pub get_white_list_size_res: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "11")]
    pub get_white_list_res: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "12")]
    pub sgx_get_extended_epid_group_id_res: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "13")]
    pub sgx_switch_extended_epid_group_res: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "14")]
    pub sgx_register_res: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "15")]
    pub init_quote_ex_res: Option<InitQuoteExResponse>,
    #[prost(message, optional, tag = "16")]
    pub get_quote_size_ex_res: Option<GetQuoteSizeExResponse>,
    #[prost(message, optional, tag = "17")]
    pub get_quote_ex_res: Option<GetQuoteExResponse>,
    #[prost(message, optional, tag = "18")]
    pub check_update_status_res: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "19")]
    pub select_att_key_id_res: Option<SelectAttKeyIdResponse>,
    #[prost(message, optional, tag = "20")]
    pub unsupported_request_response: Option<ErrorOnlyResponse>,
    #[prost(message, optional, tag = "21")]
    pub get_supported_att_key_id_num_res: Option<GetSupportedAttKeyIdNumResponse>,
    #[prost(message, optional, tag = "22")]
    pub get_supported_att_key_ids_res: Option<GetSupportedAttKeyIdsResponse>,
}
