//! The engine's event stream (`docker events`): what happened to containers and images,
//! kept in a bounded in-memory log for `--since` and broadcast to live listeners.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bollard_stubs::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum,
};
use tokio::sync::broadcast;

/// How many past events `--since` can reach.
const KEEP: usize = 1024;

pub struct Events {
    past: Mutex<VecDeque<EventMessage>>,
    live: broadcast::Sender<EventMessage>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            past: Mutex::new(VecDeque::with_capacity(KEEP)),
            live: broadcast::channel(KEEP).0,
        }
    }
}

impl Events {
    pub fn emit(
        &self,
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) {
        let now = chrono::Utc::now();
        let msg = EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes.into_iter().collect::<HashMap<_, _>>()),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(now.timestamp()),
            time_nano: now.timestamp_nanos_opt(),
        };
        let mut past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        if past.len() == KEEP {
            past.pop_front();
        }
        past.push_back(msg.clone());
        let _ = self.live.send(msg);
    }

    /// Past events from `since` (Unix nanoseconds), and a receiver for what follows.
    pub fn subscribe(
        &self,
        since_nanos: Option<i64>,
    ) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.live.subscribe();
        let old = match since_nanos {
            Some(s) => past
                .iter()
                .filter(|m| m.time_nano.unwrap_or(0) >= s)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (old, rx)
    }
}

/// `docker events --filter`, matched as moby's `daemon/events/filter.go` does.
#[derive(Debug, Clone)]
pub struct EventFilters {
    /// Filter name → the values given for it.
    pub fields: HashMap<String, Vec<String>>,
    /// An image reference as the CLI shows its repository (`busybox` for
    /// `docker.io/library/busybox:latest`). The image store knows how, and it
    /// sends events itself, so the caller brings this rather than events
    /// importing it.
    pub familiar: fn(&str) -> String,
}

/// Filters that keep events whose actor's ID or name starts with a value.
const BY_ACTOR: &[&str] = &[
    "daemon",
    "container",
    "plugin",
    "volume",
    "network",
    "service",
    "node",
    "secret",
    "config",
];

impl EventFilters {
    fn get(&self, key: &str) -> Option<&[String]> {
        self.fields.get(key).map(Vec::as_slice)
    }

    /// No values for `key`, or `value` is one of them.
    fn exact(&self, key: &str, values: &[&str]) -> bool {
        self.get(key)
            .is_none_or(|want| want.iter().any(|w| values.contains(&w.as_str())))
    }

    /// No values for `key`, or one of `values` starts with one of them.
    fn prefix(&self, key: &str, values: &[&str]) -> bool {
        self.get(key).is_none_or(|want| {
            want.iter()
                .any(|w| values.iter().any(|v| v.starts_with(w.as_str())))
        })
    }

    pub fn matches(&self, m: &EventMessage) -> bool {
        let typ = m.typ.map(|t| t.to_string()).unwrap_or_default();
        let action = m.action.clone().unwrap_or_default();
        let scope = m.scope.map(|s| s.to_string()).unwrap_or_default();
        let id = m
            .actor
            .as_ref()
            .and_then(|a| a.id.clone())
            .unwrap_or_default();
        let attrs = m
            .actor
            .as_ref()
            .and_then(|a| a.attributes.clone())
            .unwrap_or_default();
        let name = attrs.get("name").cloned().unwrap_or_default();
        // `health_status`, `exec_create` and `exec_start` also match their
        // `action: detail` forms.
        let fuzzy_event = self.get("event").is_some_and(|v| {
            v.iter()
                .any(|e| ["health_status", "exec_create", "exec_start"].contains(&e.as_str()))
        });
        let event_ok = if fuzzy_event {
            self.prefix("event", &[&action])
        } else {
            self.exact("event", &[&action])
        };
        // A container event names its image in `image`; an image event in `name`.
        let image = attrs
            .get(if typ == "image" { "name" } else { "image" })
            .cloned()
            .unwrap_or_default();
        let image_ok = self.exact(
            "image",
            &[&id, &image, &(self.familiar)(&id), &(self.familiar)(&image)],
        );
        event_ok
            && self.exact("type", &[&typ])
            && self.exact("scope", &[&scope])
            && BY_ACTOR.iter().all(|k| self.prefix(k, &[&id, &name]))
            && image_ok
            && self.get("label").is_none_or(|labels| {
                labels.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => attrs.get(k).is_some_and(|x| x == v),
                    None => attrs.contains_key(l.as_str()),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_history_and_filters() {
        let ev = Events::default();
        ev.emit(
            EventMessageTypeEnum::CONTAINER,
            "start",
            "abc123",
            [
                ("name".to_string(), "web".to_string()),
                ("image".to_string(), "busybox".to_string()),
            ],
        );
        ev.emit(EventMessageTypeEnum::IMAGE, "pull", "busybox:latest", []);
        let (past, _rx) = ev.subscribe(Some(0));
        assert_eq!(past.len(), 2);
        let f = |pairs: &[(&str, &str)]| {
            let mut f = EventFilters {
                fields: HashMap::new(),
                familiar: |s| s.split(':').next().unwrap_or(s).to_string(),
            };
            for (k, v) in pairs {
                f.fields
                    .entry(k.to_string())
                    .or_default()
                    .push(v.to_string());
            }
            f
        };
        let hits = |f: EventFilters| (f.matches(&past[0]), f.matches(&past[1]));
        assert_eq!(
            hits(f(&[("type", "container"), ("container", "web")])),
            (true, false)
        );
        // A container filter also matches a name prefix, and hides other events.
        assert_eq!(hits(f(&[("container", "we")])), (true, false));
        assert_eq!(hits(f(&[("event", "pull")])), (false, true));
        // An image filter matches a container's image and an image's own name,
        // with or without the tag.
        assert_eq!(hits(f(&[("image", "busybox")])), (true, true));
        assert_eq!(hits(f(&[("image", "busybox:latest")])), (false, true));
        assert_eq!(hits(f(&[("network", "web")])), (true, false));
        assert_eq!(hits(f(&[("scope", "local")])), (true, true));
        assert_eq!(hits(f(&[("scope", "swarm")])), (false, false));
    }
}
