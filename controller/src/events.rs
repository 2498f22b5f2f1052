//! Publishes Kubernetes events as kube-runtime's `Recorder` does (the same event objects,
//! an event repeated within 6 minutes becomes a series on the first one), remembering of each
//! event sent only its name, series count and time. kube's recorder keeps every event it sent
//! whole in a table that never shrinks: 12 MiB after a start with 834 Pending requests
//! (docs/PERFORMANCE.md, "Large clusters").

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{
        core::v1::ObjectReference,
        events::v1::{Event as K8sEvent, EventSeries},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::events::{Event, EventType, Reporter},
};
use serde_json::json;

/// How long a sent event is remembered for a series (kube-runtime's recorder's).
const CACHE_TTL: SignedDuration = SignedDuration::from_mins(6);

/// What is remembered of one event sent.
struct Sent {
    name: Box<str>,
    /// Series count (1 before the first repeat).
    count: i32,
    last: Timestamp,
}

/// What to send for an event.
#[derive(Debug, PartialEq)]
enum Next {
    Create,
    /// A repeat: the event's series, counted so far.
    Series {
        name: String,
        count: i32,
    },
}

/// The events sent within [`CACHE_TTL`], by what makes two of them the same event.
#[derive(Default)]
struct SentEvents {
    by_key: HashMap<String, Sent>,
}

impl SentEvents {
    /// Forgets events older than the TTL (and gives the table's room back when it emptied).
    fn expire(&mut self, now: Timestamp) {
        self.by_key.retain(|_, s| s.last + CACHE_TTL > now);
        if self.by_key.capacity() > 2 * self.by_key.len() + 64 {
            self.by_key.shrink_to_fit();
        }
    }

    fn next(&self, key: &str) -> Next {
        match self.by_key.get(key) {
            Some(s) => Next::Series {
                name: s.name.to_string(),
                count: s.count + 1,
            },
            None => Next::Create,
        }
    }

    fn sent(&mut self, key: String, name: &str, count: i32, now: Timestamp) {
        self.by_key.insert(
            key,
            Sent {
                name: name.into(),
                count,
                last: now,
            },
        );
    }
}

/// An event recorder; clones share what was sent.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    sent: Arc<Mutex<SentEvents>>,
}

fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// What makes two events the same (kube-runtime's key less the reporter, which is fixed).
fn key_of(ev: &Event, regarding: &ObjectReference) -> String {
    let mut key = format!("{}\n{}\n{}", type_name(ev.type_), ev.action, ev.reason);
    for r in std::iter::once(regarding).chain(ev.secondary.as_ref()) {
        for field in [&r.api_version, &r.kind, &r.name, &r.namespace, &r.uid] {
            key.push('\n');
            key.push_str(field.as_deref().unwrap_or("\u{0}"));
        }
    }
    key
}

impl EventRecorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            sent: Arc::default(),
        }
    }

    fn sent(&self) -> std::sync::MutexGuard<'_, SentEvents> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The event object kube-runtime's recorder creates for `ev`.
    fn event(&self, ev: &Event, reference: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: reference.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    reference.name.as_ref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            type_: Some(type_name(ev.type_).into()),
            related: ev.secondary.clone(),
            ..Default::default()
        }
    }

    /// Creates the event, or counts a repeat into the series of the first one.
    pub async fn publish(&self, ev: &Event, reference: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = key_of(ev, reference);
        let next = {
            let mut sent = self.sent();
            sent.expire(now);
            sent.next(&key)
        };
        let ns = reference.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), ns);
        let (name, count) = match next {
            Next::Create => {
                let event = self.event(ev, reference, now);
                let created = events.create(&PostParams::default(), &event).await?;
                (
                    created.metadata.name.or(event.metadata.name).unwrap_or_default(),
                    1,
                )
            }
            Next::Series { name, count } => {
                let series = EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                };
                let patch = json!({ "series": series });
                events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                (name, count)
            }
        };
        self.sent().sent(key, &name, count, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, action: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some("note".into()),
            action: action.into(),
            secondary: None,
        }
    }

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("RedisOpsRequest".into()),
            name: Some(name.into()),
            namespace: Some("db".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    #[test]
    fn a_repeat_within_the_ttl_counts_into_the_first_event_series() {
        let mut sent = SentEvents::default();
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let key = key_of(&event("Starting", "Admit"), &reference("a"));
        assert_eq!(sent.next(&key), Next::Create);
        sent.sent(key.clone(), "a.1", 1, t0);
        assert_eq!(
            sent.next(&key),
            Next::Series {
                name: "a.1".into(),
                count: 2
            },
            "kube's recorder counts the first repeat as 2"
        );
        sent.sent(key.clone(), "a.1", 2, t0 + SignedDuration::from_mins(5));
        sent.expire(t0 + SignedDuration::from_mins(10));
        assert!(
            matches!(sent.next(&key), Next::Series { count: 3, .. }),
            "last seen 5 min ago"
        );
        sent.expire(t0 + SignedDuration::from_mins(12));
        assert_eq!(sent.next(&key), Next::Create, "forgotten after 6 min");
    }

    #[test]
    fn events_differing_in_reason_action_type_or_object_are_different_events() {
        let base = key_of(&event("Starting", "Admit"), &reference("a"));
        assert_ne!(base, key_of(&event("Successful", "Admit"), &reference("a")));
        assert_ne!(base, key_of(&event("Starting", "Expand"), &reference("a")));
        assert_ne!(base, key_of(&event("Starting", "Admit"), &reference("b")));
        let mut warning = event("Starting", "Admit");
        warning.type_ = EventType::Warning;
        assert_ne!(base, key_of(&warning, &reference("a")));
        let mut related = event("Starting", "Admit");
        related.secondary = Some(reference("b"));
        assert_ne!(base, key_of(&related, &reference("a")));
        assert_eq!(base, key_of(&event("Starting", "Admit"), &reference("a")));
    }

    #[test]
    fn the_table_gives_its_room_back_once_its_events_expired() {
        let mut sent = SentEvents::default();
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        for i in 0..4000 {
            sent.sent(format!("k{i}"), "n", 1, t0);
        }
        sent.expire(t0 + SignedDuration::from_mins(7));
        assert!(sent.by_key.is_empty());
        assert!(sent.by_key.capacity() < 4000, "{}", sent.by_key.capacity());
    }
}
