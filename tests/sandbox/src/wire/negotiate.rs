//! Content negotiation as kube-apiserver's `negotiation` package does it: the request body's
//! Content-Type must be one the resource's serializers read (else 415 UnsupportedMediaType), and
//! the Accept header must name one they write (else 406 NotAcceptable). Custom resources have no
//! protobuf serializer.

use crate::machinery::ApiError;

use super::PROTOBUF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Protobuf,
}

impl Format {
    fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Yaml => "application/yaml",
            Format::Protobuf => PROTOBUF,
        }
    }
}

/// The response form a request negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    /// `as=Table;g=meta.k8s.io;v=v1` (served as JSON or YAML only, as kube does).
    pub table: bool,
}

fn serializers(builtin: bool) -> &'static [Format] {
    if builtin {
        &[Format::Json, Format::Yaml, Format::Protobuf]
    } else {
        &[Format::Json, Format::Yaml]
    }
}

fn joined(formats: &[Format], suffix: &str) -> String {
    formats
        .iter()
        .map(|f| format!("{}{suffix}", f.media_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The serializer for a request body of `content_type` (JSON when none is given).
pub fn input(content_type: Option<&str>, builtin: bool) -> Result<Format, ApiError> {
    let supported = serializers(builtin);
    let Some(ct) = content_type.filter(|c| !c.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    supported
        .iter()
        .copied()
        .find(|f| f.media_type() == essence)
        .ok_or_else(|| {
            ApiError::unsupported_media_type(&format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                joined(supported, "")
            ))
        })
}

/// One clause of an Accept header.
struct Clause<'a> {
    ty: &'a str,
    sub: &'a str,
    q: f32,
    params: Vec<(&'a str, &'a str)>,
}

/// Accept clauses, most preferred first (goautoneg's order: q, then specificity).
fn clauses(accept: &str) -> Vec<Clause<'_>> {
    let mut out: Vec<Clause<'_>> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim();
            let (ty, sub) = range.split_once('/').unwrap_or((range, "*"));
            let mut q = 1.0;
            let mut params = vec![];
            for p in pieces {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let (k, v) = (k.trim(), v.trim());
                if k == "q" {
                    q = v.parse().unwrap_or(1.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(Clause {
                ty: ty.trim(),
                sub: sub.trim(),
                q,
                params,
            })
        })
        .filter(|c| !c.ty.is_empty())
        .collect();
    out.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then((a.sub == "*").cmp(&(b.sub == "*")))
            .then((a.ty == "*").cmp(&(b.ty == "*")))
    });
    out
}

/// The response form for `accept`; `watch` requests need a streaming serializer (not YAML).
pub fn output(accept: Option<&str>, builtin: bool, watch: bool) -> Result<Output, ApiError> {
    let supported: Vec<Format> = serializers(builtin)
        .iter()
        .copied()
        .filter(|f| !(watch && *f == Format::Yaml))
        .collect();
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output {
            format: Format::Json,
            table: false,
        });
    };
    let mut acceptable = vec![];
    for c in clauses(accept) {
        if c.q <= 0.0 {
            continue;
        }
        for f in &supported {
            let (ty, sub) = f.media_type().split_once('/').unwrap_or(("", ""));
            let matches = (c.ty == ty && (c.sub == sub || c.sub == "*")) || (c.ty == "*" && c.sub == "*");
            if matches && let Some(out) = accept_params(&c, *f) {
                acceptable.push(out);
            }
        }
    }
    // Protobuf only when the client takes nothing else: every response stays readable JSON
    // for kubectl (which offers both) while protobuf-only clients get what they asked for.
    let chosen = acceptable
        .iter()
        .find(|o| o.format != Format::Protobuf)
        .or(acceptable.first());
    if let Some(out) = chosen {
        return Ok(*out);
    }
    let suffix = if watch { ";stream=watch" } else { "" };
    Err(ApiError::new(
        406,
        "NotAcceptable",
        format!(
            "only the following media types are accepted: {}",
            joined(&supported, suffix)
        ),
    ))
}

/// kube's `acceptMediaTypeOptions`: a clause asking for a conversion the endpoint cannot make
/// (or a stream the serializer lacks) is skipped.
fn accept_params(c: &Clause<'_>, f: Format) -> Option<Output> {
    let get = |k: &str| c.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
    if let Some(stream) = get("stream")
        && !stream.is_empty()
        && (stream != "watch" || f == Format::Yaml)
    {
        return None;
    }
    let table = match get("as") {
        None => false,
        Some("Table") => {
            let group_ok = get("g") == Some("meta.k8s.io");
            let version_ok = matches!(get("v"), Some("v1" | "v1beta1"));
            if !group_ok || !version_ok || f == Format::Protobuf {
                return None;
            }
            true
        }
        // Metadata-only conversions are served as the full object (what the sandbox stores).
        Some("PartialObjectMetadata" | "PartialObjectMetadataList") if get("g") == Some("meta.k8s.io") => {
            if f == Format::Protobuf {
                return None;
            }
            false
        }
        Some(_) => return None,
    };
    Some(Output { format: f, table })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(accept: &str, builtin: bool) -> Result<Output, (u16, String)> {
        output(Some(accept), builtin, false).map_err(|e| (e.code, e.message))
    }

    #[test]
    fn kubectl_and_kube_rs_accept_headers() {
        let kubectl = "application/vnd.kubernetes.protobuf,application/json";
        // kube-apiserver would answer protobuf here; the sandbox answers JSON whenever the
        // client takes it.
        assert_eq!(fmt(kubectl, true).unwrap().format, Format::Json);
        assert_eq!(fmt(kubectl, false).unwrap().format, Format::Json);
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
        assert!(fmt(table, false).unwrap().table);
        assert_eq!(fmt(PROTOBUF, true).unwrap().format, Format::Protobuf);
        assert_eq!(fmt("*/*", true).unwrap().format, Format::Json);
        assert_eq!(fmt("application/yaml", false).unwrap().format, Format::Yaml);
    }

    #[test]
    fn nothing_acceptable_is_406_with_kubes_message() {
        assert_eq!(
            fmt("text/html", true).unwrap_err(),
            (
                406,
                "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".into()
            )
        );
        assert_eq!(
            fmt(PROTOBUF, false).unwrap_err().1,
            "only the following media types are accepted: application/json, application/yaml"
        );
    }

    #[test]
    fn unknown_body_types_are_415() {
        assert_eq!(input(None, true).unwrap(), Format::Json);
        assert_eq!(input(Some(PROTOBUF), true).unwrap(), Format::Protobuf);
        let e = input(Some(PROTOBUF), false).unwrap_err();
        assert_eq!(e.code, 415);
        assert_eq!(
            e.message,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
        );
        let e = input(Some("text/plain"), true).unwrap_err();
        assert_eq!(
            e.message,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
    }
}
