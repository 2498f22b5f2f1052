//! The REST verbs: get, list, create, update, patch, delete, deletecollection.

use std::sync::Arc;

use base64::Engine;
use http::StatusCode;
use serde_json::{Value, json};

use crate::admit::{Attrs, Op};
use crate::api::{Api, Reply, Req};
use crate::machinery::{self, ApiError};
use crate::meta::{self, finalizers, for_output, meta_mut, meta_str, now, same_except, same_spec};
use crate::registry::{ResourceInfo, crd_status};
use crate::route::Target;
use crate::selectors::{FieldSelector, LabelSelector, Selectors};
use crate::store::{Store, WriteAction};

const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_PATCH: &str = "application/strategic-merge-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// How often an unconditional write is retried when the object changed under it.
const MAX_RETRIES: usize = 8;

pub fn get(api: &Api, t: &Target, req: &Req) -> Result<Reply, ApiError> {
    let obj = api
        .store
        .get(&t.info.store_key(), t.ns_str(), t.name_str())
        .ok_or_else(|| ApiError::not_found(&t.info.group_resource(), t.name_str()))?;
    if req.wants_table() {
        let rv = meta_str(&obj, "resourceVersion").to_string();
        return Ok(Reply::ok(crate::table::table(&t.info, &[obj], &rv, req)));
    }
    Ok(Reply::ok(for_output(&t.info, &obj)))
}

pub fn selectors(req: &Req, info: &ResourceInfo) -> Result<Selectors, ApiError> {
    let fields = FieldSelector::parse(req.q("fieldSelector").unwrap_or(""))?;
    Ok(Selectors {
        labels: LabelSelector::parse(req.q("labelSelector").unwrap_or(""))?,
        fields: crate::events::field_selector(info, fields)?,
    })
}

/// Continue tokens carry the last key returned (base64 JSON).
fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| ApiError::bad_request("invalid continue token"))?;
    let v: (String, String) =
        serde_json::from_slice(&bytes).map_err(|_| ApiError::bad_request("invalid continue token"))?;
    Ok(v)
}

fn encode_continue(key: &(String, String)) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn list(api: &Api, t: &Target, req: &Req) -> Result<Reply, ApiError> {
    let sel = selectors(req, &t.info)?;
    let limit: usize = req.q("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let after = req.q("continue").map(decode_continue).transpose()?;
    let (mut objects, mut rv) = api
        .store
        .list(&t.info.store_key(), t.ns.as_deref(), after.as_ref());
    // An exact list is served from the watch history window (410 Expired before it).
    if req.q("resourceVersionMatch") == Some("Exact")
        && let Some(at) = req.q("resourceVersion")
    {
        let at: u64 = at
            .parse()
            .map_err(|_| ApiError::bad_request(&format!("invalid resource version: {at:?}")))?;
        if at != rv {
            objects = api.store.list_at(&t.info.store_key(), t.ns.as_deref(), at)?;
            if let Some((ns, name)) = &after {
                objects.retain(|o| {
                    (meta_str(o, "namespace"), meta_str(o, "name")) > (ns.as_str(), name.as_str())
                });
            }
            rv = at;
        }
    }
    let mut items = vec![];
    let mut next = None;
    for o in objects {
        if !sel.matches(&o) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            let last: &Arc<Value> = &items[items.len() - 1];
            next = Some(encode_continue(&(
                meta_str(last, "namespace").to_string(),
                meta_str(last, "name").to_string(),
            )));
            break;
        }
        items.push(o);
    }
    let rv = rv.to_string();
    if req.wants_table() {
        let mut table = crate::table::table(&t.info, &items, &rv, req);
        if let Some(c) = next {
            table["metadata"]["continue"] = json!(c);
        }
        return Ok(Reply::ok(table));
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(c) = next {
        metadata["continue"] = json!(c);
    }
    let items: Vec<Value> = items.iter().map(|o| for_output(&t.info, o)).collect();
    Ok(Reply::ok(json!({
        "kind": t.info.list_kind,
        "apiVersion": t.info.api_version(),
        "metadata": metadata,
        "items": items,
    })))
}

fn require_object(v: &Value) -> Result<(), ApiError> {
    if v.is_object() && (v["metadata"].is_object() || v["metadata"].is_null()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ))
    }
}

