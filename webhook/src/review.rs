//! AdmissionReview v1 on the wire. Our own serde types around kube's pieces (`Status`,
//! `PatchType`, the names), not `kube::core::admission`'s review types (kube 5.0):
//! - its `AdmissionRequest<T>` decodes `object` and `oldObject` into one `T` before the kind is
//!   read; any kind arrives here, so `T` would be `DynamicObject`, decoded again into the typed
//!   object the rules read. Measured (release, a 1.7 KB RedisOpsRequest CREATE): 12.5 us vs our
//!   4.6 us to a typed request, the extra close to what a whole decision costs; ours borrows from
//!   the body and keeps `object` as text, decoded once into the type its kind needs
//!   (docs/PERFORMANCE.md).
//! - its `AdmissionResponse` writes `patch` as an array of numbers and an allow with
//!   `"status":{}`. admission/v1's `patch` is `[]byte`: base64 text in JSON, as Go writes it and
//!   as kube-apiserver's docs and our sandbox read it, with `patchType` `JSONPatch`, the only
//!   type admission/v1 defines. The wire is pinned by `webhook/tests/protocol.rs`.

use std::borrow::Cow;

use base64::Engine;
use kube::core::Status;
use kube::core::admission::{META_API_VERSION_V1, META_KIND, PatchType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The incoming review; only `request` matters. Strings and objects borrow from the body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIn<'a> {
    #[serde(borrow, default)]
    pub request: Option<AdmissionRequest<'a>>,
}

/// `group/version/kind` of the object under review.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Gvk<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

/// `userInfo`: who asks (the webhook reads only the name).
#[derive(Debug, Default, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
}

/// The fields of `request` the webhook reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Gvk<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub operation: Cow<'a, str>,
    #[serde(borrow, default)]
    pub user_info: UserInfo<'a>,
    /// The object as written in the review, parsed only as far as a decision needs.
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

impl AdmissionRequest<'_> {
    pub fn is_dry_run(&self) -> bool {
        self.dry_run == Some(true)
    }

    /// `object` parsed (null when absent).
    pub fn object_value(&self) -> Value {
        parse(self.object)
    }

    /// `oldObject` parsed (null when absent).
    pub fn old_object_value(&self) -> Value {
        parse(self.old_object)
    }
}

/// Raw JSON is valid JSON, so this parse fails only past serde_json's nesting limit, where the
/// object reads as null like an absent one.
fn parse(raw: Option<&RawValue>) -> Value {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null)
}

/// The response we send back.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<PatchType>,
    /// Base64 of the RFC 6902 patch JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

impl AdmissionResponse {
    pub fn allow(uid: &str, warnings: Vec<String>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: true,
            status: None,
            warnings,
            patch_type: None,
            patch: None,
        }
    }

    /// A denial with HTTP-style `code` (403 Forbidden or 422 Invalid) and the rule's message.
    pub fn deny(uid: &str, code: u16, message: String, warnings: Vec<String>) -> Self {
        let reason = if code == 422 { "Invalid" } else { "Forbidden" };
        Self {
            uid: uid.to_owned(),
            allowed: false,
            status: Some(Status::failure(&message, reason).with_code(code)),
            warnings,
            patch_type: None,
            patch: None,
        }
    }

    /// Attaches a JSON patch unless it is empty (an empty patch is left out altogether).
    pub fn with_patch(mut self, patch: &json_patch::Patch) -> Result<Self, serde_json::Error> {
        if patch.0.is_empty() {
            return Ok(self);
        }
        let bytes = serde_json::to_vec(patch)?;
        self.patch_type = Some(PatchType::JsonPatch);
        self.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        Ok(self)
    }
}

/// The review we send back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOut {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

impl ReviewOut {
    pub fn new(response: AdmissionResponse) -> Self {
        Self {
            api_version: META_API_VERSION_V1,
            kind: META_KIND,
            response,
        }
    }
}
