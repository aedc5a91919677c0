//! ApiVersions (18): exactly the APIs and versions in `SUPPORTED`.

use super::error_code::ErrorCode;
use super::SUPPORTED;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

fn versions() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = key as i16;
            v.min_version = min;
            v.max_version = max;
            v
        })
        .collect()
}

pub fn handle() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = versions();
    r
}

/// The v0 answer to an ApiVersions request at an unknown version.
pub fn unsupported() -> ApiVersionsResponse {
    let mut r = handle();
    r.error_code = ErrorCode::UnsupportedVersion.code();
    r
}