fn check_namespace(api: &Api, t: &Target) -> Result<(), ApiError> {
    if !t.info.namespaced {
        return Ok(());
    }
    let ns = t.ns_str();
    let key = ("".to_string(), "namespaces".to_string());
    match api.store.get(&key, "", ns) {
        None => Err(ApiError::not_found("namespaces", ns)),
        Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::forbidden(
            &t.info.group_resource(),
            "",
            &format!("unable to create new content in namespace {ns} because it is being terminated"),
        )),
        Some(_) => Ok(()),
    }
}

pub async fn create(api: &Api, t: &Target, req: &Req) -> Result<Reply, ApiError> {
    if t.name.is_some() || t.sub.is_some() {
        return Err(ApiError::method_not_supported(&t.info.group_resource(), "create"));
    }
    let mut obj = req.json_body(&t.info)?;
    require_object(&obj)?;
    create_object(api, t, req, &mut obj, None).await
}

/// Creates `obj` (used by POST and by apply-patch on a missing object).
async fn create_object(
    api: &Api,
    t: &Target,
    req: &Req,
    obj: &mut Value,
    url_name: Option<&str>,
) -> Result<Reply, ApiError> {
    let info = &t.info;
    let body_ns = meta_str(obj, "namespace").to_string();
    if info.namespaced {
        if !body_ns.is_empty() && body_ns != t.ns_str() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    } else if !body_ns.is_empty() {
        meta_mut(obj).remove("namespace");
    }
    let mut name = meta_str(obj, "name").to_string();
    if let Some(u) = url_name
        && !name.is_empty()
        && name != u
    {
        return Err(ApiError::bad_request(&format!(
            "the name of the object ({name}) does not match the name on the URL ({u})"
        )));
    }
    if name.is_empty() {
        let gen_name = meta_str(obj, "generateName").to_string();
        name = match url_name {
            Some(u) => u.to_string(),
            None if !gen_name.is_empty() => meta::generate_name(&gen_name),
            None => {
                return Err(machinery::invalid_simple(
                    &info.kind,
                    &info.group,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        };
    }
    check_namespace(api, t)?;
    let ts = now();
    {
        let m = meta_mut(obj);
        m.insert("name".into(), json!(name));
        if info.namespaced {
            m.insert("namespace".into(), json!(t.ns_str()));
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(ts));
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(k);
        }
        if info.has_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    meta::set_type(info, obj);
    // A kubelet registers its Node with the status (kube's node strategy keeps it on create).
    let keeps_status = info.group.is_empty() && info.plural == "nodes";
    if info.status_sub
        && !keeps_status
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    meta::builtin_create_defaults(info, obj);
    crate::auth::check_write(api, t, &req.user, obj, None)?;
    let (admitted, warnings) = api
        .admission
        .run(
            api,
            Attrs {
                op: Op::Create,
                info,
                sub: None,
                ns: t.ns_str(),
                name: &name,
                object: Some(obj.clone()),
                old: None,
                dry_run: req.dry_run(),
                options: Some(crate::admit::write_options("CreateOptions", req)),
                user: req.user.clone(),
            },
        )
        .await?;
    let obj = admitted.unwrap_or_else(|| obj.clone());
    check_meta(info, &name, &obj)?;
    let mut obj = crate::events::to_storage(info, obj);
    meta::fold_string_data(info, &mut obj);
    if is_crd(info) {
        obj["status"] = crd_status(&obj, &ts);
    }
    if meta_str(&obj, "resourceVersion").is_empty() {
        machinery::record_update_manager(&mut obj, None, &req.field_manager(), &ts);
    }
    if req.dry_run() {
        if api.store.get(&info.store_key(), t.ns_str(), &name).is_some() {
            return Err(ApiError::already_exists(&info.group_resource(), &name));
        }
        return Ok(Reply {
            status: StatusCode::CREATED,
            body: for_output(info, &obj),
            warnings,
        });
    }
    let gr = info.group_resource();
    let stored = api.store.write(&info.store_key(), t.ns_str(), &name, |old, _| {
        if old.is_some() {
            return Err(ApiError::already_exists(&gr, &name));
        }
        Ok(WriteAction::Put(obj))
    })?;
    if is_crd(info) {
        api.registry_mut().register_crd(&stored);
    }
    Ok(Reply {
        status: StatusCode::CREATED,
        body: for_output(info, &stored),
        warnings,
    })
}

/// Labels and annotations as kube-apiserver validates them on every write (422 Invalid).
fn check_meta(info: &ResourceInfo, name: &str, obj: &Value) -> Result<(), ApiError> {
    let causes = machinery::validate_labels_and_annotations(obj);
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(&info.kind, &info.group, name, causes))
}

fn is_crd(info: &ResourceInfo) -> bool {
    info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions"
}

/// Merges a client's new object with the stored one as the main resource or /status allows.
fn prepare_update(info: &ResourceInfo, sub: Option<&str>, old: &Value, new: Value) -> Value {
    let mut out = if sub == Some("status") {
        // Only status (and metadata labels/annotations, as kube allows) come from the client.
        let mut o = old.clone();
        o["status"] = new["status"].clone();
        if let Some(m) = o.as_object_mut()
            && new["status"].is_null()
        {
            m.remove("status");
        }
        o
    } else {
        let mut o = new;
        if info.status_sub
            && let Some(m) = o.as_object_mut()
        {
            match old.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
        o
    };
    // Fields the client cannot change.
    let keep = [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ];
    let old_meta = &old["metadata"];
    let m = meta_mut(&mut out);
    for k in keep {
        match old_meta.get(k) {
            Some(v) => m.insert(k.into(), v.clone()),
            None => m.remove(k),
        };
    }
    m.insert("name".into(), old_meta["name"].clone());
    if let Some(ns) = old_meta.get("namespace") {
        m.insert("namespace".into(), ns.clone());
    }
    // A deleting object may only lose finalizers, not gain new ones (kube rule).
    if info.has_generation && !same_spec(old, &out) {
        let g = old_meta["generation"].as_i64().unwrap_or(0) + 1;
        meta_mut(&mut out).insert("generation".into(), json!(g));
    }
    meta::set_type(info, &mut out);
    out
}

/// Shared tail of update and patch: admission, then a conditional commit.
/// `precondition_rv` is the resourceVersion the client asked for (409 if stale).
async fn update_object(
    api: &Api,
    t: &Target,
    req: &Req,
    old: Arc<Value>,
    new: Value,
    precondition_rv: Option<String>,
) -> Result<Result<Reply, Retry>, ApiError> {
    let info = &t.info;
    let name = t.name_str().to_string();
    let gr = info.group_resource();
    let old_rv = meta_str(&old, "resourceVersion").to_string();
    if let Some(rv) = &precondition_rv
        && *rv != old_rv
    {
        return Err(stale(&gr, &name));
    }
    let mut prepared = prepare_update(info, t.sub.as_deref(), &old, new);
    crate::auth::check_write(api, t, &req.user, &mut prepared, Some(&old))?;
    let (admitted, warnings) = api
        .admission
        .run(
            api,
            Attrs {
                op: Op::Update,
                info,
                sub: t.sub.as_deref(),
                ns: t.ns_str(),
                name: &name,
                object: Some(prepared),
                old: Some(for_output(info, &old)),
                dry_run: req.dry_run(),
                options: Some(crate::admit::write_options("UpdateOptions", req)),
                user: req.user.clone(),
            },
        )
        .await?;
    // Admission hands the object back (mutated or not); webhooks may not change what the
    // subresource does not own.
    let Some(admitted) = admitted else {
        return Err(ApiError::internal("admission returned no object"));
    };
    let mut new = crate::events::to_storage(info, prepare_update(info, t.sub.as_deref(), &old, admitted));
    meta::fold_string_data(info, &mut new);
    check_meta(info, &name, &new)?;
    // An apply already recorded its manager's Apply entry (server_side_apply); any other write
    // is an Update.
    let apply = req.method == http::Method::PATCH && req.content_type().starts_with(APPLY_PATCH);
    if !apply {
        machinery::record_update_manager(&mut new, Some(&old), &req.field_manager(), &now());
    }
    let deleting = !new["metadata"]["deletionTimestamp"].is_null();
    let remove = deleting && finalizers(&new).is_empty();
    if req.dry_run() {
        return Ok(Ok(Reply {
            status: StatusCode::OK,
            body: for_output(info, &new),
            warnings,
        }));
    }
    // Unchanged objects are not written (kube skips no-op updates; rv stays).
    if same_except(&old, &new, &[], &["resourceVersion", "managedFields"]) && !remove {
        return Ok(Ok(Reply {
            status: StatusCode::OK,
            body: for_output(info, &old),
            warnings,
        }));
    }
    let mut retry = false;
    let stored = api.store.write(&info.store_key(), t.ns_str(), &name, |cur, _| {
        let Some(cur) = cur else {
            return Err(ApiError::not_found(&gr, &name));
        };
        if meta_str(cur, "resourceVersion") != old_rv {
            if precondition_rv.is_some() {
                return Err(stale(&gr, &name));
            }
            retry = true;
            return Err(ApiError::internal("retry"));
        }
        Ok(if remove {
            WriteAction::DeleteAs(new)
        } else {
            WriteAction::Put(new)
        })
    });
    let stored = match stored {
        Err(_) if retry => return Ok(Err(Retry)),
        other => other?,
    };
    if is_crd(info) {
        if remove {
            remove_crd(api, &stored);
        } else {
            api.registry_mut().register_crd(&stored);
        }
    }
    Ok(Ok(Reply {
        status: StatusCode::OK,
        body: for_output(info, &stored),
        warnings,
    }))
}

/// The object changed between read and commit; run the write again.
pub struct Retry;

fn stale(gr: &str, name: &str) -> ApiError {
    ApiError::conflict(
        gr,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )
}

pub async fn update(api: &Api, t: &Target, req: &Req) -> Result<Reply, ApiError> {
    let Some(name) = t.name.as_deref() else {
        return Err(ApiError::method_not_supported(&t.info.group_resource(), "update"));
    };
    let new = req.json_body(&t.info)?;
    require_object(&new)?;
    let body_name = meta_str(&new, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(&format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let rv = Some(meta_str(&new, "resourceVersion").to_string()).filter(|s| !s.is_empty());
    for _ in 0..MAX_RETRIES {
        let old = api
            .store
            .get(&t.info.store_key(), t.ns_str(), name)
            .ok_or_else(|| ApiError::not_found(&t.info.group_resource(), name))?;
        if let Ok(reply) = update_object(api, t, req, old, new.clone(), rv.clone()).await? {
            return Ok(reply);
        }
    }
    Err(stale(&t.info.group_resource(), name))
}

pub async fn patch(api: &Api, t: &Target, req: &Req) -> Result<Reply, ApiError> {
    let Some(name) = t.name.as_deref() else {
        return Err(ApiError::method_not_supported(&t.info.group_resource(), "patch"));
    };
    let ct = req
        .content_type()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let info = &t.info;
    let force = req.flag("force");
    // kube checks the patch type before anything else (PatchResource).
    let supported: &[&str] = if info.custom {
        &[JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
    } else {
        &[JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]
    };
    if !supported.contains(&ct.as_str()) {
        return Err(ApiError::unsupported_media_type(&format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            supported.join(", ")
        )));
    }
    for _ in 0..MAX_RETRIES {
        let old = api.store.get(&info.store_key(), t.ns_str(), name);
        let Some(old) = old else {
            if ct == "application/apply-patch+yaml" && t.sub.is_none() {
                let mut obj = machinery::server_side_apply(
                    None,
                    &req.body,
                    &req.field_manager(),
                    force,
                    &info.group,
                    &info.kind,
                    &now(),
                )?;
                require_object(&obj)?;
                return create_object(api, t, req, &mut obj, Some(name)).await;
            }
            return Err(ApiError::not_found(&info.group_resource(), name));
        };
        // Patches are written against the object as this version serves it.
        let served = for_output(info, &old);
        let patched = match ct.as_str() {
            "application/json-patch+json" => machinery::apply_json_patch(&served, &req.body)?,
            "application/merge-patch+json" => machinery::apply_merge_patch(&served, &req.body)?,
            "application/strategic-merge-patch+json" => {
                machinery::apply_strategic_merge_patch(&served, &req.body, &info.group, &info.kind)?
            }
            "application/apply-patch+yaml" => {
                if req.q("fieldManager").is_none() {
                    return Err(ApiError::bad_request(
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                    ));
                }
                machinery::server_side_apply(
                    Some(&served),
                    &req.body,
                    &req.field_manager(),
                    force,
                    &info.group,
                    &info.kind,
                    &now(),
                )?
            }
            _ => return Err(ApiError::internal("unreachable patch type")),
        };
        require_object(&patched)?;
        let patched_rv = meta_str(&patched, "resourceVersion");
        let precondition = (!patched_rv.is_empty() && patched_rv != meta_str(&old, "resourceVersion"))
            .then(|| patched_rv.to_string());
        if let Ok(reply) = update_object(api, t, req, old, patched, precondition).await? {
            return Ok(reply);
        }
    }
    Err(stale(&info.group_resource(), name))
}

/// DeleteOptions from the body or the query.
fn delete_options(req: &Req, info: &ResourceInfo) -> Result<Value, ApiError> {
    let mut opts = if req.body.is_empty() {
        json!({})
    } else {
        // DeleteOptions is a built-in kind even on custom resources' endpoints.
        let mut builtin = info.clone();
        builtin.custom = false;
        req.json_body(&builtin)?
    };
    if let Some(p) = req.q("propagationPolicy") {
        opts["propagationPolicy"] = json!(p);
    }
    if let Some(d) = req.q("dryRun") {
        opts["dryRun"] = json!([d]);
    }
    opts["kind"] = json!("DeleteOptions");
    opts["apiVersion"] = json!("meta.k8s.io/v1");
    Ok(opts)
}

pub async fn delete(api: &Api, t: &Target, req: &Req) -> Result<Reply, ApiError> {
    let opts = delete_options(req, &t.info)?;
    let Some(name) = t.name.clone() else {
        return Err(ApiError::method_not_supported(&t.info.group_resource(), "delete"));
    };
    let dry_run = req.dry_run()
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    delete_one(api, &t.info, t.ns_str(), &name, &opts, dry_run, &req.user).await
}

/// Deletes one object honouring preconditions, finalizers and propagation.
pub async fn delete_one(
    api: &Api,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    opts: &Value,
    dry_run: bool,
    user: &machinery::UserInfo,
) -> Result<Reply, ApiError> {
    let gr = info.group_resource();
    let key = info.store_key();
    let old = api
        .store
        .get(&key, ns, name)
        .ok_or_else(|| ApiError::not_found(&gr, name))?;
    let pre = &opts["preconditions"];
    if let Some(uid) = pre["uid"].as_str()
        && uid != meta_str(&old, "uid")
    {
        return Err(ApiError::conflict(
            &gr,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta_str(&old, "uid")
            ),
        ));
    }
    if let Some(rv) = pre["resourceVersion"].as_str()
        && rv != meta_str(&old, "resourceVersion")
    {
        return Err(ApiError::conflict(
            &gr,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(&old, "resourceVersion")
            ),
        ));
    }
    let (_, warnings) = api
        .admission
        .run(
            api,
            Attrs {
                op: Op::Delete,
                info,
                sub: None,
                ns,
                name,
                object: None,
                old: Some((*old).clone()),
                dry_run,
                options: Some(opts.clone()),
                user: user.clone(),
            },
        )
        .await?;
    if dry_run {
        return Ok(Reply {
            status: StatusCode::OK,
            body: for_output(info, &old),
            warnings,
        });
    }
    let policy = match (
        opts["propagationPolicy"].as_str(),
        opts["orphanDependents"].as_bool(),
    ) {
        (Some(p), _) => p.to_string(),
        (None, Some(true)) => "Orphan".into(),
        _ => "Background".into(),
    };
    if !["Orphan", "Background", "Foreground"].contains(&policy.as_str()) {
        return Err(machinery::invalid_simple(
            "DeleteOptions",
            "meta.k8s.io",
            "",
            "propagationPolicy",
            &format!(
                "Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ),
        ));
    }
    let uid = meta_str(&old, "uid").to_string();
    if policy == "Orphan" && !is_crd(info) {
        // As kube-apiserver and the garbage collector do: mark the owner as being deleted
        // (deletionTimestamp + the `orphan` finalizer) so no controller adopts a dependent for
        // it any more, then strip the dependents' references and drop the finalizer in the
        // background - a client that goes away mid-request must not leave the owner marked.
        let marked = mark_orphaning(&api.store, &key, &gr, ns, name)?;
        let store = api.store.clone();
        let (ns, name) = (ns.to_owned(), name.to_owned());
        tokio::spawn(async move {
            // Like kube's asynchronous GC, let adoptions already in flight land first.
            tokio::time::sleep(ORPHAN_SETTLE).await;
            orphan_dependents(&store, &uid);
            if let Err(e) = finish_delete(&store, &key, &gr, &ns, &name, "Orphan") {
                tracing::debug!("orphan delete of {gr} {ns}/{name} ended early: {e}");
            }
        });
        return Ok(Reply {
            status: StatusCode::OK,
            body: for_output(info, &marked),
            warnings,
        });
    }
    if policy == "Orphan" {
        orphan_dependents(&api.store, &uid);
    }
    if info.group.is_empty() && info.plural == "namespaces" {
        delete_namespace_contents(api, name).await;
    }
    let stored = finish_delete(&api.store, &key, &gr, ns, name, &policy)?;
    let gone = stored["metadata"]["deletionTimestamp"].is_null() || finalizers(&stored).is_empty();
    if gone && is_crd(info) {
        remove_crd(api, &stored);
    }
    Ok(Reply {
        status: StatusCode::OK,
        body: for_output(info, &stored),
        warnings,
    })
}

/// How long an Orphan delete waits between marking the owner and stripping its dependents'
/// references (kube's GC runs asynchronously, so in-flight adoptions land before it acts).
const ORPHAN_SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

/// Sets `deletionTimestamp` and the `orphan` finalizer on an object an Orphan delete is about to
/// remove; [`finish_delete`] then drops the finalizer.
fn mark_orphaning(
    store: &Store,
    key: &(String, String),
    gr: &str,
    ns: &str,
    name: &str,
) -> Result<Arc<Value>, ApiError> {
    let ts = now();
    store.write(key, ns, name, |cur, _| {
        let Some(cur) = cur else {
            return Err(ApiError::not_found(gr, name));
        };
        let mut o = (**cur).clone();
        let mut fins = finalizers(cur);
        if !fins.iter().any(|f| f == "orphan") {
            fins.push("orphan".into());
        }
        let m = meta_mut(&mut o);
        m.insert("finalizers".into(), json!(fins));
        if !m.contains_key("deletionTimestamp") {
            m.insert("deletionTimestamp".into(), json!(ts));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        Ok(WriteAction::Put(o))
    })
}

/// The last write of a delete: drops the `orphan` finalizer (its work is done), adds
/// `foregroundDeletion` for Foreground, and removes the object when no finalizer is left;
/// otherwise it stays with a `deletionTimestamp`.
fn finish_delete(
    store: &Store,
    key: &(String, String),
    gr: &str,
    ns: &str,
    name: &str,
    policy: &str,
) -> Result<Arc<Value>, ApiError> {
    let ts = now();
    store.write(key, ns, name, |cur, _| {
        let Some(cur) = cur else {
            return Err(ApiError::not_found(gr, name));
        };
        let mut fins = finalizers(cur);
        fins.retain(|f| f != "orphan");
        if policy == "Foreground" && !fins.iter().any(|f| f == "foregroundDeletion") {
            fins.push("foregroundDeletion".into());
        }
        if fins.is_empty() {
            return Ok(WriteAction::Delete);
        }
        let mut o = (**cur).clone();
        let m = meta_mut(&mut o);
        m.insert("finalizers".into(), json!(fins));
        if !m.contains_key("deletionTimestamp") {
            m.insert("deletionTimestamp".into(), json!(ts));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        Ok(WriteAction::Put(o))
    })
}

/// Removes ownerReferences to `owner_uid` from every object (what kube's GC does for Orphan).
fn orphan_dependents(store: &Store, owner_uid: &str) {
    for (key, (ns, name)) in store.dependents(owner_uid) {
        let _ = store.write(&key, &ns, &name, |cur, _| {
            let Some(cur) = cur else {
                return Err(ApiError::internal("gone"));
            };
            let mut o = (**cur).clone();
            let kept: Vec<Value> = o["metadata"]["ownerReferences"]
                .as_array()
                .map(|r| r.iter().filter(|x| x["uid"] != owner_uid).cloned().collect())
                .unwrap_or_default();
            let m = meta_mut(&mut o);
            if kept.is_empty() {
                m.remove("ownerReferences");
            } else {
                m.insert("ownerReferences".into(), json!(kept));
            }
            Ok(WriteAction::Put(o))
        });
    }
}

/// The user kube's namespace controller deletes a namespace's contents as.
fn namespace_controller() -> machinery::UserInfo {
    machinery::UserInfo {
        username: "system:serviceaccount:kube-system:namespace-controller".into(),
        groups: vec![
            "system:serviceaccounts".into(),
            "system:serviceaccounts:kube-system".into(),
            "system:authenticated".into(),
        ],
        ..Default::default()
    }
}

/// kube's namespace controller, done at once: delete everything in the namespace.
async fn delete_namespace_contents(api: &Api, ns: &str) {
    let (_, all) = api.store.dump();
    let opts = json!({"propagationPolicy": "Background"});
    for (key, obj) in all {
        if meta_str(&obj, "namespace") != ns {
            continue;
        }
        let info = api.registry().any_version(&key.0, &key.1).cloned();
        if let Some(info) = info {
            let _ = Box::pin(delete_one(
                api,
                &info,
                ns,
                meta_str(&obj, "name"),
                &opts,
                false,
                &namespace_controller(),
            ))
            .await;
        }
    }
}

/// A CRD went away: stop serving it and drop its objects.
fn remove_crd(api: &Api, crd: &Value) {
    let name = meta_str(crd, "name").to_string();
    api.registry_mut().unregister_crd(&name);
    let key = (
        crd["spec"]["group"].as_str().unwrap_or_default().to_string(),
        crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let (objs, _) = api.store.list(&key, None, None);
    for o in objs {
        let _ = api
            .store
            .write(&key, meta_str(&o, "namespace"), meta_str(&o, "name"), |cur, _| {
                if cur.is_some() {
                    Ok(WriteAction::Delete)
                } else {
                    Err(ApiError::internal("gone"))
                }
            });
    }
}

pub async fn delete_collection(api: &Api, t: &Target, req: &Req) -> Result<Reply, ApiError> {
    let sel = selectors(req, &t.info)?;
    let opts = delete_options(req, &t.info)?;
    let (objs, _) = api.store.list(&t.info.store_key(), t.ns.as_deref(), None);
    let mut items = vec![];
    let mut warnings = vec![];
    for o in objs.iter().filter(|o| sel.matches(o)) {
        match delete_one(
            api,
            &t.info,
            meta_str(o, "namespace"),
            meta_str(o, "name"),
            &opts,
            req.dry_run(),
            &req.user,
        )
        .await
        {
            Ok(r) => {
                items.push(r.body);
                warnings.extend(r.warnings);
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Reply {
        status: StatusCode::OK,
        body: json!({
            "kind": t.info.list_kind, "apiVersion": t.info.api_version(),
            "metadata": {"resourceVersion": api.store.current_rv().to_string()}, "items": items,
        }),
        warnings,
    })
}
