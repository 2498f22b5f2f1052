//! How a saved manifest is written into its annotation. Kubernetes allows 256 KiB of annotations
//! per object and a Redis cluster saves one workload manifest per shard, so a manifest past its
//! kind's limit is stored gzip-compressed and base64-encoded (prefixed, so either form reads
//! back); a small one stays plain JSON for people reading the request. A saved pod stays plain
//! JSON as KubeDB writes it unless it is very large.

use std::io::{Read, Write};

use base64::Engine;
use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use serde_json::Value;

/// Workload manifests up to this many bytes of JSON are stored as they are.
pub const WORKLOAD_PLAIN_MAX: usize = 4 * 1024;
/// Saved pods up to this many bytes of JSON are stored as they are (KubeDB's format).
pub const POD_PLAIN_MAX: usize = 64 * 1024;
const GZIP_PREFIX: &str = "gzip+base64:";

/// Why a saved manifest cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("gzip: {0}")]
    Gzip(#[from] std::io::Error),
    #[error("base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// The annotation value for `manifest`: plain JSON up to `plain_max` bytes, compressed past it.
pub fn encode(manifest: &Value, plain_max: usize) -> Result<String, SavedError> {
    let json = serde_json::to_string(manifest)?;
    if json.len() <= plain_max {
        return Ok(json);
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(json.as_bytes())?;
    let packed = gz.finish()?;
    Ok(format!(
        "{GZIP_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(packed)
    ))
}

/// The manifest an annotation value holds, in either form.
pub fn decode(text: &str) -> Result<Value, SavedError> {
    let Some(packed) = text.strip_prefix(GZIP_PREFIX) else {
        return Ok(serde_json::from_str(text)?);
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(packed.trim())?;
    let mut json = Vec::new();
    GzDecoder::new(bytes.as_slice()).read_to_end(&mut json)?;
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(env_vars: usize) -> Value {
        let env: Vec<Value> = (0..env_vars)
            .map(|i| json!({"name": format!("SETTING_{i}"), "value": "a value every shard repeats"}))
            .collect();
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "rd-shard0"},
               "spec": {"template": {"spec": {"containers": [{"name": "redis", "env": env}]}}}})
    }

    #[test]
    fn a_small_manifest_stays_plain_json() {
        let m = manifest(2);
        let text = encode(&m, WORKLOAD_PLAIN_MAX).unwrap();
        assert!(text.starts_with('{'), "{text}");
        assert_eq!(decode(&text).unwrap(), m);
    }

    #[test]
    fn a_large_manifest_is_compressed_and_reads_back() {
        let m = manifest(200);
        let plain = serde_json::to_string(&m).unwrap();
        assert!(plain.len() > WORKLOAD_PLAIN_MAX);
        assert!(encode(&m, POD_PLAIN_MAX).unwrap().starts_with('{'));
        let text = encode(&m, WORKLOAD_PLAIN_MAX).unwrap();
        assert!(text.starts_with(GZIP_PREFIX), "{}", &text[..40]);
        assert!(text.len() * 5 < plain.len(), "{} of {}", text.len(), plain.len());
        assert_eq!(decode(&text).unwrap(), m);
    }

    #[test]
    fn a_damaged_value_is_an_error_not_a_panic() {
        assert!(matches!(decode("gzip+base64:!!!"), Err(SavedError::Base64(_))));
        assert!(matches!(decode("gzip+base64:AAAA"), Err(SavedError::Gzip(_))));
        assert!(matches!(decode("{not json"), Err(SavedError::Json(_))));
    }
}
